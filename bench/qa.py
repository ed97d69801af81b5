"""Retrieval-augmented extractive QA on XQuAD-en (issue #15), one run: train the reader on the training articles, then
read the held-out articles' questions with the gold paragraph (reader only) and after retrieval from all their
paragraphs, with the teacher and with the student as retriever.

The reader is all-MiniLM-L6-v2 on our from-scratch BERT with a span head and a reasoning-type head
(``st_bertapprox.qa``), trained by ``transformers.Trainer`` with ``QAConfig``'s recipe; EM/F1 are the official
SQuAD v1.1 metric; the reasoning accuracy is measured on weak, rule-made labels (``st_bertapprox.qa.reasoning``).

    python bench/qa.py --threads 1                      # train + evaluate: bench/results/qa.{md,json}
    python bench/qa.py --reader runs/qa/reader          # a reader `st-bertapprox train-qa` trained (same recipe)
    python bench/qa.py --small                          # smoke run (CI): 16 training and 16 evaluated questions
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from common import Report, bench_parser, markdown_table, set_threads

from st_bertapprox.config import QAConfig
from st_bertapprox.data.shared import teacher_path
from st_bertapprox.persistence.loading import load_model
from st_bertapprox.qa.evaluate import evaluate_end_to_end, evaluate_reader
from st_bertapprox.qa.reader import Reader
from st_bertapprox.qa.train import paragraphs, qa_split, reader_for, train_reader

DEFAULT_STUDENT = Path("runs/student/student-folded")


def trained_reader(args, config: QAConfig, split: dict) -> tuple[Reader, dict]:
    """Train (into ``--out``), or reuse ``--reader`` if its results.json records this very recipe."""
    if args.reader:
        results = json.loads((Path(args.reader) / "results.json").read_text(encoding="utf-8"))
        if results["config"] != asdict(config):
            raise SystemExit(f"{args.reader} was trained with another recipe than this bench's: {results['config']}")
        windows = {
            k: getattr(config, k) for k in ("max_length", "doc_stride", "max_query_length", "max_answer_length")
        }
        return Reader(args.reader, **windows), results["train"]
    out = args.out or ("runs/qa/reader-small" if args.small else "runs/qa/reader")
    model, tokenizer, facts = train_reader(split["train"], config, out, teacher_path())
    return reader_for(model, tokenizer, config), facts


def rows(reader_scores: dict, end_to_end: dict[str, dict], ks: list[int], n: int) -> list[list[str]]:
    ms = lambda seconds, digits=0: f"{1000 * seconds / n:.{digits}f}"  # noqa: E731  per question
    out = [["reader only (gold paragraph)", "-", f"{reader_scores['exact_match']:.1f}", f"{reader_scores['f1']:.1f}",
            "100.0", "-", ms(reader_scores["seconds"]), "-"]]  # fmt: skip
    teacher = next(iter(end_to_end.values()))  # the first retriever is the teacher: the speed reference
    for name, res in end_to_end.items():
        for k in ks:
            r = res[f"k={k}"]
            ratio = teacher[f"k={k}"]["retrieve_seconds"] / r["retrieve_seconds"]
            scores = [f"{r['exact_match']:.1f}", f"{r['f1']:.1f}", f"{r['hit']:.1f}"]
            speed = [ms(r["retrieve_seconds"], 1), ms(r["read_seconds"]), f"{ratio:.1f}x"]
            out.append([f"{name} retrieves, reader reads", str(k), *scores, *speed])
    return out


def main() -> None:
    start = time.perf_counter()
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--reader", help="a reader folder trained by `st-bertapprox train-qa` with this recipe")
    parser.add_argument("--out", help="where a reader trained here goes (default: runs/qa/reader[-small])")
    parser.add_argument("--student", type=Path, default=DEFAULT_STUDENT, help=f"default: {DEFAULT_STUDENT}")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 3], help="passages retrieved and read (default: 1 3)")
    args = parser.parse_args()
    set_threads(args.threads)
    config = QAConfig.small() if args.small else QAConfig()
    split = qa_split(config)
    rep = Report("qa", args)
    reader, facts = trained_reader(args, config, split)
    examples = split["eval"]
    pool = paragraphs(split["eval_articles"])
    rep.print(
        f"XQuAD-en split by article (seed {config.split_seed}): {len(split['train'])} training questions from "
        f"{len(split['train_articles'])} articles, {len(examples)} evaluated questions from "
        f"{config.eval_articles} held-out articles ({', '.join(a['title'] for a in split['eval_articles'])}); "
        f"passage pool for retrieval: their {len(pool)} paragraphs. Reader: all-MiniLM-L6-v2 (6 layers, 384 wide) "
        f"on our BertTransformer encoder + span head + reasoning head, epochs: {config.epochs}, batch "
        f"{config.batch_size}, learning rate {config.learning_rate:g}, windows {config.max_length}/stride "
        f"{config.doc_stride}, {config.negatives} same-article negative paragraph(s) per question; "
        f"{facts['features']} training windows, {facts['steps']} steps, {facts['train_seconds']:.0f} s of training. "
        f"Answers from different passages are ranked by {config.passage_score}. CPU threads: {args.threads}.",
    )
    train_questions = [ex["question"] for ex in split["train"]]
    reader_scores = evaluate_reader(reader, examples, train_questions)
    retrievers = {"teacher (all-MiniLM-L6-v2)": load_model(teacher_path())}
    if args.student.is_dir():
        retrievers["student (folded)"] = load_model(str(args.student))
    end_to_end = {
        name: evaluate_end_to_end(reader, model, examples, pool, tuple(args.k), config.passage_score)
        for name, model in retrievers.items()
    }
    header = ["pipeline", "k", "EM", "F1", "hit@k %", "retrieve ms/q", "read ms/q", "retrieval speed vs teacher"]
    rep.print("", *markdown_table(header, rows(reader_scores, end_to_end, args.k, len(examples))), "")
    if not args.student.is_dir():
        rep.print(f"No student row: {args.student} does not exist (pass --student DIR).", "")
    r = reader_scores
    per_label = ", ".join(f"{label} {c}/{n}" for label, (c, n) in sorted(r["reasoning_per_label"].items()))
    rep.print(
        f"Reasoning type (weak labels from the question's wording, not annotations): {r['reasoning_accuracy']:.1f} % "
        f"right; always answering the training questions' most frequent label ({r['reasoning_majority_label']}) "
        f"scores {r['reasoning_majority_accuracy']:.1f} %. Per label (right/total): {per_label}.",
        "",
        "EM/F1: official SQuAD v1.1 metric (percent). hit@k: the gold paragraph is among the k retrieved. Timings "
        f"(milliseconds per question, all questions in one batch, {args.threads} CPU threads): compare them within "
        "this run. Indexing the pool (embedding every paragraph once): "
        + ", ".join(f"{name} {res['index_seconds']:.1f} s" for name, res in end_to_end.items())
        + ".",
        "",
        f"Wall time of the whole run: {time.perf_counter() - start:.0f} s.",
    )
    rep.save({"config": asdict(config), "train": facts, "reader": reader_scores, "end_to_end": end_to_end,
              "eval_articles": [a["title"] for a in split["eval_articles"]], "threads": args.threads,
              "wall_s": time.perf_counter() - start})  # fmt: skip


if __name__ == "__main__":
    main()
