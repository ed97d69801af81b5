"""Retrieval and serving: quality next to index and query speed, for every model kind and runtime, in one run.

Rows: the teacher (all-MiniLM-L6-v2 through SentenceTransformer), the scratch BERT (``BertTransformer`` + mean
pooling, same weights), the student of ``--student`` (a ``st-bertapprox distill`` run folder: its folded student,
through SentenceTransformer and as ``NumpyStudent``), their ONNX and ONNX-int8 exports
(``st_bertapprox.inference.onnx``), and the asymmetric setup (documents by the teacher, queries by the student). Every
row builds its indexes with ``st_bertapprox.inference.index.SearchIndex`` (the code behind ``st-bertapprox index``)
over SciFact's corpus and searches SciFact's test queries with the row's model:

* nDCG@10 and Recall@100, exact (``flat``) and HNSW, and HNSW's recall@10 against exact search (the share of the
  exact top 10 that HNSW returns);
* index build time and documents/s (encoding included), query latency p50/p95 at batch 1 and queries/s at batch 32
  (encoding + search), index and model size.

Then indexing at scale on the Wikipedia sentences (``--wiki`` of them): the student on all of them (flat, HNSW,
IVF-PQ at dim/8 and dim/4 bytes of codes: build time, size, recall@10 against exact), the teacher on a sample
(``--teacher-sample``), its time for all of them extrapolated and labelled so; the teacher's sample again through
sentence-transformers' multi-process pool (two CPU processes: the same code path as ``st-bertapprox index
--devices``), which must return the same ids.
Last, the embedding cache (``retrieval.CachedEncoder``) on a Zipfian stream of queries with repeats.

    python bench/retrieval.py --student runs/student            # writes bench/results/retrieval.{md,json}
    python bench/retrieval.py --student runs/small --small      # smoke run (CI): a few hundred texts
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    Report,
    RowKind,
    bench_parser,
    folder_mb,
    markdown_table,
    scifact_subset,
    set_threads,
    spearman,
    teacher_of,
)
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

from st_bertapprox import BertTransformer
from st_bertapprox.config import IndexConfig
from st_bertapprox.data.shared import load_sentences, load_stsb, teacher_path
from st_bertapprox.evaluation.retrieval import ndcg_at_k, recall_at_k
from st_bertapprox.inference.encoders import CachedEncoder
from st_bertapprox.inference.index import SearchIndex, encode_unit
from st_bertapprox.inference.numpy_student import NumpyStudent
from st_bertapprox.inference.onnx import export, load_export

FULL = dict(
    stsb_pairs=None,
    queries=None,
    docs=None,
    latency_queries=100,
    wiki=None,
    teacher_sample=10_000,
    stream=20_000,
    qps_seconds=2.0,
)
SMALL = dict(
    stsb_pairs=100, queries=12, docs=30, latency_queries=6, wiki=1_000, teacher_sample=64, stream=500, qps_seconds=0.1
)
EXPORTS = ("onnx", "onnx-int8")


def scale_indexes(dim: int) -> dict[str, IndexConfig]:
    """The indexes built over the Wikipedia sentences: exact, HNSW, IVF-PQ at the default dim/8 bytes of codes per
    vector and at dim/4 (twice the bytes: what recall it buys back)."""
    return {
        "flat": IndexConfig(kind="flat"),
        "hnsw": IndexConfig(kind="hnsw"),
        "ivfpq": IndexConfig(kind="ivfpq"),
        f"ivfpq, pq_m {dim // 4}": IndexConfig(kind="ivfpq", pq_m=dim // 4),
    }


@dataclass(eq=False)  # compared and hashed by identity: a row is a key of the embeddings it was measured with
class Row:
    name: str  # display name: the table's first column and the JSON key, never used to select a row
    kind: RowKind
    model: Any  # anything SearchIndex encodes with
    path: str  # what "model size" measures
    query_model: Any = None  # ASYMMETRIC rows: the query model (``model`` embeds the documents)
    source: Row | None = None  # EXPORT rows: the row they were exported from
    metrics: dict = field(default_factory=dict)


def ranked_ids(index: SearchIndex, queries: list[str], k: int) -> list[list[str]]:
    return [[hit.id for hit in hits] for hits in index.search(queries, k=k)]


def evaluate(row: Row, corpus: dict, query_texts: list[str], query_ids: list[str], qrels: dict, sizes: dict) -> None:
    """Every SciFact column of ``row`` (writes ``row.metrics``)."""
    ids, docs, m = list(corpus), list(corpus.values()), row.metrics
    cached = row.model if isinstance(row.model, CachedEncoder) else CachedEncoder(row.model, max_size=len(docs))
    with tempfile.TemporaryDirectory() as tmp:
        built = {}
        for kind in ("flat", "hnsw"):  # the flat build encodes the documents (timed), HNSW reuses them from the cache
            t0 = time.perf_counter()
            query_model = row.query_model or (row.model.model if isinstance(row.model, CachedEncoder) else row.model)
            index = SearchIndex.build(cached, docs, ids, config=IndexConfig(kind=kind), query_model=query_model)
            m[f"{kind}_build_s"] = time.perf_counter() - t0
            index.save(Path(tmp) / kind)
            m[f"{kind}_mb"] = folder_mb(Path(tmp) / kind / "index.faiss")
            built[kind] = index
    m["docs_per_s"] = len(docs) / m["flat_build_s"]
    for kind, index in built.items():
        ranked = ranked_ids(index, query_texts, 100)
        run = dict(zip(query_ids, ranked))
        m[f"{kind}_ndcg10"], m[f"{kind}_recall100"] = ndcg_at_k(run, qrels, 10), recall_at_k(run, qrels, 100)
        m[f"{kind}_top10"] = [r[:10] for r in ranked]
    m["hnsw_agreement10"] = float(
        np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(m.pop("flat_top10"), m.pop("hnsw_top10")) if a])
    )
    index = built["flat"]
    latency = []
    for query in query_texts[: sizes["latency_queries"]] * (2 if len(query_texts) < 50 else 1):
        t0 = time.perf_counter()
        index.search([query], k=10)
        latency.append(time.perf_counter() - t0)
    m["p50_ms"], m["p95_ms"] = 1e3 * statistics.median(latency), 1e3 * float(np.percentile(latency, 95))
    passes, t_all = [], time.perf_counter()  # a pass takes ~0.1 s for a student: repeat, report the median pass
    while len(passes) < 3 or (time.perf_counter() - t_all < sizes["qps_seconds"] and len(passes) < 50):
        t0 = time.perf_counter()
        for start in range(0, len(query_texts), 32):
            index.search(query_texts[start : start + 32], k=10, batch_size=32)
        passes.append(len(query_texts) / (time.perf_counter() - t0))
    m["qps32"], m["qps32_passes"] = statistics.median(passes), len(passes)
    m["model_mb"] = folder_mb(row.path)


def stsb_columns(rows: list[Row], pairs: int | None) -> None:
    """STS-B dev Spearman of every row's model (the asymmetric row excepted: its queries are the NumpyStudent
    row's); an export's drop from its source and per-sentence cosine to it (min, mean) over the dev sentences."""
    dev = load_stsb("dev")
    dev = dev.select(range(pairs or len(dev)))
    s1, s2, gold = list(dev["sentence1"]), list(dev["sentence2"]), dev["score"]
    texts = list(dict.fromkeys(s1 + s2))
    pos = {t: i for i, t in enumerate(texts)}
    emb: dict[Row, np.ndarray] = {}
    for row in rows:
        if row.kind is RowKind.ASYMMETRIC:
            continue
        model = row.model.model if isinstance(row.model, CachedEncoder) else row.model
        emb[row] = e = encode_unit(model, texts, batch_size=32)
        row.metrics["stsb"] = spearman(e[[pos[t] for t in s1]], e[[pos[t] for t in s2]], gold)
        if row.source:
            cos = (e * emb[row.source]).sum(1)
            nonzero = np.linalg.norm(emb[row.source], axis=1) > 0
            row.metrics["stsb_drop"] = row.source.metrics["stsb"] - row.metrics["stsb"]
            row.metrics["cos_min"], row.metrics["cos_mean"] = float(cos[nonzero].min()), float(cos[nonzero].mean())


def scale(student: NumpyStudent, teacher: SentenceTransformer, sizes: dict, with_pool: bool) -> dict:
    """Indexing the Wikipedia sentences: the student on all, the teacher on a sample (+ ST's multi-process pool)."""
    sentences = load_sentences(limit=sizes["wiki"])
    ids = [str(i) for i in range(len(sentences))]
    queries = sentences[:: max(1, len(sentences) // 200)][:200]
    out: dict[str, Any] = {"sentences": len(sentences)}
    exact = None
    with tempfile.TemporaryDirectory() as tmp:
        dim = encode_unit(student, ["dimension"], batch_size=1).shape[1]
        for kind, config in scale_indexes(dim).items():
            t0 = time.perf_counter()
            index = SearchIndex.build(student, sentences, ids, config=replace(config, store_texts=False))
            seconds = time.perf_counter() - t0
            index.save(Path(tmp) / kind)
            top = ranked_ids(index, queries, 10)
            exact = exact or top
            agreement = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, exact)]))
            out[kind] = {
                "seconds": seconds,
                "encode_seconds": index.meta["encode_seconds"],
                "docs_per_s": len(sentences) / seconds,
                "index_mb": folder_mb(Path(tmp) / kind / "index.faiss"),
                "bytes_per_vector": folder_mb(Path(tmp) / kind / "index.faiss") * 2**20 / len(sentences),
                "recall10_vs_exact": agreement,
            }
    sample = sentences[: sizes["teacher_sample"]]
    t0 = time.perf_counter()
    single = SearchIndex.build(teacher, sample, ids[: len(sample)], config=IndexConfig(store_texts=False))
    seconds = time.perf_counter() - t0
    out["teacher_sample"] = {
        "sentences": len(sample),
        "seconds": seconds,
        "docs_per_s": len(sample) / seconds,
        "extrapolated_all_s": seconds * len(sentences) / len(sample),
    }
    if not with_pool:
        return out
    pool = teacher.start_multi_process_pool(["cpu", "cpu"])
    try:
        t0 = time.perf_counter()
        pooled = SearchIndex.build(
            teacher, sample, ids[: len(sample)], config=IndexConfig(store_texts=False), encode_kwargs={"pool": pool}
        )
        out["teacher_pool"] = {"processes": 2, "seconds": time.perf_counter() - t0}
    finally:
        teacher.stop_multi_process_pool(pool)
    probe = sample[:: max(1, len(sample) // 50)][:50]
    same = ranked_ids(single, probe, 10) == ranked_ids(pooled, probe, 10)
    out["teacher_pool"]["same_ids"] = same
    return out


def cache_stream(models: dict[str, Any], pool: list[str], n: int, seed: int = 0) -> tuple[dict, dict[str, dict]]:
    """Queries/s with and without ``CachedEncoder`` on a Zipfian (s = 1.1) stream of ``n`` queries over ``pool``:
    (the stream's sizes, {name: the figures of ``models[name]``})."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(pool) + 1)
    p = ranks**-1.1 / (ranks**-1.1).sum()
    stream = [pool[i] for i in rng.choice(len(pool), size=n, p=p)]
    out, per_model = {"stream": n, "unique": len(set(stream)), "pool": len(pool)}, {}
    for name, model in models.items():
        cached = CachedEncoder(model, max_size=10_000)
        timings = {}
        for label, encoder in (("plain", model), ("cached", cached)):
            t0 = time.perf_counter()
            for start in range(0, n, 32):
                encoder.encode(stream[start : start + 32], batch_size=32)
            timings[label] = n / (time.perf_counter() - t0)
        per_model[name] = {**timings, "hit_rate": cached.hits / (cached.hits + cached.misses)}
    return out, per_model


def main() -> None:
    start = time.perf_counter()
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--student", default="runs/student", help="a `st-bertapprox distill` run folder")
    parser.add_argument("--out", default="runs/bench-retrieval", help="where the exports are written")
    args = parser.parse_args()
    set_threads(args.threads)
    sizes = SMALL if args.small else FULL
    out = Path(args.out)
    run = Path(args.student)
    student_dir = run / "student-folded" if (run / "student-folded").is_dir() else run / "student"

    teacher = SentenceTransformer(teacher_path(), device="cpu")
    scratch = SentenceTransformer(
        modules=[BertTransformer(teacher_path()), Pooling(384, "mean"), Normalize()], device="cpu"
    )
    student = SentenceTransformer(str(student_dir), trust_remote_code=True, device="cpu")
    fast = NumpyStudent.from_model(student)
    teacher_docs = CachedEncoder(teacher, max_size=10**6)  # the asymmetric row reuses the teacher's documents
    exported = {  # row -> the model exported from it
        Row("teacher", RowKind.TEACHER, teacher_docs, teacher_path()): teacher,
        Row("scratch BERT", RowKind.SCRATCH, scratch, teacher_path()): scratch,
        Row("student", RowKind.OURS, student, str(student_dir)): student,
    }
    rows = [*exported, Row("student, NumpyStudent", RowKind.OURS_NUMPY, fast, str(student_dir))]
    for source, model in exported.items():
        for fmt in EXPORTS:
            folder = out / f"{source.name.replace(' ', '-')}-{fmt}"
            t0 = time.perf_counter()
            export(model, folder, fmt)
            print(f"exported {source.name} as {fmt} in {time.perf_counter() - t0:.0f} s", flush=True)
            rows.append(Row(f"{source.name}, {fmt}", RowKind.EXPORT, load_export(folder), str(folder), source=source))
    name = "asymmetric: teacher docs, NumpyStudent queries"
    rows.append(Row(name, RowKind.ASYMMETRIC, teacher_docs, teacher_path(), query_model=fast))

    stsb_columns(rows, sizes["stsb_pairs"])
    corpus, queries, query_ids, qrels = scifact_subset(sizes)
    query_texts = [queries[q] for q in query_ids]
    for row in rows:
        t0 = time.perf_counter()
        evaluate(row, corpus, query_texts, query_ids, qrels, sizes)
        print(f"{row.name}: {time.perf_counter() - t0:.0f} s, nDCG@10 {row.metrics['flat_ndcg10']:.4f}", flush=True)
    at_scale = scale(fast, teacher, sizes, with_pool=not args.small)
    stream_pool = list(dict.fromkeys(query_texts + load_sentences(limit=2000)))
    stream, cache = cache_stream({"teacher": teacher, "NumpyStudent": fast}, stream_pool, sizes["stream"])

    rep = Report("retrieval", args)
    ref = teacher_of(rows).metrics
    header = [
        "model", "STS-B dev", "drop vs source", "cos to source min / mean", "nDCG@10", "R@100", "HNSW nDCG@10",
        "HNSW R@100", "HNSW agree@10", "build s", "docs/s",
        "p50 ms (b=1)", "p95 ms", "q/s (b=32)", "q/s ratio", "flat MB", "HNSW MB", "model MB",
    ]  # fmt: skip
    table = [
        [
            r.name,
            f"{r.metrics['stsb']:.4f}" if "stsb" in r.metrics else "",
            f"{r.metrics['stsb_drop']:.4f}" if "stsb_drop" in r.metrics else "",
            f"{r.metrics['cos_min']:.4f} / {r.metrics['cos_mean']:.4f}" if "cos_min" in r.metrics else "",
            f"{r.metrics['flat_ndcg10']:.4f}",
            f"{r.metrics['flat_recall100']:.4f}",
            f"{r.metrics['hnsw_ndcg10']:.4f}",
            f"{r.metrics['hnsw_recall100']:.4f}",
            f"{r.metrics['hnsw_agreement10']:.3f}",
            *(
                ["teacher's", "teacher's"]  # its documents are the teacher row's (from the cache)
                if r.kind is RowKind.ASYMMETRIC
                else [f"{r.metrics['flat_build_s']:.1f}", f"{r.metrics['docs_per_s']:,.0f}"]
            ),
            f"{r.metrics['p50_ms']:.2f}",
            f"{r.metrics['p95_ms']:.2f}",
            f"{r.metrics['qps32']:,.0f}",
            f"{r.metrics['qps32'] / ref['qps32']:.1f}x",
            f"{r.metrics['flat_mb']:.1f}",
            f"{r.metrics['hnsw_mb']:.1f}",
            f"{r.metrics['model_mb']:.1f}",
        ]
        for r in rows
    ]
    ts = at_scale["teacher_sample"]
    scaled = [
        [f"student (NumpyStudent), {kind}", f"{s['seconds']:.1f}", f"{s['docs_per_s']:,.0f}", f"{s['index_mb']:.1f}",
         f"{s['bytes_per_vector']:.0f}", f"{s['recall10_vs_exact']:.3f}"]
        for kind, s in ((k, v) for k, v in at_scale.items() if isinstance(v, dict) and "recall10_vs_exact" in v)
    ] + [
        [f"teacher, flat, {ts['sentences']:,}-sentence sample", f"{ts['seconds']:.1f}", f"{ts['docs_per_s']:,.0f}",
         "", "", ""],
        [f"teacher, flat, all {at_scale['sentences']:,} (extrapolated from the sample)",
         f"{ts['extrapolated_all_s']:,.0f}", f"{ts['docs_per_s']:,.0f}", "", "", ""],
    ]  # fmt: skip
    if "teacher_pool" in at_scale:  # full runs only
        pool_run = at_scale["teacher_pool"]
        scaled.append(
            [f"teacher, flat, sample, ST multi-process pool ({pool_run['processes']} CPU processes; same ids: "
             f"{'yes' if pool_run['same_ids'] else 'NO'})", f"{pool_run['seconds']:.1f}",
             f"{ts['sentences'] / pool_run['seconds']:,.0f}", "", "", ""]
        )  # fmt: skip
    cache_rows = [
        [name, f"{c['plain']:,.0f}", f"{c['cached']:,.0f}", f"{c['cached'] / c['plain']:.1f}x", f"{c['hit_rate']:.2f}"]
        for name, c in cache.items()
    ]
    wall = time.perf_counter() - start
    rep.print(
        f"STS-B dev: {len(load_stsb('dev').select(range(sizes['stsb_pairs'] or 1500)))} pairs (Spearman of cosines; "
        "an export's drop from its source model and its per-sentence cosine to it over the dev sentences). "
        f"SciFact test: {len(query_ids)} queries, {len(corpus):,} documents; CPU threads: {args.threads}; student: "
        f'{student_dir}. HNSW: M 32, efConstruction 200, efSearch 128; "agree@10": share of the exact top 10 that '
        "HNSW returns. Build: encoding + adding, exact index. Latency: encode + search of one query, "
        f"{len(query_texts[: sizes['latency_queries']])} queries; q/s: all queries in batches of 32, encode + search, "
        f"the median of at least 3 passes ({sizes['qps_seconds']:g} s at least); ratio to the teacher. ONNX rows run "
        "on onnxruntime (CPU).",
        "",
        *markdown_table(header, table),
        "",
        f"Indexing {at_scale['sentences']:,} Wikipedia sentences (IVF-PQ: {IndexConfig().pq_bits}-bit codes, "
        "dim/8 sub-quantizers unless named, 4 sqrt(n) lists, nprobe 16; recall@10 of 200 sentence queries against "
        "exact):",
        "",
        *markdown_table(["indexing", "seconds", "docs/s", "index MB", "bytes/vector", "recall@10 vs exact"], scaled),
        "",
        f"Embedding cache (CachedEncoder, 10,000 entries), a Zipfian stream (s = 1.1) of {stream['stream']:,} queries "
        f"over {stream['pool']:,} distinct texts ({stream['unique']:,} of them occur), batches of 32:",
        "",
        *markdown_table(["model", "q/s plain", "q/s cached", "speed-up", "hit rate"], cache_rows),
        "",
        f"Wall time of the whole run: {wall:.0f} s.",
    )
    rows_json = {r.name: r.metrics for r in rows}
    rep.save({"rows": rows_json, "scale": at_scale, "cache": {**stream, **cache}, "wall_s": wall})


if __name__ == "__main__":
    main()
