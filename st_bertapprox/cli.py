"""``st-bertapprox`` command line: build-vocab, distill (more subcommands register themselves below)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def _teacher(name: str | None):
    from sentence_transformers import SentenceTransformer

    from .data import teacher_path

    return SentenceTransformer(name or teacher_path(), trust_remote_code=True)


def _texts(args) -> tuple[list[str], list[str], list[str]]:
    from .data import load_sentences
    from .distill import default_corpus

    if not args.corpus:
        return default_corpus(args.num_sentences, args.heldout)
    texts = [t for path in args.corpus for t in load_sentences(path)]
    if len(texts) <= args.heldout:
        raise SystemExit(f"--corpus has {len(texts)} lines; need more than --heldout {args.heldout}")
    return texts[: -args.heldout], texts[: -args.heldout][: args.num_sentences], texts[-args.heldout :]


def cmd_build_vocab(args) -> None:
    from .vocab_builder import build_vocab

    mine_texts, _, _ = _texts(args)
    encoder = build_vocab(
        mine_texts,
        _teacher(args.teacher),
        args.output,
        batch_size=args.batch_size,
        devices=args.devices,
        max_ngram=args.max_ngram,
        max_unigrams=args.max_unigrams,
        max_ngrams=args.max_ngrams,
        max_skipgrams=args.max_skipgrams,
        min_count=args.min_count,
    )
    print(f"vocabulary of {len(encoder.vocab)} entries saved to {args.output}")


def cmd_distill(args) -> None:
    from .distill import DistillConfig, distill_pipeline

    config = DistillConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate)
    mine_texts, train_texts, heldout = _texts(args)
    result = distill_pipeline(
        _teacher(args.teacher),
        mine_texts,
        train_texts,
        heldout,
        args.output,
        config=config,
        vocab_dir=args.vocab,
        devices=args.devices,
    )
    print(json.dumps(result, indent=2))


def _corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", help="teacher SentenceTransformer (folder or Hub id); default: all-MiniLM-L6-v2")
    p.add_argument("--corpus", nargs="*", help="text files, one sentence per line (default: shared Wikipedia + STS-B)")
    p.add_argument("--num-sentences", type=int, default=40_000, help="training sentences taken from the corpus")
    p.add_argument("--heldout", type=int, default=2000, help="last lines of the corpus kept for held-out metrics")
    p.add_argument("--devices", nargs="*", help="e.g. cuda:0 cuda:1: encode with ST's multi-process pool")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="st-bertapprox", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build-vocab", help="mine n-grams/skip-grams and embed them with the teacher")
    _corpus_args(p)
    p.add_argument("--output", required=True)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-ngram", type=int, default=3)
    p.add_argument("--max-unigrams", type=int, default=40_000)
    p.add_argument("--max-ngrams", type=int, default=30_000)
    p.add_argument("--max-skipgrams", type=int, default=5_000)
    p.add_argument("--min-count", type=int, default=3)
    p.set_defaults(func=cmd_build_vocab)

    p = sub.add_parser("distill", help="build (or reuse) a vocabulary and distil the student")
    _corpus_args(p)
    p.add_argument("--output", required=True)
    p.add_argument("--vocab", help="an existing build-vocab folder (default: build one into OUTPUT/vocab)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.set_defaults(func=cmd_distill)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"st-bertapprox {args.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from e


if __name__ == "__main__":
    main()
