"""Training the reader on SQuAD-format data, split by article; ``transformers.Trainer`` does the loop.

* :func:`qa_examples`: the questions of SQuAD v1.1 articles as flat records (id, paragraph id, context, answers);
* :func:`split_articles`: a seeded split by whole articles (eval / dev / train), so no paragraph, and no article's
  topic, is on both sides;
* :func:`with_negatives`: for every training question, other paragraphs of the same article as "no answer here"
  examples (answer position [CLS]), so the reader learns to score a passage without the answer low;
* :func:`train_reader`: features (``st_bertapprox.qa.features``), then ``Trainer`` with dynamic padding; returns
  the trained model, saved in the HF layout by :meth:`BertForQuestionAnsweringWithReasoning.save_pretrained` with
  its windows (:func:`reader_windows`), so ``Reader(folder)`` reads as it was trained.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import time
from typing import Any

from ..config import QAConfig
from .features import prepare_features
from .model import READER_WINDOWS, BertForQuestionAnsweringWithReasoning

logger = logging.getLogger(__name__)


def qa_examples(articles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per question: ``id``, ``title``, ``paragraph_id`` (``"<title>/<n>"``), ``context``, ``question``,
    ``answers`` (all gold texts) and ``answer`` (the first: ``{"text", "answer_start"}``, what training uses)."""
    out = []
    for article in articles:
        for n, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                out.append(
                    {
                        "id": qa["id"],
                        "title": article["title"],
                        "paragraph_id": f"{article['title']}/{n}",
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": [a["text"] for a in qa["answers"]],
                        "answer": dict(qa["answers"][0]) if qa["answers"] else None,
                    }
                )
    return out


def paragraphs(articles: list[dict[str, Any]]) -> dict[str, str]:
    """``{paragraph_id: context}`` of the articles (the passage pool of the end-to-end evaluation)."""
    return {f"{a['title']}/{n}": p["context"] for a in articles for n, p in enumerate(a["paragraphs"])}


def split_articles(
    articles: list[dict[str, Any]], eval_articles: int, dev_articles: int = 0, seed: int = 42
) -> tuple[list[dict], list[dict], list[dict]]:
    """(train, dev, eval) articles: a seeded shuffle, then the first ``eval_articles`` for evaluation, the next
    ``dev_articles`` for tuning, the rest for training (each list in the file's order)."""
    if eval_articles + dev_articles >= len(articles):
        raise ValueError(
            f"{len(articles)} articles cannot give {eval_articles} eval + {dev_articles} dev articles and a train set"
        )
    order = list(range(len(articles)))
    random.Random(seed).shuffle(order)
    evaluation = set(order[:eval_articles])
    dev = set(order[eval_articles : eval_articles + dev_articles])
    pick = lambda keep: [a for i, a in enumerate(articles) if i in keep]  # noqa: E731
    train = set(range(len(articles))) - evaluation - dev
    return pick(train), pick(dev), pick(evaluation)


def with_negatives(examples: list[dict[str, Any]], n: int, seed: int = 42) -> list[dict[str, Any]]:
    """``examples`` plus, per question, ``n`` other paragraphs of its article with no answer (same question and
    reasoning type); drawn with a seeded RNG, fewer when the article has fewer other paragraphs."""
    if n <= 0:
        return list(examples)
    by_article: dict[str, dict[str, str]] = {}
    for ex in examples:
        by_article.setdefault(ex["title"], {})[ex["paragraph_id"]] = ex["context"]
    rng = random.Random(seed)
    out = list(examples)
    for ex in examples:
        others = sorted(pid for pid in by_article[ex["title"]] if pid != ex["paragraph_id"])
        for pid in rng.sample(others, min(n, len(others))):
            negative = {"id": f"{ex['id']}/neg/{pid}", "paragraph_id": pid, "context": by_article[ex["title"]][pid]}
            out.append({**ex, **negative, "answer": None})
    return out


def reader_windows(config: QAConfig) -> dict[str, int]:
    """The windows and answer length of ``config`` (``READER_WINDOWS``) that a trained reader records."""
    return {name: getattr(config, name) for name in READER_WINDOWS}


def build_features(tokenizer: Any, examples: list[dict[str, Any]], config: QAConfig) -> Any:
    """:func:`prepare_features` of examples with ``config``'s windows (weak reasoning labels from the questions)."""
    return prepare_features(
        tokenizer,
        [ex["question"] for ex in examples],
        [ex["context"] for ex in examples],
        [ex["answer"] for ex in examples],
        max_length=config.max_length,
        doc_stride=config.doc_stride,
        max_query_length=config.max_query_length,
    )


def train_reader(
    examples: list[dict[str, Any]],
    config: QAConfig,
    output_dir: str,
    base: str,
    show_progress_bar: bool = False,
    callbacks: list[Any] | None = None,
) -> tuple[BertForQuestionAnsweringWithReasoning, Any, dict[str, Any]]:
    """Fine-tune ``base`` (an HF BERT checkpoint, e.g. all-MiniLM-L6-v2) on ``examples`` (+ negatives), save it to
    ``output_dir``; returns (model, tokenizer, training facts: features, steps, seconds, loss log).

    ``callbacks`` are ``transformers.TrainerCallback`` objects (e.g. a dev evaluation at every epoch's end)."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    from st_bertapprox.finetune.common import training_arguments, two_rate_adamw

    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = BertForQuestionAnsweringWithReasoning.from_pretrained(
        base, reasoning_loss_weight=config.reasoning_loss_weight, reasoning_pooling=config.reasoning_pooling
    )
    model.reader_windows = reader_windows(config)  # saved with it: Reader(output_dir) reads with these windows
    train = with_negatives(examples, config.negatives, config.seed)
    features = build_features(tokenizer, train, config)
    dataset = Dataset.from_dict(features.model_columns())
    scratch = tempfile.mkdtemp(prefix="qa-trainer-")
    args = training_arguments(
        config,
        scratch,  # nothing is saved there (save_strategy="no"); the reader goes to output_dir
        arguments_class=TrainingArguments,  # a plain transformers Trainer: the reader is no SentenceTransformer
        eval_strategy="no",  # no evaluation dataset (a dev evaluation, if any, is a callback)
        bf16=False,  # the reader trains in float32
        lr_scheduler_type="linear",
        save_strategy="no",
        logging_steps=5,
        disable_tqdm=not show_progress_bar,
        use_cpu=not torch.cuda.is_available(),
        label_names=["start_positions", "end_positions", "reasoning_labels"],
        train_sampling_strategy="group_by_length",  # similar lengths in a batch: dynamic padding pads little
    )
    # the pooler feeds only the reasoning head, so it learns at the heads' rate
    heads = [*model.qa_outputs.parameters(), *model.reasoning_classifier.parameters(), *model.bert.pooler.parameters()]
    optimizer = two_rate_adamw(model, heads, config, config.head_learning_rate)
    collator = DataCollatorWithPadding(tokenizer)
    trainer = Trainer(
        model, args, train_dataset=dataset, data_collator=collator, optimizers=(optimizer, None), callbacks=callbacks
    )
    t0 = time.perf_counter()
    try:
        result = trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - t0
    model.save_pretrained(output_dir, tokenizer)
    facts = {
        "questions": len(examples),
        "examples_with_negatives": len(train),
        "features": len(features),
        "features_without_answer": sum(s == 0 for s in features.start_positions),
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "train_seconds": seconds,
        "log": [h for h in trainer.state.log_history if "loss" in h],
    }
    logger.info("trained the reader: %s", {k: v for k, v in facts.items() if k != "log"})
    return model.eval(), tokenizer, facts


def reader_for(model: BertForQuestionAnsweringWithReasoning, tokenizer: Any, config: QAConfig) -> Any:
    """A :class:`~st_bertapprox.qa.reader.Reader` with ``config``'s windows and answer length."""
    from .reader import Reader

    return Reader(model, tokenizer, **reader_windows(config))


def qa_split(config: QAConfig) -> dict[str, list[dict[str, Any]]]:
    """XQuAD-en split by article: ``train``, ``dev``, ``eval`` question records (capped by ``config``'s
    ``max_train_questions`` / ``max_eval_questions``; dev and eval alike) and the articles of each part
    (``train_articles``, ``dev_articles``, ``eval_articles``)."""
    from st_bertapprox.data.shared import load_xquad

    train, dev, evaluation = split_articles(load_xquad(), config.eval_articles, config.dev_articles, config.split_seed)
    cap = config.max_eval_questions
    return {
        "train": qa_examples(train)[: config.max_train_questions],
        "dev": qa_examples(dev)[:cap],
        "eval": qa_examples(evaluation)[:cap],
        "train_articles": train,
        "dev_articles": dev,
        "eval_articles": evaluation,
    }


def run_qa(config: QAConfig, output_dir: str, base: str, command: str = "") -> dict[str, Any]:
    """``st-bertapprox train-qa``: split XQuAD-en by article, train the reader, score it reader-only on the dev
    articles (when ``dev_articles > 0``: tuning) or else on the eval articles, write ``output_dir/results.json``."""
    from dataclasses import asdict

    from st_bertapprox.persistence.saving import save_results

    from .evaluate import evaluate_reader

    split = qa_split(config)
    model, tokenizer, facts = train_reader(split["train"], config, output_dir, base)
    evaluated = "dev" if config.dev_articles else "eval"
    scores = evaluate_reader(
        reader_for(model, tokenizer, config), split[evaluated], [ex["question"] for ex in split["train"]]
    )
    results = {
        "command": command,
        "base": base,
        "config": asdict(config),
        "evaluated_on": evaluated,
        "eval_articles": [a["title"] for a in split["eval_articles"]],
        "dev_articles": [a["title"] for a in split["dev_articles"]],
        "train": facts,
        "reader": scores,
    }
    return save_results(output_dir, results)
