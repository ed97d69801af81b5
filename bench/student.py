"""The student next to its teacher and the strongest static peers: quality next to speed, all measured in this run.

Rows: the teacher (all-MiniLM-L6-v2); model2vec distilled from the same teacher; model2vec further trained with
tokenlearn on the same corpus and the same teacher targets as our student; our student, unfolded and folded. Speed is
compared like with like: model2vec's own numpy ``StaticModel.encode`` next to our folded student in numpy
(``NumpyStudent``), and both through ``SentenceTransformer.encode`` (model2vec as ST's ``StaticEmbedding``).
Columns: STS-B dev Spearman; mean cosine to the teacher and top-10 neighbour overlap with the teacher on held-out
Wikipedia sentences; SciFact nDCG@10 (exact Faiss search, same for all); sentences/s at batch 32 and batch 1 on
STS-B dev sentences (CPU, --threads threads); parameters (trainable); size on disk. Ratios are to the teacher.

    python bench/student.py --student runs/student [--threads 2]

``--student`` is a folder written by ``st-bertapprox distill`` (``student/``, ``student-folded/``, ``results.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding
from threadpoolctl import threadpool_limits

from st_bertapprox.data import load_beir, load_stsb, teacher_path
from st_bertapprox.distill import load_corpus
from st_bertapprox.evaluation import mean_cosine, neighbour_overlap, retrieval_ndcg
from st_bertapprox.export import save_with_code
from st_bertapprox.modules.student import fold_student
from st_bertapprox.numpy_student import NumpyStudent
from st_bertapprox.teacher import encode_cached


def spearman(a: np.ndarray, b: np.ndarray, gold) -> float:
    from scipy.stats import spearmanr

    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1).clip(1e-12)
    return float(spearmanr(cos, gold).statistic)


def round_robin_throughput(rows: list, texts: list[str], batch_size: int, rounds: int) -> list[float]:
    """Sentences/s of every row: each round times every model once, in a rotated order, so all see the same machine
    drift; the median over rounds is reported. A pause before each timing lets the previous model's thread pools
    (torch's OpenMP, numpy's OpenBLAS) stop spinning: without it, the folded student through SentenceTransformer,
    timed right after NumpyStudent, measured about half its speed."""
    for row in rows:
        row.encode(texts[:64], batch_size)  # warm-up
    times: list[list[float]] = [[] for _ in rows]
    for r in range(rounds):
        for i in list(range(len(rows)))[r % len(rows) :] + list(range(len(rows)))[: r % len(rows)]:
            time.sleep(0.25)
            t0 = time.perf_counter()
            rows[i].encode(texts, batch_size)
            times[i].append(time.perf_counter() - t0)
    return [len(texts) / statistics.median(t) for t in times]


def folder_mb(path: str | Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


class Row:
    def __init__(self, name: str, encode, path: str | None, params: int, trainable: int, dim: int):
        self.name, self.encode, self.path, self.params, self.trainable, self.dim = (
            name,
            encode,
            path,
            params,
            trainable,
            dim,
        )
        self.metrics: dict[str, float | None] = {}


def st_row(name: str, model: SentenceTransformer, path: str) -> Row:
    def encode(texts, batch_size=32):
        return model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Row(name, encode, path, params, trainable, model.get_embedding_dimension())


def static_row(name: str, model, path: str, trained: bool) -> Row:
    def encode(texts, batch_size=32):
        return model.encode(texts, batch_size=batch_size, show_progress_bar=False, use_multiprocessing=False)

    params = int(model.embedding.size)
    return Row(name, encode, path, params, params if trained else 0, model.embedding.shape[1])


def model2vec_rows(out: Path, train_texts: list[str], train_emb: np.ndarray, tokenlearn: bool) -> list[Row]:
    from model2vec import StaticModel
    from model2vec.distill import distill

    rows = []
    m2v_dir = out / "model2vec"
    if not (m2v_dir / "model.safetensors").exists():
        distill(model_name=teacher_path()).save_pretrained(str(m2v_dir))
    rows.append(
        static_row("model2vec distill (same teacher)", StaticModel.from_pretrained(str(m2v_dir)), m2v_dir, False)
    )
    if tokenlearn:
        from tokenlearn.train import train_model

        tl_dir = out / f"model2vec-tokenlearn-{len(train_texts)}"
        if not (tl_dir / "model.safetensors").exists():
            base = StaticModel.from_pretrained(str(m2v_dir), quantize_to="float32")  # tokenlearn trains in float32
            trained = train_model(base, train_texts, train_emb, device="cpu", pca_dims=256)
            trained.normalize = True
            trained.save_pretrained(str(tl_dir))
        name = "model2vec + tokenlearn (same corpus)"
        rows.append(static_row(name, StaticModel.from_pretrained(str(tl_dir)), tl_dir, True))
        # the same model through SentenceTransformer.encode, to compare with our student's ST rows
        st_model = SentenceTransformer(
            modules=[StaticEmbedding.from_model2vec(str(tl_dir)), Normalize()], device="cpu"
        )
        rows.append(st_row(name + ", via SentenceTransformer", st_model, str(tl_dir)))
        rows[-1].trainable = rows[-2].trainable
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", required=True, help="folder written by `st-bertapprox distill`")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="runs/bench", help="where peer models and the results JSON go")
    parser.add_argument("--no-model2vec", action="store_true")
    parser.add_argument("--no-tokenlearn", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's BLAS (NumpyStudent's rho) gets the same threads as torch
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    student_dir = Path(args.student)
    info = json.loads((student_dir / "results.json").read_text())

    teacher = SentenceTransformer(teacher_path(), device="cpu")
    _, train_texts, heldout = load_corpus(**info["corpus"])
    rows = [st_row("teacher: all-MiniLM-L6-v2", teacher, teacher_path())]
    if not args.no_model2vec:
        train_emb = encode_cached(teacher, train_texts, name="corpus")
        rows += model2vec_rows(out, train_texts, train_emb, tokenlearn=not args.no_tokenlearn)
    ours = {}
    for name, sub in [("ours: student (unfolded)", "student"), ("ours: student (folded)", "student-folded")]:
        ours[sub] = SentenceTransformer(str(student_dir / sub), trust_remote_code=True, device="cpu")
        rows.append(st_row(name, ours[sub], str(student_dir / sub)))
    fast = NumpyStudent.from_model(ours["student-folded"])  # the same folded model, run in numpy
    rows.append(
        Row(
            "ours: student (folded), NumpyStudent",
            lambda texts, batch_size=32: fast.encode(texts, batch_size=batch_size),
            str(student_dir / "student-folded"),
            rows[-1].params,
            0,
            fast.dim,
        )
    )
    half_dir = out / "student-folded-fp16"  # the folded table in float16: half the size, ~1e-4 deviations
    save_with_code(fold_student(ours["student"], storage_dtype="float16"), str(half_dir))
    half = SentenceTransformer(str(half_dir), trust_remote_code=True, device="cpu")
    rows.append(st_row("ours: student (folded, fp16 table)", half, str(half_dir)))
    for row in rows[-4:]:
        row.trainable = info["trainable_parameters"]

    dev = load_stsb("dev")
    s1, s2, gold = list(dev["sentence1"]), list(dev["sentence2"]), dev["score"]
    corpus, queries, qrels = load_beir("scifact", "test")
    doc_ids, docs = list(corpus), list(corpus.values())
    query_ids, query_texts = list(queries), list(queries.values())
    teacher_held = encode_cached(teacher, heldout, name="heldout")
    teacher_docs = encode_cached(teacher, docs, name="scifact corpus", batch_size=32)
    speed_texts = list(dict.fromkeys(s1 + s2))[:2048]
    for row in rows:
        is_teacher = row is rows[0]
        held = teacher_held if is_teacher else row.encode(heldout)
        doc_emb = teacher_docs if is_teacher else row.encode(docs)
        m = row.metrics
        m["stsb"] = spearman(row.encode(s1), row.encode(s2), gold)
        m["cosine"] = mean_cosine(held, teacher_held) if row.dim == teacher_held.shape[1] else None
        m["top10"] = neighbour_overlap(held, teacher_held, 10)
        m["ndcg"] = retrieval_ndcg(row.encode(query_texts), doc_emb, query_ids, doc_ids, qrels, 10)
        if row.name == "ours: student (folded)":
            m["ndcg_teacher_docs"] = retrieval_ndcg(
                row.encode(query_texts), teacher_docs, query_ids, doc_ids, qrels, 10
            )
        print(f"measured {row.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in m.items() if v is not None), flush=True)

    fast = rows[1:]  # the teacher is timed on fewer texts and rounds: it is 100x slower
    for batch_size, n in [(32, len(speed_texts)), (1, 256)]:
        speeds = round_robin_throughput(rows[:1], speed_texts[: n // 4], batch_size, 3)
        speeds += round_robin_throughput(fast, speed_texts[:n], batch_size, 7)
        for row, sps in zip(rows, speeds):
            row.metrics[f"sps{batch_size}"] = sps
    ref = rows[0].metrics
    print(
        f"\nCPU threads: {args.threads}; held-out: {len(heldout)} Wikipedia sentences; "
        f"SciFact test: {len(queries)} queries, "
        f"{len(docs)} docs; speed: median of 7 round-robin rounds on {len(speed_texts)} STS-B dev sentences "
        f"(batch 1: 256; the teacher: a quarter of those, 3 rounds).\n"
    )
    print(
        "| model | STS-B dev Spearman | cos to teacher | top-10 overlap | SciFact nDCG@10 | sent/s b=32 | sent/s b=1 "
        "| params (trainable) | size MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        m = row.metrics
        cos = f"{m['cosine']:.3f}" if m["cosine"] is not None else f"n/a ({row.dim}-d)"
        print(
            f"| {row.name} | {m['stsb']:.4f} ({m['stsb'] / ref['stsb']:.1%}) | {cos} | {m['top10']:.3f} "
            f"| {m['ndcg']:.4f} ({m['ndcg'] / ref['ndcg']:.1%}) "
            f"| {m['sps32']:,.0f} ({m['sps32'] / ref['sps32']:.0f}x) "
            f"| {m['sps1']:,.0f} ({m['sps1'] / ref['sps1']:.0f}x) "
            f"| {row.params / 1e6:.1f}M ({row.trainable / 1e6:.2f}M) "
            f"| {folder_mb(row.path):.0f} |"
        )
    folded = next(r.metrics for r in rows if r.name == "ours: student (folded)")
    print(
        f"\nAsymmetric retrieval (queries by the folded student, documents indexed offline by the teacher): "
        f"SciFact nDCG@10 {folded['ndcg_teacher_docs']:.4f} "
        f"({folded['ndcg_teacher_docs'] / ref['ndcg']:.1%} of the teacher)"
    )
    by_name = {row.name: row.metrics for row in rows}
    pairs = [
        ("numpy", "ours: student (folded), NumpyStudent", "model2vec + tokenlearn (same corpus)"),
        (
            "SentenceTransformer",
            "ours: student (folded)",
            "model2vec + tokenlearn (same corpus), via SentenceTransformer",
        ),
    ]
    for interface, ours, peer in pairs:
        if peer in by_name:
            print(
                f"Folded student / model2vec + tokenlearn, both through {interface}: sent/s at b=32 "
                f"{by_name[ours]['sps32'] / by_name[peer]['sps32']:.2f}x, at b=1 "
                f"{by_name[ours]['sps1'] / by_name[peer]['sps1']:.2f}x"
            )
    results = {
        row.name: {**row.metrics, "params": row.params, "trainable": row.trainable, "size_mb": folder_mb(row.path)}
        for row in rows
    }
    (out / "student_bench.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
