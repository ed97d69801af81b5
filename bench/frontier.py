"""Quality against speed: every student kind next to the teacher and the static peers, one table, one run.

Rows: the teacher (all-MiniLM-L6-v2); model2vec distilled from the same teacher; model2vec + tokenlearn trained on
the corpus of the first ``--model`` (the default corpus without one); every ``--model NAME=DIR`` (a run folder of
``st-bertapprox distill``: its folded student if it has ``student-folded/``, else ``student/``); every ``--fitted
NAME=DIR`` (a student fitted to SciFact's documents) followed by model2vec + tokenlearn trained on that run's corpus,
its competitor. Every row gets every column:

* STS-B dev Spearman; mean cosine to the teacher and top-10 neighbour overlap with it on the held-out texts of the
  first ``--model``'s corpus; SciFact test nDCG@10, symmetric (queries and documents by the model) and, for our
  students (trained into the teacher's space), asymmetric (documents by the teacher); topic clustering V-measure on
  AG News (test, title + description) and BBC News (title + article), MTEB's protocol
  (:func:`st_bertapprox.evaluation.clustering_v_measure`); "quality", the mean of the STS-B, SciFact and two
  clustering ratios to the teacher;
* sentences/s at batch 32 and batch 1 through ``SentenceTransformer.encode`` (model2vec as ST's
  ``StaticEmbedding``) and through the fast path where one exists (model2vec's numpy ``StaticModel.encode``, our
  ``NumpyStudent``), all in one round robin (``bench/common.py``'s ``measure_speed``); parameters (trainable);
  size on disk.

The teacher's embeddings come from the teacher cache (``st_bertapprox.distill.teacher_cache.encode_cached``), so a
rerun does not pay for them again. Besides the table, ``<results>/frontier.png`` plots quality against sentences/s at
batch 32.

    python bench/frontier.py --model "DeepSets student=runs/student" \\
        --fitted "DeepSets student, fitted to SciFact=runs/scifact"    # writes bench/results/frontier.{md,json,png}
    python bench/frontier.py --model student=runs/small --small        # smoke run (CI): a few hundred texts
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from common import (
    Report,
    Row,
    RowKind,
    bench_parser,
    folder_mb,
    markdown_table,
    measure_speed,
    model2vec_rows,
    named,
    of_kind,
    scifact_subset,
    set_threads,
    spearman,
    st_row,
    static_st_row,
    teacher_of,
)
from sentence_transformers import SentenceTransformer

from st_bertapprox.data.corpus import load_corpus
from st_bertapprox.data.shared import load_agnews, load_bbc, load_stsb, teacher_path
from st_bertapprox.distill.teacher_cache import encode_cached
from st_bertapprox.evaluation import clustering_v_measure, mean_cosine, neighbour_overlap, retrieval_ndcg
from st_bertapprox.inference.numpy_student import NumpyStudent

ROOT = Path(__file__).resolve().parents[1]

# evaluation sizes (None = all): STS-B dev pairs, SciFact test queries and extra documents, AG News / BBC texts (a
# seeded random sample), clustering runs and rows drawn per run (None = the texts' count), speed texts and rounds
FULL = dict(
    stsb_pairs=None, queries=None, docs=None, agnews=None, bbc=None, cluster_runs=10, cluster_sample=16_384,
    speed_texts=2048, rounds=7,
)  # fmt: skip
SMALL = dict(
    stsb_pairs=300, queries=50, docs=100, agnews=200, bbc=50, cluster_runs=3, cluster_sample=None,
    speed_texts=256, rounds=2,
)  # fmt: skip
QUALITY = ("stsb", "ndcg", "agnews", "bbc")  # the task scores whose mean ratio to the teacher is "quality"
TEACHER = "teacher: all-MiniLM-L6-v2"


# the kinds of row that also get asymmetric SciFact (documents by the teacher: our students are in its space)
ASYMMETRIC = (RowKind.OURS, RowKind.FITTED)


@dataclass
class FrontierRow(Row):
    """A ``Row`` whose ``encode`` is the model's own (quality is measured through it), with its speed paths."""

    st_encode: Callable | None = None  # through SentenceTransformer, when ``encode`` is not
    fast_encode: Callable | None = None  # the fast path (model2vec's StaticModel, our NumpyStudent), if any

    @classmethod
    def of(cls, row: Row, **changes) -> FrontierRow:
        """``row`` as a FrontierRow, with ``changes`` (``kind``, the speed paths)."""
        return cls(**{**vars(row), **changes})


@dataclass
class EvalData:
    """The evaluation texts by column group: ``texts[key]`` is encoded once per row (the teacher: from its cache)."""

    texts: dict[str, list[str]]
    gold: list[float]  # STS-B scores of the pairs texts["stsb1"], texts["stsb2"]
    query_ids: list[str]
    doc_ids: list[str]
    qrels: dict[str, dict[str, int]]
    labels: dict[str, list[str]]  # topic labels of texts["agnews"], texts["bbc"]


def sample(texts: list[str], labels: list[str], n: int | None, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` (text, label) pairs at random, in file order (BBC's file is grouped by topic); all when ``n`` is None."""
    if n is None or n >= len(texts):
        return texts, labels
    keep = sorted(random.Random(seed).sample(range(len(texts)), n))
    return [texts[i] for i in keep], [labels[i] for i in keep]


def load_eval_data(heldout: list[str], sizes: dict) -> EvalData:
    dev = load_stsb("dev")
    dev = dev.select(range(sizes["stsb_pairs"] or len(dev)))
    corpus, queries, query_ids, qrels = scifact_subset(sizes)
    agnews, agnews_labels = sample(*load_agnews(), sizes["agnews"])
    bbc, bbc_labels = sample(*load_bbc(), sizes["bbc"])
    texts = {
        "stsb1": list(dev["sentence1"]),
        "stsb2": list(dev["sentence2"]),
        "heldout": heldout,
        "queries": [queries[q] for q in query_ids],
        "docs": list(corpus.values()),
        "agnews": agnews,
        "bbc": bbc,
    }
    labels = {"agnews": agnews_labels, "bbc": bbc_labels}
    return EvalData(texts, list(dev["score"]), query_ids, list(corpus), qrels, labels)


# --- rows ---------------------------------------------------------------------------------------------------------


def peer_rows(
    out: Path,
    teacher: SentenceTransformer,
    train_texts: list[str],
    tokenlearn: bool,
    name: str,
    tokenlearn_kind: RowKind = RowKind.PEER,
) -> list[FrontierRow]:
    """model2vec distill (kind ``PEER``) and (``tokenlearn``) model2vec + tokenlearn on ``train_texts``, named
    ``name`` (kind ``tokenlearn_kind``): one row each, measured through model2vec's own encode, timed through it and
    through SentenceTransformer."""
    train_emb = partial(encode_cached, teacher, train_texts, name="corpus")  # only if tokenlearn must train
    kinds = {RowKind.PEER: RowKind.PEER, RowKind.TOKENLEARN: tokenlearn_kind}  # model2vec_rows' kind -> this table's
    return [
        FrontierRow.of(r, kind=kinds[r.kind], st_encode=static_st_row("", r.kind, r.path).encode, fast_encode=r.encode)
        for r in model2vec_rows(out, train_texts, train_emb, tokenlearn, tokenlearn_name=name)
    ]


def our_row(name: str, run: Path, kind: RowKind) -> FrontierRow:
    """A run folder's folded student (else its student) through SentenceTransformer, with NumpyStudent as its fast
    path when NumpyStudent can run it."""
    folder = run / "student-folded" if (run / "student-folded").is_dir() else run / "student"
    model = SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    row = FrontierRow.of(st_row(name, kind, model, str(folder)))
    row.trainable = json.loads((run / "results.json").read_text())["trainable_parameters"]
    if type(model[0]).__name__ != "VocabSetEncoder":
        return row  # not a student (the tiny transformer): no fast path
    try:
        fast = NumpyStudent.from_model(model)
        row.fast_encode = lambda texts, batch_size=32: fast.encode(texts, batch_size=batch_size)
    except ValueError as e:  # a student kind NumpyStudent does not run: no fast path
        print(f"{name}: no fast path ({e})", flush=True)
    return row


# --- columns ------------------------------------------------------------------------------------------------------


def stsb_column(embed: Callable, data: EvalData) -> dict:
    return {"stsb": spearman(embed("stsb1"), embed("stsb2"), data.gold)}


def agreement_columns(embed: Callable, teacher: dict[str, np.ndarray]) -> dict:
    held, ref = embed("heldout"), teacher["heldout"]
    cosine = mean_cosine(held, ref) if held.shape[1] == ref.shape[1] else None
    return {"cosine": cosine, "top10": neighbour_overlap(held, ref, 10)}


def scifact_columns(embed: Callable, data: EvalData, teacher: dict[str, np.ndarray], asymmetric: bool) -> dict:
    queries = embed("queries")
    ndcg = partial(retrieval_ndcg, query_ids=data.query_ids, doc_ids=data.doc_ids, qrels=data.qrels, k=10)
    asym = ndcg(queries, teacher["docs"]) if asymmetric else None
    return {"ndcg": ndcg(queries, embed("docs")), "ndcg_teacher_docs": asym}


def clustering_columns(embed: Callable, data: EvalData, sizes: dict) -> dict:
    v_measure = partial(clustering_v_measure, runs=sizes["cluster_runs"])
    return {
        key: v_measure(embed(key), data.labels[key], sample_size=sizes["cluster_sample"] or len(data.labels[key]))
        for key in ("agnews", "bbc")
    }


def evaluate(rows: list[FrontierRow], data: EvalData, teacher: dict[str, np.ndarray], sizes: dict) -> None:
    """Every quality column of every row; the teacher row's embeddings are ``teacher``."""
    for row in rows:
        cache: dict[str, np.ndarray] = {}

        def embed(key: str, row=row, cache=cache) -> np.ndarray:
            if key not in cache:
                cache[key] = teacher[key] if row.kind is RowKind.TEACHER else row.encode(data.texts[key])
            return cache[key]

        m = row.metrics
        m.update(stsb_column(embed, data))
        m.update(agreement_columns(embed, teacher))
        m.update(scifact_columns(embed, data, teacher, asymmetric=row.kind in ASYMMETRIC))
        m.update(clustering_columns(embed, data, sizes))
        print(f"measured {row.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in m.items() if v is not None), flush=True)
    ref = teacher_of(rows).metrics
    for row in rows:
        row.metrics["quality"] = float(np.mean([row.metrics[k] / ref[k] for k in QUALITY]))


def speed_columns(rows: list[FrontierRow], texts: list[str], sizes: dict) -> None:
    """sent/s at batch 32 and 1 of every row's SentenceTransformer path and fast path, in one round robin (the
    teacher on a quarter of the texts: see ``measure_speed``)."""
    paths = [(row, "", row.st_encode or row.encode) for row in rows]
    paths += [(row, "fast_", row.fast_encode) for row in rows if row.fast_encode]
    timed = [Row(row.name, row.kind, encode, row.path, 0, 0, row.dim) for row, _, encode in paths]
    measure_speed(timed, texts, sizes)
    for row in rows:
        row.metrics.update(fast_sps32=None, fast_sps1=None)
    for (row, prefix, _), t in zip(paths, timed):
        row.metrics[f"{prefix}sps32"], row.metrics[f"{prefix}sps1"] = t.metrics["sps32"], t.metrics["sps1"]


# --- output -------------------------------------------------------------------------------------------------------


def table(rows: list[FrontierRow]) -> list[str]:
    ref = teacher_of(rows).metrics

    def score(key: str, m: dict, digits: int = 4, ref_key: str | None = None) -> str:
        if m[key] is None:
            return "n/a"
        return f"{m[key]:.{digits}f} ({m[key] / ref[ref_key or key]:.1%})"

    def speed(value: float | None, ref_value: float) -> str:
        return "n/a" if value is None else f"{value:,.0f} ({value / ref_value:.0f}x)"

    lines = []
    for row in rows:
        m = row.metrics
        lines.append(
            [
                row.name,
                score("stsb", m),
                f"{m['cosine']:.3f}" if m["cosine"] is not None else f"n/a ({row.dim}-d)",
                f"{m['top10']:.3f}",
                score("ndcg", m),
                score("ndcg_teacher_docs", m, ref_key="ndcg"),
                score("agnews", m, 3),
                score("bbc", m, 3),
                f"{m['quality']:.1%}",
                speed(m["sps32"], ref["sps32"]),
                speed(m["sps1"], ref["sps1"]),
                speed(m["fast_sps32"], ref["sps32"]),
                speed(m["fast_sps1"], ref["sps1"]),
                f"{row.params / 1e6:.1f}M ({row.trainable / 1e6:.2f}M)",
                f"{folder_mb(row.path):.0f}",
            ]
        )
    header = ["model", "STS-B dev Spearman", "cos to teacher", "top-10 overlap", "SciFact nDCG@10"]
    header += ["SciFact, teacher docs", "AG News V", "BBC V", "quality", "sent/s b=32 (ST)", "sent/s b=1 (ST)"]
    header += ["sent/s b=32 (fast)", "sent/s b=1 (fast)", "params (trainable)", "size MB"]
    return markdown_table(header, lines)


# plot style of each kind of row: (colour, marker, legend)
STYLES = {
    RowKind.TEACHER: ("black", "o", "teacher"),
    RowKind.PEER: ("tab:orange", "o", "model2vec (+ tokenlearn)"),
    RowKind.OURS: ("tab:blue", "o", "ours"),
    RowKind.FITTED: ("tab:green", "D", "ours, fitted to SciFact"),
    RowKind.FITTED_PEER: ("tab:orange", "D", "model2vec + tokenlearn, fitted run's corpus"),
}


def plot(rows: list[FrontierRow], path: Path, threads: int) -> None:
    """Quality (mean ratio to the teacher; whiskers: the lowest and highest of its task ratios) against sent/s at
    batch 32 on a log axis: a filled point at the fastest path, a hollow one at SentenceTransformer's when slower."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = teacher_of(rows).metrics
    fig, ax = plt.subplots(figsize=(11, 6.5), dpi=120)
    speeds = []
    for i, row in enumerate(rows):
        m, (colour, marker, legend) = row.metrics, STYLES[row.kind]
        ratios = [m[k] / ref[k] for k in QUALITY]
        best = max(m["sps32"], m["fast_sps32"] or 0)
        speeds += [m["sps32"], best]
        ax.vlines(best, min(ratios), max(ratios), colour, alpha=0.3, lw=4)
        if best > m["sps32"]:
            ax.plot([m["sps32"], best], [m["quality"]] * 2, ":", color=colour, lw=1)
            ax.plot(m["sps32"], m["quality"], marker, mfc="white", mec=colour, ms=7)
        label = legend if legend not in ax.get_legend_handles_labels()[1] else None
        ax.plot(best, m["quality"], marker, color=colour, ms=8, label=label, ls="none")
        ax.annotate(
            row.name, (best, m["quality"]), xytext=(8, 7 if i % 2 else -12), textcoords="offset points", fontsize=8
        )
    ax.set_xscale("log")
    ax.set_xlim(min(speeds) / 2, max(speeds) * 6)  # room for the labels right of the fastest points
    ax.legend(loc="lower left", fontsize=8)
    ax.set_xlabel(f"sentences/s at batch 32, CPU, {threads} threads (fastest path; hollow: via SentenceTransformer)")
    ax.set_ylabel("quality: mean of STS-B, SciFact, AG News, BBC ratios to the teacher\n(bar: lowest to highest)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Quality against speed: students, static peers and the teacher")
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")  # long labels of the fastest points may pass the axes
    plt.close(fig)


def describe(texts: list[str], run: dict | None) -> str:
    return f"{len(texts):,} texts of {', '.join(run['datasets']) if run else 'the default corpus'}"


def main() -> None:
    start = time.perf_counter()
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", type=named, action="append", default=[], help="NAME=DIR: a run folder (repeatable)")
    parser.add_argument(
        "--fitted", type=named, action="append", default=[], help="NAME=DIR: a run fitted to SciFact (repeatable)"
    )
    parser.add_argument("--out", default="runs/bench", help="where the model2vec peers are written (and reused)")
    parser.add_argument("--no-model2vec", action="store_true")
    parser.add_argument("--no-tokenlearn", action="store_true")
    parser.add_argument("--name", default="frontier", help="the results file name: <results>/<name>.md, .json, .png")
    args = parser.parse_args()
    set_threads(args.threads)
    sizes = SMALL if args.small else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = {name: json.loads((run / "results.json").read_text()) for name, run in args.model + args.fitted}

    teacher = SentenceTransformer(teacher_path(), device="cpu")
    first = runs[args.model[0][0]] if args.model else None
    _, train_texts, heldout = load_corpus(**first["corpus"]) if first else load_corpus()
    tokenlearn = not args.no_tokenlearn
    rows = [FrontierRow.of(st_row(TEACHER, RowKind.TEACHER, teacher, teacher_path()))]
    if not args.no_model2vec:
        rows += peer_rows(out, teacher, train_texts, tokenlearn, "model2vec + tokenlearn (same corpus)")
    rows += [our_row(name, run, RowKind.OURS) for name, run in args.model]
    corpora = [f"model2vec + tokenlearn (same corpus): {describe(train_texts, first)}"]
    for name, run in args.fitted:
        rows.append(our_row(name, run, RowKind.FITTED))
        if not args.no_model2vec and tokenlearn:
            fitted_texts = load_corpus(**runs[name]["corpus"]).train
            peer = f"model2vec + tokenlearn (corpus of {name})"
            fitted_peers = peer_rows(out, teacher, fitted_texts, True, peer, tokenlearn_kind=RowKind.FITTED_PEER)
            rows += of_kind(fitted_peers, RowKind.FITTED_PEER)
            corpora.append(f"{peer}: {describe(fitted_texts, runs[name])}")

    data = load_eval_data(heldout, sizes)
    t0 = time.perf_counter()
    teacher_emb = {key: encode_cached(teacher, texts, name=key, batch_size=32) for key, texts in data.texts.items()}
    teacher_s = time.perf_counter() - t0
    evaluate(rows, data, teacher_emb, sizes)
    speed_columns(rows, data.texts["stsb1"] + data.texts["stsb2"], sizes)

    rep = Report(args.name, args)
    source = ", ".join(first["corpus"]["files"]) if first and first["corpus"].get("files") else "Wikipedia sentences"
    n_speed, rounds = sizes["speed_texts"], sizes["rounds"]
    n_cluster = sizes["cluster_sample"] or "all"
    wall_s = time.perf_counter() - start
    png_link = os.path.relpath((rep.dir / f"{args.name}.png").resolve(), ROOT)  # as README.md sees it
    rep.print(
        f"Training corpora: {'; '.join(corpora)}. CPU threads: {args.threads}; held-out: "
        f"{len(heldout)} texts of {source}; STS-B dev: {len(data.gold)} pairs; SciFact test: {len(data.query_ids)} "
        f'queries, {len(data.doc_ids)} docs ("teacher docs": documents embedded by the teacher, queries by the '
        f"student); clustering (V-measure, MTEB's protocol: MiniBatchKMeans, k = number of topics, mean of "
        f"{sizes['cluster_runs']} runs on {n_cluster} rows drawn with replacement): AG News test, "
        f"{len(data.labels['agnews'])} texts, 4 topics; BBC News, {len(data.labels['bbc'])} articles, 5 topics. "
        f"Quality: mean of the STS-B, SciFact (symmetric), AG News and BBC ratios to the teacher. Speed: median of "
        f"{rounds} round-robin rounds on {n_speed} STS-B dev sentences (batch 1: {n_speed // 8}; the teacher: a "
        f'quarter of those, {min(3, rounds)} rounds); "fast": model2vec\'s numpy StaticModel, our NumpyStudent; '
        "speed ratios are to the teacher through SentenceTransformer.",
        "",
        *table(rows),
        "",
        f"![quality against speed]({png_link})",
        "",
        f"Wall time of the whole run: {wall_s:.0f} s ({teacher_s:.0f} s of it encoding with the "
        "teacher what its cache did not hold yet).",
    )
    rep.dir.mkdir(parents=True, exist_ok=True)
    plot(rows, rep.dir / f"{args.name}.png", args.threads)
    results = {
        "rows": {
            row.name: {
                **row.metrics,
                "kind": row.kind.value,
                "params": row.params,
                "trainable": row.trainable,
                "size_mb": folder_mb(row.path),
            }
            for row in rows
        },
        "wall_s": wall_s,
        "teacher_encode_s": teacher_s,
        "sizes": sizes,
        "threads": args.threads,
        "plot": f"{args.name}.png",
    }
    rep.save(results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
