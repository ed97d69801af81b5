"""Ask questions over a document: retrieve the best passages with a sentence model, read them with the trained
reader, print the best answer span with its passage, score and reasoning type.

Without documents, the demo document is one held-out XQuAD-en article (the reader never trained on it) written as
Markdown, and the questions are its own, printed next to their gold answers. Same pipeline as `st-bertapprox ask`.

    st-bertapprox train-qa --output runs/qa/reader                       # once: the reader
    python examples/qa_over_document.py --reader runs/qa/reader          # the demo article, its questions
    python examples/qa_over_document.py --reader runs/qa/reader manual.pdf notes.md -q "When was it founded?"
    python examples/qa_over_document.py --reader runs/qa/reader --retriever runs/student/student-folded
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from st_bertapprox.config import QAConfig
from st_bertapprox.inference.encoders import load_encoder
from st_bertapprox.qa.pipeline import DocumentQA
from st_bertapprox.qa.reader import Reader
from st_bertapprox.qa.train import qa_split


def demo_document(folder: str, article: str) -> tuple[Path, list[tuple[str, list[str]]]]:
    """A held-out XQuAD-en article as a Markdown file, and its (question, gold answers)."""
    split = qa_split(QAConfig())
    found = [a for a in split["eval_articles"] if a["title"] == article]
    if not found:
        raise SystemExit(
            f"{article!r} is not a held-out article; pick one of {[a['title'] for a in split['eval_articles']]}"
        )
    paragraphs = found[0]["paragraphs"]
    path = Path(folder) / f"{article}.md"
    path.write_text(
        f"# {article.replace('_', ' ')}\n\n" + "\n\n".join(p["context"] for p in paragraphs), encoding="utf-8"
    )
    questions = [(qa["question"], [a["text"] for a in qa["answers"]]) for p in paragraphs for qa in p["qas"]]
    return path, questions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("documents", nargs="*", help="text, Markdown or PDF files (default: a held-out XQuAD article)")
    parser.add_argument("-q", "--question", action="append", help="a question (repeatable)")
    parser.add_argument("--reader", default="runs/qa/reader", help="a reader folder from `st-bertapprox train-qa`")
    parser.add_argument("--retriever", default="teacher", help="as `st-bertapprox ask --retriever`: teacher, a folder")
    parser.add_argument("--k", type=int, default=3, help="passages retrieved and read per question")
    parser.add_argument("--article", default="Oxygen", help="the held-out XQuAD article of the demo")
    parser.add_argument("--max-questions", type=int, default=8, help="demo: ask at most this many of its questions")
    args = parser.parse_args(argv)
    if not os.path.isfile(os.path.join(args.reader, "config.json")):
        raise SystemExit(
            f"No reader in {args.reader}: train one with `st-bertapprox train-qa --output {args.reader}`."
        )
    with tempfile.TemporaryDirectory() as tmp:
        documents, asked = args.documents, [(q, []) for q in args.question or []]
        if not documents:
            path, demo = demo_document(tmp, args.article)
            documents, asked = [path], asked or demo[: args.max_questions]
        if not asked:
            raise SystemExit("Give at least one --question for your documents.")
        retriever = load_encoder(args.retriever)
        qa = DocumentQA(Reader(args.reader), retriever, QAConfig().passage_score).add_documents(documents)
        names = ", ".join(Path(d).name for d in documents)
        print(f"{len(qa.passages)} passages from {names}; retriever: {args.retriever}")
        for (question, gold), answer in zip(asked, qa.ask_many([q for q, _ in asked], k=args.k)):
            print(
                f"\nQ: {question}\nA: {answer.text!r}" + (f"   (gold: {' | '.join(map(repr, gold))})" if gold else "")
            )
            print(f"   reasoning type: {answer.reasoning}; score {answer.score:.2f}; passage {answer.passage_id} "
                  f"(cosine {answer.retrieval_score:.2f}): {answer.passage[:160]}...")  # fmt: skip


if __name__ == "__main__":
    main()
