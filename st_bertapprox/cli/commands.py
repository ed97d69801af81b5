"""The commands of ``st-bertapprox``: each reads its configs from the parsed options (``cli.options``), calls one
library entry point and prints what it did. Heavy imports happen inside the command that needs them, so
``st-bertapprox --help`` and a bad option answer at once."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from dataclasses import replace
from typing import Any

from st_bertapprox.cli.options import config_from_args
from st_bertapprox.config import (
    DEFAULT_TEACHER,
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
    markdown_defaults,
)


def _load(name: str, trust_remote_code: bool) -> Any:
    from st_bertapprox.persistence.loading import load_model

    return load_model(name, trust_remote_code=trust_remote_code)


def _teacher(args: argparse.Namespace) -> tuple[Any, str]:
    """(the teacher model, the name cards give it)."""
    from st_bertapprox.data.shared import teacher_path

    return _load(args.teacher or teacher_path(), args.trust_remote_code), args.teacher or DEFAULT_TEACHER


def cmd_build_vocab(args: argparse.Namespace) -> None:
    """``build-vocab``: mine the vocabulary of a corpus and embed every entry with the teacher."""
    from st_bertapprox.data.corpus import load_corpus
    from st_bertapprox.distill.mining import build_vocab, check_merge_with

    corpus_config = config_from_args(args, CorpusConfig)
    vocab_config = config_from_args(args, VocabConfig)
    check_merge_with(vocab_config)
    teacher, _ = _teacher(args)
    corpus = load_corpus(corpus_config)
    encoder = build_vocab(corpus.mine, teacher, args.output, vocab_config, devices=args.devices)
    print(f"vocabulary of {len(encoder.vocab)} entries saved to {args.output}")


def cmd_distill(args: argparse.Namespace) -> None:
    """``distill`` (the main job): vocabulary, teacher targets, training, folding, card, results."""
    from st_bertapprox.distill.student import DistillJob, run_distill

    job = DistillJob(
        output_dir=args.output,
        corpus=config_from_args(args, CorpusConfig),
        vocab=config_from_args(args, VocabConfig),
        student=config_from_args(args, StudentConfig),
        recipe=config_from_args(args, DistillConfig),
        vocab_dir=args.vocab,
        command=args.command_line,
        devices=args.devices,
    )
    teacher, job.teacher_id = _teacher(args)
    result = run_distill(teacher, job)
    print(json.dumps(result, indent=2))


def cmd_distill_tiny(args: argparse.Namespace) -> None:
    """``distill-tiny``: the tiny transformer baseline on distill's corpus and recipe."""
    from st_bertapprox.distill.tiny import TinyJob, run_tiny

    job = TinyJob(
        output_dir=args.output,
        corpus=config_from_args(args, CorpusConfig),
        tiny=config_from_args(args, TinyConfig),
        recipe=config_from_args(args, DistillConfig),
        command=args.command_line,
        devices=args.devices,
    )
    teacher, job.teacher_id = _teacher(args)
    result = run_tiny(teacher, job)
    print(json.dumps(result, indent=2))


def cmd_finetune(args: argparse.Namespace) -> None:
    """``finetune``: STS-B fine-tuning of the scratch BERT, mean and MLP pooling; prints the demo and table."""
    from st_bertapprox.data.shared import teacher_path
    from st_bertapprox.finetune.stsb import run_finetune

    config = config_from_args(args, FinetuneConfig)
    results = run_finetune(
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


def cmd_analyze(args: argparse.Namespace) -> None:
    """``analyze``: anisotropy and subject separability of models (and raw BERT views) on held-out documents."""
    from st_bertapprox.data.corpus import load_splits
    from st_bertapprox.evaluation.analysis import View, base_views, encode, write_analysis

    t0 = time.perf_counter()
    data = config_from_args(args, LabelledDataConfig)
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
    _print_analysis(write_analysis(args.output, views, {}, data, time.perf_counter() - t0))


def cmd_finetune_contrastive(args: argparse.Namespace) -> None:
    """``finetune-contrastive``: contrastive fine-tuning on labelled texts, analysed before/after."""
    from st_bertapprox.finetune.contrastive import run_contrastive

    data = config_from_args(args, LabelledDataConfig)
    recipe = config_from_args(args, ContrastiveConfig)
    results = run_contrastive(args.base or _teacher_path(), data, recipe, args.output)
    for loss, run in results["runs"].items():
        print(f"\n{loss}: {run['train_texts']} training texts, {run['train_seconds']:.0f} s; saved to {run['path']}")
        print(f"  dev before: {run['dev_before']}\n  dev after:  {run['dev_after']}")
    _print_analysis(results)
    print(f"results: {os.path.join(args.output, 'results.json')}")


def _teacher_path() -> str:
    from st_bertapprox.data.shared import teacher_path

    return teacher_path()


def cmd_push(args: argparse.Namespace) -> None:
    """``push``: upload a saved model with its code and card; Hub errors become clear messages."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    from st_bertapprox.persistence.cards import load_card_info
    from st_bertapprox.persistence.saving import push_to_hub

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


def cmd_mteb(args: argparse.Namespace) -> None:
    """``mteb``: run local (or official) MTEB tasks on models; a leaderboard table, optionally their cards."""
    from st_bertapprox.evaluation.mteb.run import leaderboard, results_path, run_mteb, task_types
    from st_bertapprox.evaluation.mteb.tasks import LOCAL_SUITE

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
            from st_bertapprox.evaluation.mteb.cards import mteb_card_rows
            from st_bertapprox.persistence.cards import update_card

            update_card(model, path, mteb_card_rows(folder), command=args.command_line)
            print(f"model card updated: {os.path.join(path, 'README.md')}")
    if len(models) > 1 or args.suite:
        print(f"\n{leaderboard(scores, types)}\n\nwall time: {time.perf_counter() - start:.0f} s")


def _mteb_models(specs: list[str], model_name: str | None) -> dict[str, str]:
    """``{name in the results layout: folder or Hub id}`` from ``MODEL``/``NAME=MODEL`` arguments (``teacher``: the
    default teacher, named after its Hub id)."""
    from st_bertapprox.data.shared import teacher_path

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


def cmd_index(args: argparse.Namespace) -> None:
    """``index``: embed a collection and save a Faiss index (the collection is checked before models load)."""
    from st_bertapprox.data.records import read_collection
    from st_bertapprox.inference.encoders import load_encoder, model_reference
    from st_bertapprox.inference.index import SearchIndex

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


def cmd_search(args: argparse.Namespace) -> None:
    """``search``: the top k hits of each query in a saved index, with the query model it records."""
    from st_bertapprox.inference.encoders import load_encoder
    from st_bertapprox.inference.index import SearchIndex

    index = SearchIndex.load(args.index)
    index.set_query_model(load_encoder(args.model or index.meta["query_model"]["reference"], args.trust_remote_code))
    results = index.search(args.queries, k=config_from_args(args, SearchConfig).k)
    if args.json:
        print(json.dumps([[vars(hit) for hit in hits] for hits in results], ensure_ascii=False, indent=1))
        return
    for query, hits in zip(args.queries, results):
        print(f"\n{query}")
        for rank, hit in enumerate(hits, 1):
            text = (hit.text or "").replace("\n", " ")
            print(f"{rank:3d}  {hit.score:.4f}  {hit.id}  {text[:100] + ('...' if len(text) > 100 else '')}")


def cmd_train_qa(args: argparse.Namespace) -> None:
    """``train-qa``: train the extractive QA reader on XQuAD-en and score it."""
    from st_bertapprox.qa.train import run_qa

    config = config_from_args(args, QAConfig)
    results = run_qa(config, args.output, args.base or _teacher_path(), args.command_line)
    r = results["reader"]
    print(
        f"\nreader on the {results['evaluated_on']} articles ({r['questions']} questions, gold paragraph): "
        f"exact match {r['exact_match']:.1f}, F1 {r['f1']:.1f}; reasoning type {r['reasoning_accuracy']:.1f} % right "
        f"on the weak labels (always {r['reasoning_majority_label']!r}: {r['reasoning_majority_accuracy']:.1f} %)"
    )
    print(f"reader saved to {args.output}; results: {os.path.join(args.output, 'results.json')}")


def cmd_ask(args: argparse.Namespace) -> None:
    """``ask``: answer a question over documents (retrieve passages, read them with the reader's own windows)."""
    from st_bertapprox.inference.encoders import load_encoder
    from st_bertapprox.qa.documents import document_passages
    from st_bertapprox.qa.pipeline import DocumentQA
    from st_bertapprox.qa.reader import Reader

    ask = config_from_args(args, AskConfig)
    passages = document_passages(args.documents, ask.passage_sentences, ask.overlap)  # fails before loading
    retriever = load_encoder(args.retriever, args.trust_remote_code)
    qa = DocumentQA(Reader(args.reader), retriever, args.passage_score).add_passages(passages)
    answer = qa.ask(args.question, k=ask.k)
    if args.json:
        print(json.dumps(vars(answer), ensure_ascii=False, indent=1))
        return
    marked = f"{answer.passage[: answer.start_char]}[[{answer.text}]]{answer.passage[answer.end_char :]}"
    print(f"answer: {answer.text}")
    print(f"score: {answer.score:.3f} ({args.passage_score}); reasoning type: {answer.reasoning} "
          f"({answer.reasoning_probs[answer.reasoning]:.2f})")  # fmt: skip
    print(f"passage: {answer.passage_id} (cosine {answer.retrieval_score:.3f}; read {len(answer.retrieved)} of "
          f"{len(passages)})\n  {marked}")  # fmt: skip


def cmd_export(args: argparse.Namespace) -> None:
    """``export``: ONNX / int8 ONNX / TorchScript export, parity-checked before anything is written."""
    from st_bertapprox.inference.onnx import export

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


def cmd_defaults(args: argparse.Namespace) -> None:
    """``defaults``: every option's default and ``--small`` preset as a markdown table."""
    print(markdown_defaults())
