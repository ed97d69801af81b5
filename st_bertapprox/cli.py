"""``st-bertapprox`` command line: build-vocab, distill, distill-tiny, finetune, finetune-contrastive, analyze, push,
mteb, train-qa, ask, export, defaults.

The options of ``build-vocab``, ``distill``, ``distill-tiny`` and ``finetune`` are built from the config dataclasses in
``st_bertapprox.config`` (one option per field: its flag, type, help and default come from there), so a default is
written once. Every value is validated before anything is loaded; a bad one exits with status 2 and a message that
names the option. No code from a model folder runs unless ``--trust-remote-code`` is given.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import shlex
import sys
import time
import types
import typing
from dataclasses import fields, replace
from typing import Any, Literal

from .config import (
    DEFAULT_TEACHER,
    ContrastiveConfig,
    CorpusConfig,
    DistillConfig,
    FinetuneConfig,
    IndexConfig,
    LabelledDataConfig,
    QAConfig,
    StudentConfig,
    TinyConfig,
    VocabConfig,
    field_default,
    field_types,
    flag,
    markdown_defaults,
)


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(map(str, value))
    return "none" if value is None else str(value)


def add_config_options(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One option per field of the config dataclass ``cls`` (absent options keep the config's own default)."""
    group = parser.add_argument_group(title, cls.__doc__.splitlines()[0])
    hints = field_types(cls)
    for f in fields(cls):
        if not f.metadata.get("cli", True):
            continue
        hint = hints[f.name]
        args = typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:  # X | None
            hint = next(a for a in args if a is not type(None))
            args = typing.get_args(hint)
        kwargs: dict[str, Any] = dict(dest=f"{cls.__name__}.{f.name}", default=argparse.SUPPRESS)
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) is Literal:
            kwargs["choices"] = list(args)
        elif typing.get_origin(hint) is list:
            kwargs.update(nargs="+", type=args[0])
        else:
            kwargs["type"] = hint
        help_text = f"{f.metadata['help']} (default: {_shown(field_default(f))})".replace("%", "%%")
        group.add_argument(f.metadata.get("flag", flag(f.name)), help=help_text, **kwargs)


def config_from_args(args: argparse.Namespace, cls: type, small: bool = False):
    """The config of ``cls`` given on the command line: its defaults (or its ``--small`` preset), then the options."""
    given = {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith(cls.__name__ + ".")}
    base = cls.small() if small and hasattr(cls, "small") else cls()
    return replace(base, **given)  # replace re-runs __post_init__: invalid values raise ValueError


def _load(name: str, trust_remote_code: bool):
    from .loading import load_model

    return load_model(name, trust_remote_code=trust_remote_code)


def _teacher(args) -> tuple[Any, str]:
    """(the teacher model, the name cards give it)."""
    from .data import teacher_path

    return _load(args.teacher or teacher_path(), args.trust_remote_code), args.teacher or DEFAULT_TEACHER


def cmd_build_vocab(args) -> None:
    from .data import load_corpus
    from .vocab_builder import build_vocab

    corpus_config = config_from_args(args, CorpusConfig, args.small)
    vocab_config = config_from_args(args, VocabConfig, args.small)
    teacher, _ = _teacher(args)
    corpus = load_corpus(corpus_config)
    encoder = build_vocab(
        corpus.mine,
        teacher,
        args.output,
        batch_size=vocab_config.embed_batch_size,
        devices=args.devices,
        merge_with=vocab_config.merge_encoder(),
        **vocab_config.mine_kwargs(),
    )
    print(f"vocabulary of {len(encoder.vocab)} entries saved to {args.output}")


def cmd_distill(args) -> None:
    from .distill import DistillJob, distill_pipeline

    job = DistillJob(
        output_dir=args.output,
        corpus=config_from_args(args, CorpusConfig, args.small),
        vocab=config_from_args(args, VocabConfig, args.small),
        student=config_from_args(args, StudentConfig, args.small),
        recipe=config_from_args(args, DistillConfig, args.small),
        vocab_dir=args.vocab,
        command=args.command_line,
        devices=args.devices,
    )
    teacher, job.teacher_id = _teacher(args)
    result = distill_pipeline(teacher, job)
    print(json.dumps(result, indent=2))


def cmd_distill_tiny(args) -> None:
    from .tiny import TinyJob, tiny_pipeline

    job = TinyJob(
        output_dir=args.output,
        corpus=config_from_args(args, CorpusConfig, args.small),
        tiny=config_from_args(args, TinyConfig, args.small),
        recipe=config_from_args(args, DistillConfig, args.small),
        command=args.command_line,
        devices=args.devices,
    )
    teacher, job.teacher_id = _teacher(args)
    result = tiny_pipeline(teacher, job)
    print(json.dumps(result, indent=2))


def cmd_finetune(args) -> None:
    from .data import teacher_path
    from .finetune import finetune_job

    config = config_from_args(args, FinetuneConfig, args.small)
    results = finetune_job(
        args.base or teacher_path(), args.output, tuple(args.poolings), config, args.command_line, small=args.small
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


def _print_analysis(results: dict) -> None:
    print("\n" + results["table"])
    print("\nMost confused subjects (share of a subject's texts whose nearest neighbour is of the other):")
    for line in results["most_confused"]:
        print(f"  {line}")
    print(f"\npicture: {results['png']}")


def cmd_analyze(args) -> None:
    from .analysis import View
    from .contrastive import base_views, encode, load_splits, write_results

    t0 = time.perf_counter()
    data = config_from_args(args, LabelledDataConfig, args.small)
    test = load_splits(replace(data, train_texts=0, dev_texts=0)).test  # the test documents are drawn first
    if args.bert is None and not args.models:
        raise ValueError("give at least one MODEL, or --bert for the raw BERT views of a checkpoint")
    views = base_views(args.bert or _teacher_path(), test) if args.bert is not None else []
    for model in args.models:
        name, _, path = model.rpartition("=") if "=" in model else (model, "", model)
        path = _teacher_path() if path == "teacher" else path
        views.append(View(name, encode(_load(path, args.trust_remote_code), test[0]), test[1]))
    for view in views:
        view.analyze()
    _print_analysis(write_results(args.output, views, {}, data, time.perf_counter() - t0))


def cmd_finetune_contrastive(args) -> None:
    from .contrastive import contrastive_job

    data = config_from_args(args, LabelledDataConfig, args.small)
    recipe = config_from_args(args, ContrastiveConfig, args.small)
    results = contrastive_job(args.base or _teacher_path(), data, recipe, args.output)
    for loss, run in results["runs"].items():
        print(f"\n{loss}: {run['train_texts']} training texts, {run['train_seconds']:.0f} s; saved to {run['path']}")
        print(f"  dev before: {run['dev_before']}\n  dev after:  {run['dev_after']}")
    _print_analysis(results)
    print(f"results: {os.path.join(args.output, 'results.json')}")


def _teacher_path() -> str:
    from .data import teacher_path

    return teacher_path()


def cmd_push(args) -> None:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    from .hub import load_card_info, push_to_hub

    model = _load(args.model, args.trust_remote_code)
    try:
        url = push_to_hub(model, args.repo_id, load_card_info(args.model), builtin=args.builtin, private=args.private)
    except OfflineModeIsEnabled as e:
        raise ValueError(f"cannot push while offline (HF_HUB_OFFLINE is set): unset it to push. ({e})") from e
    except HfHubHTTPError as e:
        raise ValueError(f"the Hub refused the push to {args.repo_id}: {e}. Check the repo id and your token.") from e
    except OSError as e:  # connection refused / DNS: requests' errors are OSErrors
        raise ValueError(f"could not reach the Hub to push {args.repo_id}: {e}") from e
    print(f"pushed {args.model} to {args.repo_id}: {url}")


def cmd_mteb(args) -> None:
    from .evaluation.mteb import LOCAL_SUITE, leaderboard, results_path, run_mteb, task_types

    local = not args.official
    tasks = list(LOCAL_SUITE) if args.suite else args.tasks or ["STSBenchmarkDev" if local else "STSBenchmark"]
    types = task_types(tasks, local=local)  # an unknown task name fails here, before any model loads
    models = _mteb_models(args.model, args.model_name)
    no_card = [path for path in models.values() if args.card and not os.path.isfile(os.path.join(path, "card.json"))]
    if no_card:
        raise ValueError(f"--card updates folders saved with a card by st-bertapprox (card.json); not: {no_card}")
    if args.threads:  # torch's and the BLAS/OpenMP pools (scikit-learn's k-means crawls when they oversubscribe)
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    scores, start = {}, time.perf_counter()
    for name, path in models.items():
        began = time.perf_counter()
        model = _load(path, args.trust_remote_code)
        scores[name] = run_mteb(model, tasks, args.output, model_name=name, revision=args.revision, local=local)
        for task, score in scores[name].items():
            print(f"{task}: {score:.4f}")
        folder = results_path(args.output, name, args.revision)
        print(f"results: {folder} ({name}, {time.perf_counter() - began:.0f} s)", flush=True)
        if args.card:
            from .hub import mteb_card_rows, update_card

            update_card(model, path, mteb_card_rows(folder), command=args.command_line)
            print(f"model card updated: {os.path.join(path, 'README.md')}")
    if len(models) > 1 or args.suite:
        print(f"\n{leaderboard(scores, types)}\n\nwall time: {time.perf_counter() - start:.0f} s")


def _mteb_models(specs: list[str], model_name: str | None) -> dict[str, str]:
    """``{name in the results layout: folder or Hub id}`` from ``MODEL``/``NAME=MODEL`` arguments (``teacher``: the
    default teacher, named after its Hub id)."""
    from .data import teacher_path

    if model_name and len(specs) > 1:
        raise ValueError("--model-name names one model; name several with NAME=MODEL")
    models: dict[str, str] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        if path == "teacher":
            name, path = name or DEFAULT_TEACHER, teacher_path()
        name = model_name or name or f"st-bertapprox/{os.path.basename(os.path.normpath(path))}"
        if name in models:
            raise ValueError(f"two models would share the results folder of {name!r}: name them with NAME=MODEL")
        models[name] = path
    return models


def cmd_index(args) -> None:
    from .retrieval import SearchIndex, load_encoder, model_reference, read_collection

    config = config_from_args(args, IndexConfig)
    docs = read_collection(args.collection, text_field=args.text_field, id_field=args.id_field)  # fails before loading
    if args.limit:
        docs = itertools.islice(docs, args.limit)
    model = load_encoder(args.model, args.trust_remote_code)
    query_model = load_encoder(args.query_model, args.trust_remote_code) if args.query_model else None
    pool = model.start_multi_process_pool(args.devices) if args.devices else None
    for_ids, for_texts = itertools.tee(docs)  # build reads a chunk of texts, then its ids: bounded buffering
    try:
        index = SearchIndex.build(
            model,
            (text for _, text in for_texts),
            (doc_id for doc_id, _ in for_ids),
            config=config,
            query_model=query_model,
            model_reference=model_reference(args.model),
            query_model_reference=model_reference(args.query_model) if args.query_model else None,
            store_texts=args.store_texts,
            show_progress_bar=True,
            encode_kwargs={"pool": pool} if pool else None,
        )
    finally:
        if pool:
            model.stop_multi_process_pool(pool)
    index.save(args.output)
    n, seconds = index.meta["count"], index.meta["build_seconds"]
    print(
        f"indexed {n:,} documents ({config.kind}, dim {index.meta['dim']}) in {seconds:.1f} s ({n / seconds:,.0f} "
        f"docs/s; encoding {index.meta['encode_seconds']:.1f} s): {args.output}"
    )


def cmd_search(args) -> None:
    from .retrieval import SearchIndex, load_encoder

    index = SearchIndex.load(args.index)
    index.set_query_model(load_encoder(args.model or index.meta["query_model"]["reference"], args.trust_remote_code))
    results = index.search(args.queries, k=args.k)
    if args.json:
        print(json.dumps([[vars(hit) for hit in hits] for hits in results], ensure_ascii=False, indent=1))
        return
    for query, hits in zip(args.queries, results):
        print(f"\n{query}")
        for rank, hit in enumerate(hits, 1):
            text = (hit.text or "").replace("\n", " ")
            print(f"{rank:3d}  {hit.score:.4f}  {hit.id}  {text[:100] + ('...' if len(text) > 100 else '')}")


def cmd_train_qa(args) -> None:
    from .qa.train import qa_job

    config = config_from_args(args, QAConfig, args.small)
    results = qa_job(config, args.output, args.base or _teacher_path(), args.command_line)
    r = results["reader"]
    print(
        f"\nreader on the {results['evaluated_on']} articles ({r['questions']} questions, gold paragraph): "
        f"exact match {r['exact_match']:.1f}, F1 {r['f1']:.1f}; reasoning type {r['reasoning_accuracy']:.1f} % right "
        f"on the weak labels (always {r['reasoning_majority_label']!r}: {r['reasoning_majority_accuracy']:.1f} %)"
    )
    print(f"reader saved to {args.output}; results: {os.path.join(args.output, 'results.json')}")


def cmd_ask(args) -> None:
    from .qa.documents import document_passages
    from .qa.pipeline import DocumentQA
    from .qa.reader import Reader
    from .retrieval import load_encoder

    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    passages = document_passages(args.documents, args.passage_sentences, args.overlap)  # fails before loading
    retriever = load_encoder(args.retriever, args.trust_remote_code)
    qa = DocumentQA(Reader(args.reader), retriever, args.passage_score).add_passages(passages)
    answer = qa.ask(args.question, k=args.k)
    if args.json:
        print(json.dumps(vars(answer), ensure_ascii=False, indent=1))
        return
    marked = f"{answer.passage[: answer.start_char]}[[{answer.text}]]{answer.passage[answer.end_char :]}"
    print(f"answer: {answer.text}")
    print(f"score: {answer.score:.3f} ({args.passage_score}); reasoning type: {answer.reasoning} "
          f"({answer.reasoning_probs[answer.reasoning]:.2f})")  # fmt: skip
    print(f"passage: {answer.passage_id} (cosine {answer.retrieval_score:.3f}; read {len(answer.retrieved)} of "
          f"{len(passages)})\n  {marked}")  # fmt: skip


def cmd_export(args) -> None:
    from .deploy import export

    model = _teacher_path() if args.model == "teacher" else args.model
    try:
        info = export(model, args.output, args.format, trust_remote_code=args.trust_remote_code)
    except ImportError as e:  # onnx/onnxruntime missing: a message, not a traceback
        raise ValueError(str(e)) from e
    print(f"exported {args.model} ({' + '.join(info['modules'])}, dim {info['dim']}) as {args.format}: {args.output}")
    figures = [("parity_fp32", "fp32 graph"), ("parity", "int8 graph")] if "parity_fp32" in info else [("parity", "")]
    for key, label in figures:
        parity = info[key]
        print(f"parity with the source model (cosine, {parity['texts']} texts){' ' + label if label else ''}: min "
              f"{parity['min']:.4f}, mean {parity['mean']:.4f}")  # fmt: skip


def cmd_defaults(args) -> None:
    print(markdown_defaults())


def _trust_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow loading models whose modules.json names Python code of their own (st-bertapprox's and "
        "sentence-transformers' modules never need it)",
    )


def _teacher_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", help=f"teacher SentenceTransformer (folder or Hub id; default: {DEFAULT_TEACHER})")
    p.add_argument("--devices", nargs="+", help="e.g. cuda:0 cuda:1: teacher encoding with ST's multi-process pool")
    p.add_argument("--small", action="store_true", help="the small preset: a quick end-to-end run (see `defaults`)")
    _trust_arg(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="st-bertapprox", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build-vocab", help="mine n-grams/skip-grams and embed them with the teacher")
    p.add_argument("--output", required=True, help="the vocabulary folder to write")
    _teacher_args(p)
    add_config_options(p, CorpusConfig, "corpus")
    add_config_options(p, VocabConfig, "vocabulary")
    p.set_defaults(func=cmd_build_vocab)

    p = sub.add_parser("distill", help="build (or reuse) a vocabulary and distil the student")
    p.add_argument("--output", required=True, help="the run folder (vocab/, student/, student-folded/, results)")
    p.add_argument("--vocab", help="an existing build-vocab folder (default: build one into OUTPUT/vocab)")
    _teacher_args(p)
    for cls, title in (
        (CorpusConfig, "corpus"),
        (VocabConfig, "vocabulary"),
        (StudentConfig, "student"),
        (DistillConfig, "recipe"),
    ):
        add_config_options(p, cls, title)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("distill-tiny", help="distil a tiny BERT on distill's corpus, teacher targets and recipe")
    p.add_argument("--output", required=True, help="the run folder (student/, results.json)")
    _teacher_args(p)
    for cls, title in ((CorpusConfig, "corpus"), (TinyConfig, "tiny transformer"), (DistillConfig, "recipe")):
        add_config_options(p, cls, title)
    p.set_defaults(func=cmd_distill_tiny)

    p = sub.add_parser("finetune", help="fine-tune the scratch-BERT MiniLM on STS-B (CosineSimilarityLoss)")
    p.add_argument("--base", help="BERT checkpoint to start from (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--output", default="runs/stsb")
    p.add_argument("--poolings", nargs="+", default=["mean", "mlp"], choices=["mean", "mlp"])
    p.add_argument("--small", action="store_true", help="the small preset: one epoch on 256 pairs, a quick speed row")
    add_config_options(p, FinetuneConfig, "recipe")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("finetune-contrastive", help="contrastive fine-tuning on subject-labelled texts, before/after")
    p.add_argument("--base", help="BERT checkpoint to start from (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--output", default="runs/contrastive", help="folder: <loss>/ model, results.{json,md}, pca.png")
    p.add_argument("--small", action="store_true", help="the small preset: 96 training, 96 test documents")
    add_config_options(p, LabelledDataConfig, "data")
    add_config_options(p, ContrastiveConfig, "recipe")
    p.set_defaults(func=cmd_finetune_contrastive)

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
    p.add_argument("--small", action="store_true", help="the small preset: 96 test documents")
    add_config_options(p, LabelledDataConfig, "data (the held-out test documents of finetune-contrastive)")
    _trust_arg(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("push", help="push a saved model (with its module code and model card) to the Hub")
    p.add_argument("model", help="a saved model folder")
    p.add_argument("repo_id", help="e.g. user/bert-approx")
    p.add_argument("--builtin", action="store_true", help="export to built-in ST modules (no custom code)")
    p.add_argument("--private", action="store_true")
    _trust_arg(p)
    p.set_defaults(func=cmd_push)

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
    _trust_arg(p)
    p.set_defaults(func=cmd_mteb)

    p = sub.add_parser("index", help="embed a document collection and save a Faiss index (flat, HNSW, IVF-PQ, binary)")
    p.add_argument("collection", help="a BEIR folder, .jsonl, .csv/.tsv, or a text file (one document per line)")
    p.add_argument("--output", required=True, help="the index folder to write (index.faiss, docs.jsonl, index.json)")
    models = "'teacher', a model folder or Hub id, numpy:FOLDER (a folded student in numpy), or an export folder"
    p.add_argument("--model", default="teacher", help=f"the document model: {models} (default: teacher)")
    p.add_argument(
        "--query-model",
        help="the model queries will use, if not --model (e.g. documents by the teacher, queries by the student)",
    )
    p.add_argument("--text-field", default="text", help="the text field of a .jsonl/.csv collection (+ a title)")
    p.add_argument("--id-field", help="the id field (default: _id or id, else the line number)")
    p.add_argument("--limit", type=int, help="index only the first LIMIT documents")
    p.add_argument("--no-texts", dest="store_texts", action="store_false", help="store ids only, not the texts")
    p.add_argument("--devices", nargs="+", help="e.g. cuda:0 cuda:1 or cpu cpu: encode with ST's multi-process pool")
    _trust_arg(p)
    add_config_options(p, IndexConfig, "index")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="search a saved index: ids, scores and texts of the top k documents")
    p.add_argument("index", help="an index folder written by `st-bertapprox index`")
    p.add_argument("queries", nargs="+", help="one or more query texts")
    p.add_argument("--model", help="the query model (default: the one the index records); checked against it")
    p.add_argument("-k", type=int, default=10, help="hits per query (default: 10)")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    _trust_arg(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("train-qa", help="train the extractive QA reader (span + reasoning heads) on XQuAD-en")
    p.add_argument("--base", help="BERT checkpoint to start from (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--output", default="runs/qa/reader", help="the reader folder (HF layout) and results.json")
    p.add_argument("--small", action="store_true", help="the small preset: one epoch on 16 questions (see `defaults`)")
    add_config_options(p, QAConfig, "reader")
    p.set_defaults(func=cmd_train_qa)

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
    p.add_argument("--k", type=int, default=3, help="passages retrieved and read (default: 3)")
    p.add_argument("--passage-sentences", type=int, default=4, help="sentences per passage (default: 4)")
    p.add_argument("--overlap", type=int, default=1, help="sentences two neighbouring passages share (default: 1)")
    p.add_argument("--passage-score", choices=["margin", "span"], default=QAConfig().passage_score,
                   help="how answers from different passages are ranked (default: %(default)s)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    _trust_arg(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("export", help="export a model for serving (ONNX, int8 ONNX, TorchScript), parity-checked")
    p.add_argument("model", help="a saved model folder or Hub id ('teacher': the packaged all-MiniLM-L6-v2)")
    p.add_argument("--format", required=True, choices=["onnx", "onnx-int8", "torchscript"])
    p.add_argument("--output", required=True, help="the export folder (load it with st_bertapprox.deploy.load_export)")
    _trust_arg(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("defaults", help="print every option's default and --small preset as a markdown table")
    p.set_defaults(func=cmd_defaults)
    return parser


def main(argv: list[str] | None = None) -> None:
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


if __name__ == "__main__":
    main()
