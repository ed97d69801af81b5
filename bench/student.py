"""The student next to its teacher and the strongest static peers: quality next to speed, all measured in this run.

Rows: the teacher (all-MiniLM-L6-v2); model2vec distilled from the same teacher; model2vec further trained with
tokenlearn on the same corpus and the same teacher targets as our student; our student, unfolded and folded. Speed is
compared like with like: model2vec's own numpy ``StaticModel.encode`` next to our folded student in numpy
(``NumpyStudent``), and both through ``SentenceTransformer.encode`` (model2vec as ST's ``StaticEmbedding``).
Columns: STS-B dev Spearman; mean cosine to the teacher and top-10 neighbour overlap with the teacher on held-out
Wikipedia sentences; SciFact nDCG@10 (exact Faiss search, same for all); sentences/s at batch 32 and batch 1 on
STS-B dev sentences (CPU, --threads threads); parameters (trainable); size on disk. Ratios are to the teacher.

    python bench/student.py --student runs/student [--threads 2]   # writes bench/results/student.{md,json}
    python bench/student.py --student runs/small --small              # smoke run (CI): a few hundred texts

``--student`` is a folder written by ``st-bertapprox distill`` (``student/``, ``student-folded/``, ``results.json``).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from common import (
    Report,
    Row,
    RowKind,
    bench_parser,
    folder_mb,
    markdown_table,
    measure_speed,
    model2vec_rows,
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
from st_bertapprox.data.shared import load_stsb, teacher_path
from st_bertapprox.distill.teacher_cache import encode_cached
from st_bertapprox.evaluation import mean_cosine, neighbour_overlap, retrieval_ndcg
from st_bertapprox.inference.numpy_student import NumpyStudent
from st_bertapprox.modules.student import fold_student
from st_bertapprox.persistence.saving import save_with_code

# evaluation sizes: (STS-B dev pairs, SciFact queries, SciFact extra docs, speed texts, speed rounds); None = all
FULL = dict(stsb_pairs=None, queries=None, docs=None, speed_texts=2048, rounds=7)
SMALL = dict(stsb_pairs=300, queries=50, docs=500, speed_texts=256, rounds=2)

# rows whose queries also search documents embedded by the teacher (asymmetric retrieval)
ASYMMETRIC = (RowKind.OURS, RowKind.GENERAL)
# the speed comparisons with model2vec + tokenlearn: (interface, our row's kind, the peer row's kind)
SPEED_PAIRS = [
    ("numpy", RowKind.OURS_NUMPY, RowKind.TOKENLEARN),
    ("SentenceTransformer", RowKind.OURS, RowKind.TOKENLEARN_ST),
]


def student_rows(student_dir: Path, out: Path, trainable: int) -> list[Row]:
    """Our student unfolded, folded, folded in numpy (NumpyStudent) and folded with a float16 table."""
    unfolded = SentenceTransformer(str(student_dir / "student"), trust_remote_code=True, device="cpu")
    folded = SentenceTransformer(str(student_dir / "student-folded"), trust_remote_code=True, device="cpu")
    numpy_student = NumpyStudent.from_model(folded)  # the same folded model, run in numpy
    half_dir = out / "student-folded-fp16"  # the folded table in float16: half the size, ~1e-4 deviations
    save_with_code(fold_student(unfolded, storage_dtype="float16"), str(half_dir))
    half = SentenceTransformer(str(half_dir), trust_remote_code=True, device="cpu")
    rows = [
        st_row("ours: student (unfolded)", RowKind.OURS_VARIANT, unfolded, str(student_dir / "student")),
        st_row("ours: student (folded)", RowKind.OURS, folded, str(student_dir / "student-folded")),
        Row(
            "ours: student (folded), NumpyStudent",
            RowKind.OURS_NUMPY,
            lambda texts, batch_size=32: numpy_student.encode(texts, batch_size=batch_size),
            str(student_dir / "student-folded"),
            sum(p.numel() for p in folded.parameters()),
            0,
            numpy_student.dim,
        ),
        st_row("ours: student (folded, fp16 table)", RowKind.OURS_VARIANT, half, str(half_dir)),
    ]
    for row in rows:
        row.trainable = trainable
    return rows


def evaluate(rows: list[Row], teacher: SentenceTransformer, heldout: list[str], sizes: dict) -> dict:
    """Quality columns of every row (the teacher row's held-out and document embeddings come from the teacher
    cache that ``distill`` filled); returns what the report's captions need."""
    dev = load_stsb("dev").select(range(sizes["stsb_pairs"] or len(load_stsb("dev"))))
    s1, s2, gold = list(dev["sentence1"]), list(dev["sentence2"]), dev["score"]
    corpus, queries, query_ids, qrels = scifact_subset(sizes)
    doc_ids, docs = list(corpus), list(corpus.values())
    query_texts = [queries[q] for q in query_ids]
    teacher_held = encode_cached(teacher, heldout, name="heldout")
    teacher_docs = encode_cached(teacher, docs, name="scifact corpus", batch_size=32)
    for row in rows:
        is_teacher = row.kind is RowKind.TEACHER
        held = teacher_held if is_teacher else row.encode(heldout)
        doc_emb = teacher_docs if is_teacher else row.encode(docs)
        query_emb = row.encode(query_texts)
        m = row.metrics
        m["stsb"] = spearman(row.encode(s1), row.encode(s2), gold)
        m["cosine"] = mean_cosine(held, teacher_held) if row.dim == teacher_held.shape[1] else None
        m["top10"] = neighbour_overlap(held, teacher_held, 10)
        m["ndcg"] = retrieval_ndcg(query_emb, doc_emb, query_ids, doc_ids, qrels, 10)
        if row.kind in ASYMMETRIC:
            m["ndcg_teacher_docs"] = retrieval_ndcg(query_emb, teacher_docs, query_ids, doc_ids, qrels, 10)
        print(f"measured {row.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in m.items() if v is not None), flush=True)
    return {"stsb_pairs": len(s1), "queries": len(query_ids), "docs": len(docs), "speed_texts": s1 + s2}


def report(rows: list[Row], report: Report, captions: dict) -> None:
    ref = teacher_of(rows).metrics
    report.print(
        f"Training corpus (ours and model2vec + tokenlearn): {captions['corpus']}. "
        f"CPU threads: {captions['threads']}; held-out: {captions['heldout']}; STS-B dev: "
        f"{captions['stsb_pairs']} pairs; SciFact test: {captions['queries']} queries, {captions['docs']} docs; "
        f"speed: median of {captions['rounds']} round-robin rounds on {captions['n_speed']} STS-B dev sentences "
        f"(batch 1: {captions['n_speed'] // 8}; the teacher: a quarter of those, "
        f"{min(3, captions['rounds'])} rounds).",
        "",
    )
    table = []
    for row in rows:
        m = row.metrics
        cos = f"{m['cosine']:.3f}" if m["cosine"] is not None else f"n/a ({row.dim}-d)"
        table.append(
            [
                row.name,
                f"{m['stsb']:.4f} ({m['stsb'] / ref['stsb']:.1%})",
                cos,
                f"{m['top10']:.3f}",
                f"{m['ndcg']:.4f} ({m['ndcg'] / ref['ndcg']:.1%})",
                f"{m['sps32']:,.0f} ({m['sps32'] / ref['sps32']:.0f}x)",
                f"{m['sps1']:,.0f} ({m['sps1'] / ref['sps1']:.0f}x)",
                f"{row.params / 1e6:.1f}M ({row.trainable / 1e6:.2f}M)",
                f"{folder_mb(row.path):.0f}",
            ]
        )
    header = ["model", "STS-B dev Spearman", "cos to teacher", "top-10 overlap", "SciFact nDCG@10", "sent/s b=32"]
    report.print(*markdown_table(header + ["sent/s b=1", "params (trainable)", "size MB"], table), "")
    for row in of_kind(rows, *ASYMMETRIC):
        m = row.metrics
        report.print(
            f"Asymmetric retrieval, {row.name} (queries by the student, documents indexed offline by the teacher): "
            f"SciFact nDCG@10 {m['ndcg_teacher_docs']:.4f} ({m['ndcg_teacher_docs'] / ref['ndcg']:.1%} of the "
            "teacher)"
        )
    for interface, our_kind, peer_kind in SPEED_PAIRS:
        for ours, peer in zip(of_kind(rows, our_kind), of_kind(rows, peer_kind)):
            report.print(
                f"Folded student / model2vec + tokenlearn, both through {interface}: sent/s at b=32 "
                f"{ours.metrics['sps32'] / peer.metrics['sps32']:.2f}x, at b=1 "
                f"{ours.metrics['sps1'] / peer.metrics['sps1']:.2f}x"
            )


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--student", required=True, help="folder written by `st-bertapprox distill`")
    parser.add_argument("--out", default="runs/bench", help="where the peer models and the fp16 student go")
    parser.add_argument("--no-model2vec", action="store_true")
    parser.add_argument("--no-tokenlearn", action="store_true")
    parser.add_argument(
        "--general",
        help="a general run folder (default corpus) to compare with a fitted --student: its folded student is a row",
    )
    parser.add_argument("--name", default="student", help="the results file name: <results>/<name>.md and .json")
    args = parser.parse_args()
    set_threads(args.threads)
    sizes = SMALL if args.small else FULL
    out, student_dir = Path(args.out), Path(args.student)
    out.mkdir(parents=True, exist_ok=True)
    info = json.loads((student_dir / "results.json").read_text())

    teacher = SentenceTransformer(teacher_path(), device="cpu")
    _, train_texts, heldout = load_corpus(**info["corpus"])
    rows = [st_row("teacher: all-MiniLM-L6-v2", RowKind.TEACHER, teacher, teacher_path())]
    if not args.no_model2vec:
        train_emb = partial(encode_cached, teacher, train_texts, name="corpus")  # only if tokenlearn must train
        rows += model2vec_rows(out, train_texts, train_emb, tokenlearn=not args.no_tokenlearn)
        for peer in of_kind(rows, RowKind.TOKENLEARN):  # the same model through SentenceTransformer.encode
            rows.append(static_st_row(f"{peer.name}, via SentenceTransformer", RowKind.TOKENLEARN_ST, peer.path))
            rows[-1].trainable = peer.trainable
    rows += student_rows(student_dir, out, info["trainable_parameters"])
    if args.general:
        general = Path(args.general)
        model = SentenceTransformer(str(general / "student-folded"), trust_remote_code=True, device="cpu")
        name = "general student (folded, default corpus)"
        rows.append(st_row(name, RowKind.GENERAL, model, str(general / "student-folded")))
        rows[-1].trainable = json.loads((general / "results.json").read_text())["trainable_parameters"]

    captions = evaluate(rows, teacher, heldout, sizes)
    measure_speed(rows, captions.pop("speed_texts"), sizes)
    rep = Report(args.name, args)
    source = ", ".join(info["corpus"]["files"]) if info["corpus"].get("files") else "Wikipedia sentences"
    captions.update(
        threads=args.threads,
        heldout=f"{len(heldout)} texts of {source}",
        rounds=sizes["rounds"],
        n_speed=sizes["speed_texts"],
        corpus=f"{len(train_texts):,} texts of {', '.join(info['datasets'])}",
    )
    report(rows, rep, captions)
    rep.save(
        {
            row.name: {**row.metrics, "params": row.params, "trainable": row.trainable, "size_mb": folder_mb(row.path)}
            for row in rows
        }
    )


if __name__ == "__main__":
    main()
