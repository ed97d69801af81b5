"""``st-bertapprox`` command line: build-vocab, distill, finetune, push, mteb."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys


def _teacher(name: str | None):
    from sentence_transformers import SentenceTransformer

    from .data import teacher_path

    return SentenceTransformer(name or teacher_path(), trust_remote_code=True)


def _corpus_spec(args) -> dict:
    return {
        "files": args.corpus or None,
        "num_sentences": args.num_sentences,
        "heldout": args.heldout,
        "hf_dataset": args.hf_dataset,
        "text_column": args.text_column,
    }


def cmd_build_vocab(args) -> None:
    from .distill import load_corpus
    from .vocab_builder import build_vocab

    mine_texts, _, _ = load_corpus(**_corpus_spec(args))
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
    from .distill import DistillConfig, distill_pipeline, load_corpus

    defaults = DistillConfig()
    config = DistillConfig(
        epochs=args.epochs or defaults.epochs,
        batch_size=args.batch_size or defaults.batch_size,
        learning_rate=args.learning_rate or defaults.learning_rate,
        adapter_rank=defaults.adapter_rank if args.adapter_rank is None else args.adapter_rank,
    )
    mine_texts, train_texts, heldout = load_corpus(**_corpus_spec(args))
    result = distill_pipeline(
        _teacher(args.teacher),
        mine_texts,
        train_texts,
        heldout,
        args.output,
        config=config,
        vocab_dir=args.vocab,
        devices=args.devices,
        corpus_spec=_corpus_spec(args),
        command=args.command_line,
        teacher_id=args.teacher or "sentence-transformers/all-MiniLM-L6-v2",
    )
    print(json.dumps(result, indent=2))


def cmd_push(args) -> None:
    from sentence_transformers import SentenceTransformer

    from .hub import load_card_info, push_to_hub

    model = SentenceTransformer(args.model, trust_remote_code=True)
    url = push_to_hub(model, args.repo_id, load_card_info(args.model), builtin=args.builtin, private=args.private)
    print(f"pushed {args.model} to {args.repo_id}: {url}")


def cmd_mteb(args) -> None:
    from sentence_transformers import SentenceTransformer

    from .evaluation.mteb import results_path, run_mteb

    model = SentenceTransformer(args.model, trust_remote_code=True)
    name = args.model_name or f"st-bertapprox/{os.path.basename(os.path.normpath(args.model))}"
    scores = run_mteb(model, args.tasks, args.output, model_name=name, revision=args.revision, local=not args.official)
    for task, score in scores.items():
        print(f"{task}: {score:.4f}")
    print(f"results: {results_path(args.output, name, args.revision)}")


def cmd_finetune(args) -> None:
    from .data import teacher_path
    from .finetune import FinetuneConfig, finetune_job

    config = FinetuneConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        max_train_pairs=args.max_train_pairs,
    )
    results = finetune_job(
        args.base or teacher_path(), args.output, tuple(args.poolings), config, command=args.command_line
    )
    demo = results["demo"]
    print("\nCosine similarity of sentence pairs, before -> after fine-tuning (mean / MLP-then-mean):")
    for i, (a, b) in enumerate(demo["pairs"]):
        after = " / ".join(f"{demo[f'after_{p}'][i]:.3f}" for p in args.poolings)
        print(f"  {demo['before'][i]:.3f} -> {after}   {a!r} vs {b!r}")
    print("\nContextual token vectors (cosine), base model:")
    for key, value in demo["probe_before"].items():
        print(f"  {value:.3f}  {key}")
    print("\n" + results["table"])
    print(f"\nresults: {os.path.join(args.output, 'results.json')}")


def _corpus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", help="teacher SentenceTransformer (folder or Hub id); default: all-MiniLM-L6-v2")
    p.add_argument("--corpus", nargs="*", help="text files, one sentence per line (default: shared Wikipedia + STS-B)")
    p.add_argument("--hf-dataset", help="a Hugging Face dataset to use as corpus instead (its train split)")
    p.add_argument("--text-column", default="text", help="the text column of --hf-dataset")
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
    p.add_argument("--epochs", type=int, help="default: DistillConfig.epochs")
    p.add_argument("--batch-size", type=int, help="default: DistillConfig.batch_size")
    p.add_argument("--learning-rate", type=float, help="default: DistillConfig.learning_rate")
    p.add_argument("--adapter-rank", type=int, help="rank of the trainable entry adapter (0: none)")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("finetune", help="fine-tune the scratch-BERT MiniLM on STS-B (CosineSimilarityLoss)")
    p.add_argument("--base", help="BERT checkpoint to start from (default: the embedded all-MiniLM-L6-v2)")
    p.add_argument("--output", default="runs/stsb")
    p.add_argument("--poolings", nargs="+", default=["mean", "mlp"], choices=["mean", "mlp"])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-train-pairs", type=int, help="train on a random subset (quick runs)")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("push", help="push a saved model (with its module code and model card) to the Hub")
    p.add_argument("model", help="a saved model folder")
    p.add_argument("repo_id", help="e.g. user/bert-approx")
    p.add_argument("--builtin", action="store_true", help="export to built-in ST modules (no custom code)")
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("mteb", help="run MTEB tasks (local data offline, official tasks with --official)")
    p.add_argument("model", help="a model folder or Hub id")
    p.add_argument("--tasks", nargs="+", default=["STSBenchmark"])
    p.add_argument("--output", default="runs/mteb")
    p.add_argument("--model-name", help="name in the results layout (default: st-bertapprox/<folder name>)")
    p.add_argument("--revision", default="local")
    p.add_argument("--official", action="store_true", help="use the official task data from the Hub (online)")
    p.set_defaults(func=cmd_mteb)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command_line = "st-bertapprox " + shlex.join(argv)  # recorded in model cards as the exact command
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"st-bertapprox {args.command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from e


if __name__ == "__main__":
    main()
