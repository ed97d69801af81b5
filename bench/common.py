"""Helpers shared by the benchmark scripts: thread setup, timing, sizes, the rows several benches measure (the teacher,
the model2vec peers, SciFact's subset, their kinds) and the report that every script prints and writes next to its
JSON (``<results>/<name>.md`` + ``<name>.json``), which ``bench/readme.py`` copies into README.md. A bench script
imports this module, never another script.

Full runs write to ``bench/results/`` (committed: the README's tables are those files, checked by
``tests/test_readme.py``); ``--small`` runs (CI) write elsewhere, so a smoke run never replaces a published table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py` from a checkout
from st_bertapprox.data.shared import load_beir, teacher_path  # noqa: E402
from st_bertapprox.modules.io import atomic_path  # noqa: E402

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SMALL_RESULTS_DIR = Path("runs/bench-small")


def bench_parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the options every bench shares: --threads, --small and --results."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and numpy's BLAS")
    parser.add_argument("--small", action="store_true", help="a quick smoke run on a few hundred texts (CI)")
    parser.add_argument(
        "--results",
        help=f"where the markdown table and JSON go (default: bench/results for full runs, {SMALL_RESULTS_DIR} "
        "with --small, so a smoke run never replaces a published table)",
    )
    return parser


def named(value: str) -> tuple[str, Path]:
    """``NAME=DIR`` (an argparse ``type``): the row's display name and its folder."""
    name, sep, folder = value.partition("=")
    if not sep or not name or not folder:
        raise ValueError(f"expected NAME=DIR, got {value!r}")
    return name, Path(folder)


def set_threads(threads: int) -> None:
    """The same number of threads for torch, numpy's BLAS (threadpoolctl) and no tokenizer parallelism."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def folder_mb(path: str | Path) -> float:
    """Size on disk of a file or folder, MiB."""
    path = Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def round_robin_throughput(encoders: list[Callable], texts: list[str], batch_size: int, rounds: int) -> list[float]:
    """Sentences/s of every ``encode(texts, batch_size)``: each round times every encoder once, in a rotated order,
    so all see the same machine drift; the median over rounds is reported. A pause before each timing lets the
    previous model's thread pools (torch's OpenMP, numpy's OpenBLAS) stop spinning: without it, the folded student
    through SentenceTransformer, timed right after NumpyStudent, measured about half its speed."""
    for encode in encoders:
        encode(texts[:64], batch_size)  # warm-up
    times: list[list[float]] = [[] for _ in encoders]
    order = list(range(len(encoders)))
    for r in range(rounds):
        for i in order[r % len(order) :] + order[: r % len(order)]:
            time.sleep(0.25)
            t0 = time.perf_counter()
            encoders[i](texts, batch_size)
            times[i].append(time.perf_counter() - t0)
    return [len(texts) / statistics.median(t) for t in times]


def spearman(a: np.ndarray, b: np.ndarray, gold) -> float:
    """Spearman correlation of the pairs' cosines (rows of ``a`` with rows of ``b``) with the gold scores."""
    from scipy.stats import spearmanr

    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1).clip(1e-12)
    return float(spearmanr(cos, gold).statistic)


def scifact_subset(sizes: dict) -> tuple[dict, dict, list[str], dict]:
    """SciFact test (corpus, queries, kept query ids, their qrels): the first ``sizes["queries"]`` queries, and with
    ``sizes["docs"]`` only their relevant documents plus the first ``docs`` others (nDCG averages over the queries
    of qrels, so qrels keeps only the kept ones)."""
    corpus, queries, qrels = load_beir("scifact", "test")
    query_ids = list(queries)[: sizes["queries"]]
    qrels = {q: qrels[q] for q in query_ids}
    if sizes["docs"]:
        keep = {d for q in query_ids for d in qrels[q]} | set(list(corpus)[: sizes["docs"]])
        corpus = {d: t for d, t in corpus.items() if d in keep}
    return corpus, queries, query_ids, qrels


# --- rows ---------------------------------------------------------------------------------------------------------


class RowKind(str, Enum):
    """What a bench row measures: scripts select rows by kind, never by their display name. The values are what
    ``frontier.json`` writes as a row's ``"kind"``."""

    TEACHER = "teacher"  # all-MiniLM-L6-v2 through SentenceTransformer: the reference of every ratio
    SCRATCH = "scratch"  # the teacher's weights on our from-scratch BertTransformer
    PEER = "peer"  # model2vec distilled from the teacher (frontier.py: model2vec + tokenlearn too)
    TOKENLEARN = "tokenlearn"  # model2vec + tokenlearn on our student's corpus, model2vec's numpy encode
    TOKENLEARN_ST = "tokenlearn, SentenceTransformer"  # the same model through SentenceTransformer.encode
    OURS = "ours"  # our (folded) student through SentenceTransformer
    OURS_NUMPY = "ours, NumpyStudent"  # the same folded student in numpy
    OURS_VARIANT = "ours, variant"  # the same student unfolded or with a float16 table
    GENERAL = "general"  # a general student (default corpus) next to a fitted one
    FITTED = "fitted"  # a student fitted to SciFact's documents
    FITTED_PEER = "fitted peer"  # model2vec + tokenlearn on a fitted run's corpus
    EXPORT = "export"  # an ONNX export of another row's model
    ASYMMETRIC = "asymmetric"  # documents by the teacher, queries by the student


@dataclass
class Row:
    name: str  # display name: the table's first column and the JSON key, never used to select a row
    kind: RowKind
    encode: Callable  # encode(texts, batch_size=32) -> (N, D) array
    path: str
    params: int
    trainable: int
    dim: int
    metrics: dict[str, float | None] = field(default_factory=dict)


def of_kind(rows: list, *kinds: RowKind) -> list:
    """The rows (anything with a ``kind``) of these kinds, in order."""
    return [row for row in rows if row.kind in kinds]


def teacher_of(rows: list):
    """The one teacher row: the reference of every ratio."""
    (teacher,) = of_kind(rows, RowKind.TEACHER)
    return teacher


def st_row(name: str, kind: RowKind, model: SentenceTransformer, path: str) -> Row:
    def encode(texts, batch_size=32):
        return model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Row(name, kind, encode, path, params, trainable, model.get_embedding_dimension())


def static_row(name: str, kind: RowKind, model, path: str, trained: bool) -> Row:
    """A model2vec ``StaticModel`` through its own (numpy) encode."""

    def encode(texts, batch_size=32):
        return model.encode(texts, batch_size=batch_size, show_progress_bar=False, use_multiprocessing=False)

    params = int(model.embedding.size)
    return Row(name, kind, encode, path, params, params if trained else 0, model.embedding.shape[1])


def static_st_row(name: str, kind: RowKind, path: str | Path) -> Row:
    """A model2vec folder through SentenceTransformer: ``StaticEmbedding`` + ``Normalize`` (model2vec normalises)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    model = SentenceTransformer(modules=[StaticEmbedding.from_model2vec(str(path)), Normalize()], device="cpu")
    return st_row(name, kind, model, str(path))


def model2vec_rows(
    out: Path,
    train_texts: list[str],
    train_emb: np.ndarray | Callable[[], np.ndarray],
    tokenlearn: bool,
    tokenlearn_name: str = "model2vec + tokenlearn (same corpus)",
) -> list[Row]:
    """model2vec distilled from the teacher (kind ``PEER``) and, with ``tokenlearn``, further trained on
    ``train_texts`` (kind ``TOKENLEARN``; teacher embeddings ``train_emb``, or a function computing them, called
    only when the model is not on disk yet), both through model2vec's own encode."""
    from model2vec import StaticModel
    from model2vec.distill import distill

    rows = []
    m2v_dir = out / "model2vec"
    if not (m2v_dir / "model.safetensors").exists():
        distill(model_name=teacher_path()).save_pretrained(str(m2v_dir))
    model = StaticModel.from_pretrained(str(m2v_dir))
    rows.append(static_row("model2vec distill (same teacher)", RowKind.PEER, model, m2v_dir, False))
    if tokenlearn:
        from tokenlearn.train import train_model

        tl_dir = out / f"model2vec-tokenlearn-{len(train_texts)}"
        if not (tl_dir / "model.safetensors").exists():
            base = StaticModel.from_pretrained(str(m2v_dir), quantize_to="float32")  # tokenlearn trains in float32
            targets = train_emb() if callable(train_emb) else train_emb
            trained = train_model(base, train_texts, targets, device="cpu", pca_dims=256)
            trained.normalize = True
            trained.save_pretrained(str(tl_dir))
        model = StaticModel.from_pretrained(str(tl_dir))
        rows.append(static_row(tokenlearn_name, RowKind.TOKENLEARN, model, tl_dir, True))
    return rows


def measure_speed(rows: list[Row], texts: list[str], sizes: dict) -> None:
    """sent/s at batch 32 and 1 (``metrics["sps32"]``, ``["sps1"]``) of every row, in one round robin; the teacher
    is timed on a quarter of the texts and 3 rounds: it is 100x slower."""
    texts = list(dict.fromkeys(texts))[: sizes["speed_texts"]]
    teacher = teacher_of(rows)
    others = [row for row in rows if row is not teacher]
    for batch_size, n in [(32, len(texts)), (1, len(texts) // 8)]:
        speeds = round_robin_throughput([teacher.encode], texts[: n // 4], batch_size, min(3, sizes["rounds"]))
        speeds += round_robin_throughput([r.encode for r in others], texts[:n], batch_size, sizes["rounds"])
        for row, sps in zip([teacher, *others], speeds):
            row.metrics[f"sps{batch_size}"] = sps


# --- output -------------------------------------------------------------------------------------------------------


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


class Report:
    """Lines printed as they come and kept, then written as ``<name>.md`` next to ``<name>.json``."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        command = "python " + shlex.join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])
        self.name, self.lines = name, [f"`{command}`", ""]
        self.dir = Path(args.results or (SMALL_RESULTS_DIR if args.small else RESULTS_DIR))

    def print(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)

    def save(self, data: dict) -> Path:
        """Write ``<name>.md`` (every printed line) and ``<name>.json`` atomically; returns the markdown path."""
        self.dir.mkdir(parents=True, exist_ok=True)
        md = self.dir / f"{self.name}.md"
        with atomic_path(md) as tmp:
            Path(tmp).write_text("\n".join(self.lines).rstrip() + "\n", encoding="utf-8")
        with atomic_path(self.dir / f"{self.name}.json") as tmp:
            Path(tmp).write_text(json.dumps(data, indent=2), encoding="utf-8")
        print(f"\nwrote {md} and {md.with_suffix('.json')}")
        return md
