"""``st-bertapprox`` command line: build-vocab, distill, distill-tiny, finetune, finetune-contrastive, analyze, push,
mteb, index, search, train-qa, ask, export, defaults.

Every option that a config dataclass of ``st_bertapprox.config`` describes is built from it (one option per field:
its flag, type, help and default come from there, ``cli.options``), so a default is written once; the rest are the
command's own inputs (paths, model specs, output formats). Every value is validated before anything is loaded; a bad
one exits with status 2 and a message that names the option. No code from a model folder runs unless
``--trust-remote-code`` is given. The commands themselves are in ``cli.commands``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from st_bertapprox.cli import commands
from st_bertapprox.cli.options import MODEL_SPECS, add_base, add_config_options, add_small, add_teacher, add_trust
from st_bertapprox.config import (
    AskConfig,
    ContrastiveConfig,
    CorpusConfig,
    DistillConfig,
    FinetuneConfig,
    IndexConfig,
    LabelledDataConfig,
    QAConfig,
    SearchConfig,
    StudentConfig,
    TinyConfig,
    VocabConfig,
)

SMALL_DISTILL = "a quick end-to-end run on about 2,000 sentences"


def _distill_commands(sub: argparse._SubParsersAction) -> None:
    """build-vocab, distill, distill-tiny: the student and the tiny transformer."""
    p = sub.add_parser("build-vocab", help="mine n-grams/skip-grams and embed them with the teacher")
    p.add_argument("--output", required=True, help="the vocabulary folder to write")
    add_teacher(p)
    add_small(p, SMALL_DISTILL)
    add_trust(p)
    add_config_options(p, CorpusConfig, "corpus")
    add_config_options(p, VocabConfig, "vocabulary")
    p.set_defaults(func=commands.cmd_build_vocab)

    p = sub.add_parser("distill", help="build (or reuse) a vocabulary and distil the student")
    p.add_argument("--output", required=True, help="the run folder (vocab/, student/, student-folded/, results)")
    p.add_argument("--vocab", help="an existing build-vocab folder (default: build one into OUTPUT/vocab)")
    add_teacher(p)
    add_small(p, SMALL_DISTILL)
    add_trust(p)
    for cls, title in (
        (CorpusConfig, "corpus"),
        (VocabConfig, "vocabulary"),
        (StudentConfig, "student"),
        (DistillConfig, "recipe"),
    ):
        add_config_options(p, cls, title)
    p.set_defaults(func=commands.cmd_distill)

    p = sub.add_parser("distill-tiny", help="distil a tiny BERT on distill's corpus, teacher targets and recipe")
    p.add_argument("--output", required=True, help="the run folder (student/, results.json)")
    add_teacher(p)
    add_small(p, SMALL_DISTILL)
    add_trust(p)
    for cls, title in ((CorpusConfig, "corpus"), (TinyConfig, "tiny transformer"), (DistillConfig, "recipe")):
        add_config_options(p, cls, title)
    p.set_defaults(func=commands.cmd_distill_tiny)


def _finetune_commands(sub: argparse._SubParsersAction) -> None:
    """finetune, finetune-contrastive, analyze: fine-tuning recipes and the embedding-space analysis."""
    p = sub.add_parser("finetune", help="fine-tune the scratch-BERT MiniLM on STS-B (CosineSimilarityLoss)")
    add_base(p)
    p.add_argument("--output", default="runs/stsb")
    p.add_argument("--poolings", nargs="+", default=["mean", "mlp"], choices=["mean", "mlp"])
    add_small(p, "one epoch on 256 pairs, a quick speed row")
    add_config_options(p, FinetuneConfig, "recipe")
    p.set_defaults(func=commands.cmd_finetune)

    p = sub.add_parser("finetune-contrastive", help="contrastive fine-tuning on subject-labelled texts, before/after")
    add_base(p)
    p.add_argument("--output", default="runs/contrastive", help="folder: <loss>/ model, results.{json,md}, pca.png")
    add_small(p, "96 training, 96 test documents")
    add_config_options(p, LabelledDataConfig, "data")
    add_config_options(p, ContrastiveConfig, "recipe")
    p.set_defaults(func=commands.cmd_finetune_contrastive)

    p = sub.add_parser("analyze", help="anisotropy and subject separability of models, with a PCA picture")
    p.add_argument(
        "models", nargs="*", help="SentenceTransformer folders or Hub ids, or NAME=MODEL ('teacher': all-MiniLM-L6-v2)"
    )
    p.add_argument(
        "--bert",
        nargs="?",
        const="",
        help="also the raw BERT views (word-embedding table, token vectors, static mean, [CLS]) and mean pooling of "
        "this BERT checkpoint (no value: the packaged all-MiniLM-L6-v2)",
    )
    p.add_argument("--output", default="runs/analysis", help="folder: results.{json,md} and pca.png")
    add_small(p, "96 test documents")
    add_config_options(p, LabelledDataConfig, "data (the held-out test documents of finetune-contrastive)")
    add_trust(p)
    p.set_defaults(func=commands.cmd_analyze)


def _model_commands(sub: argparse._SubParsersAction) -> None:
    """push, mteb, export, defaults: what is done with a saved model."""
    p = sub.add_parser("push", help="push a saved model (with its module code and model card) to the Hub")
    p.add_argument("model", help="a saved model folder")
    p.add_argument("repo_id", help="e.g. user/bert-approx")
    p.add_argument("--builtin", action="store_true", help="export to built-in ST modules (no custom code)")
    p.add_argument("--private", action="store_true")
    add_trust(p)
    p.set_defaults(func=commands.cmd_push)

    p = sub.add_parser("mteb", help="run MTEB tasks (local data offline, official tasks with --official)")
    p.add_argument(
        "model",
        nargs="+",
        help="model folders or Hub ids, each optionally NAME=MODEL (NAME: its name in the results layout); "
        "'teacher' is the default teacher",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--suite",
        choices=["local"],
        help="every local task (STS, retrieval, reranking, classification, clustering, pair classification), "
        "then a leaderboard-style table",
    )
    which.add_argument(
        "--tasks", nargs="+", help="task names (default: STSBenchmarkDev; with --official: STSBenchmark)"
    )
    p.add_argument("--output", default="runs/mteb", help="results folder, MTEB's layout (default: runs/mteb)")
    p.add_argument("--model-name", help="name in the results layout (default: st-bertapprox/<folder name>)")
    p.add_argument("--revision", default="local")
    p.add_argument("--official", action="store_true", help="use the official task data from the Hub (online)")
    p.add_argument("--threads", type=int, help="CPU threads of torch and of the BLAS/OpenMP pools (default: all)")
    p.add_argument(
        "--card",
        action="store_true",
        help="re-render each model folder's model card (README.md, card.json) with these results in its model-index",
    )
    add_trust(p)
    p.set_defaults(func=commands.cmd_mteb)

    p = sub.add_parser("export", help="export a model for serving (ONNX, int8 ONNX, TorchScript), parity-checked")
    p.add_argument("model", help="a saved model folder or Hub id ('teacher': the packaged all-MiniLM-L6-v2)")
    p.add_argument("--format", required=True, choices=["onnx", "onnx-int8", "torchscript"])
    p.add_argument("--output", required=True, help="the export folder (st_bertapprox.inference.onnx.load_export)")
    add_trust(p)
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("defaults", help="print every option's default and --small preset as a markdown table")
    p.set_defaults(func=commands.cmd_defaults)


def _retrieval_commands(sub: argparse._SubParsersAction) -> None:
    """index, search, train-qa, ask: retrieval and question answering."""
    p = sub.add_parser("index", help="embed a document collection and save a Faiss index (flat, HNSW, IVF-PQ, binary)")
    p.add_argument("collection", help="a BEIR folder, .jsonl, .csv/.tsv, or a text file (one document per line)")
    p.add_argument("--output", required=True, help="the index folder to write (index.faiss, docs.jsonl, index.json)")
    p.add_argument("--model", default="teacher", help=f"the document model: {MODEL_SPECS} (default: teacher)")
    p.add_argument(
        "--query-model",
        help="the model queries will use, if not --model (e.g. documents by the teacher, queries by the student)",
    )
    p.add_argument("--text-field", default="text", help="the text field of a .jsonl/.csv collection (+ a title)")
    p.add_argument("--id-field", help="the id field (default: _id or id, else the line number)")
    p.add_argument("--limit", type=int, help="index only the first LIMIT documents")
    p.add_argument("--devices", nargs="+", help="e.g. cuda:0 cuda:1 or cpu cpu: encode with ST's multi-process pool")
    add_trust(p)
    add_config_options(p, IndexConfig, "index")
    p.set_defaults(func=commands.cmd_index)

    p = sub.add_parser("search", help="search a saved index: ids, scores and texts of the top k documents")
    p.add_argument("index", help="an index folder written by `st-bertapprox index`")
    p.add_argument("queries", nargs="+", help="one or more query texts")
    p.add_argument("--model", help="the query model (default: the one the index records); checked against it")
    add_config_options(p, SearchConfig, "search")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    add_trust(p)
    p.set_defaults(func=commands.cmd_search)

    p = sub.add_parser("train-qa", help="train the extractive QA reader (span + reasoning heads) on XQuAD-en")
    add_base(p)
    p.add_argument("--output", default="runs/qa/reader", help="the reader folder (HF layout) and results.json")
    add_small(p, "one epoch on 16 questions")
    add_config_options(p, QAConfig, "reader")
    p.set_defaults(func=commands.cmd_train_qa)

    p = sub.add_parser("ask", help="answer a question over documents: retrieve passages, read them, best span")
    p.add_argument("documents", nargs="+", help="text, Markdown (.md) or PDF files")
    p.add_argument("question")
    p.add_argument("--reader", required=True, help="a reader trained by train-qa (its --output folder)")
    p.add_argument(
        "--retriever",
        default="teacher",
        help="the sentence model that embeds passages and questions: 'teacher' (default), a SentenceTransformer "
        "folder or Hub id (a student), numpy:FOLDER (a folded student in numpy) or an export folder",
    )
    add_config_options(p, AskConfig, "passages")
    p.add_argument("--passage-score", choices=["margin", "span"], default=QAConfig().passage_score,
                   help="how answers from different passages are ranked (default: %(default)s)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_trust(p)
    p.set_defaults(func=commands.cmd_ask)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command: options built from the configs (``cli.options``), one ``func`` per command."""
    parser = argparse.ArgumentParser(prog="st-bertapprox", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _distill_commands(sub)
    _finetune_commands(sub)
    _retrieval_commands(sub)
    _model_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run ``st-bertapprox ARGV``; a FileNotFoundError or ValueError exits with status 2 and its message."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
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
