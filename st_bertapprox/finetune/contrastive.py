"""Contrastive fine-tuning on subject-labelled texts through `SentenceTransformerTrainer`, and its before/after job.

Three losses that fit labelled texts (``ContrastiveConfig.loss``):

* ``batch-all-triplet``: ST ``BatchAllTripletLoss`` on (text, subject) rows; every valid (anchor, positive,
  negative) triplet of a batch counts. Batches come from ST's ``GroupByLabelBatchSampler`` (each holds several
  subjects, each at least twice). Cosine distance, margin ``ContrastiveConfig.margin``.
* ``mnrl``: ST ``MultipleNegativesRankingLoss`` on (anchor, positive) pairs of the same subject; the other pairs'
  texts in the batch are the negatives. With only a few subjects many of them share the anchor's subject (about a
  quarter with 4 topics): false negatives the loss pushes away.
* ``online-contrastive``: ST ``OnlineContrastiveLoss`` on (text1, text2, same subject 0/1) pairs, half of each;
  only the hard positives and negatives of a batch count.

Every loss sees each training text once per epoch (pairs are made by pairing texts up), so they cost the same.
The split is by document (each text is one document, de-duplicated first), stratified by subject, seeded
(:func:`load_splits`). Reported figures are on the held-out test documents; the dev documents are for choosing.
"""

from __future__ import annotations

import logging
import os
import random
import time
from dataclasses import asdict

import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.sentence_transformer import losses
from sentence_transformers.sentence_transformer.training_args import BatchSamplers

from st_bertapprox.config import ContrastiveConfig, FinetuneConfig, LabelledDataConfig
from st_bertapprox.data.corpus import Splits, Texts, load_splits
from st_bertapprox.evaluation.analysis import View, base_views, encode, write_analysis
from st_bertapprox.finetune.common import build_model, training_arguments

logger = logging.getLogger(__name__)


def training_dataset(texts: list[str], labels: list[str], loss: str, seed: int = 42) -> Dataset:
    """The rows a loss trains on, each text used once: (text, label id) or pairs made by pairing texts up."""
    ids = {s: i for i, s in enumerate(sorted(set(labels)))}
    if loss == "batch-all-triplet":
        return Dataset.from_dict({"text": texts, "label": [ids[s] for s in labels]})
    rng = random.Random(seed)
    by_subject: dict[str, list[str]] = {}
    for text, subject in zip(texts, labels):
        by_subject.setdefault(subject, []).append(text)
    for group in by_subject.values():
        rng.shuffle(group)
    if loss == "mnrl":  # consecutive same-subject texts: (anchor, positive)
        pairs = [(g[i], g[i + 1]) for g in by_subject.values() for i in range(0, len(g) - 1, 2)]
        rng.shuffle(pairs)
        return Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    if loss == "online-contrastive":  # half same-subject pairs, half pairs across two subjects
        rows = []
        pool = [t for g in by_subject.values() for t in g[: len(g) // 2]]
        rng.shuffle(pool)
        rows += [(g[i], g[i + 1], 1) for g in by_subject.values() for i in range(len(g) // 2, len(g) - 1, 2)]
        subject_of = dict(zip(texts, labels))
        while len(pool) > 1:
            a = pool.pop()
            j = next((j for j in range(len(pool) - 1, -1, -1) if subject_of[pool[j]] != subject_of[a]), None)
            if j is None:
                break
            rows.append((a, pool.pop(j), 0))
        rng.shuffle(rows)
        return Dataset.from_dict({k: [r[i] for r in rows] for i, k in enumerate(("sentence1", "sentence2", "label"))})
    raise ValueError(f"unknown loss {loss!r}")


def build_loss(model: SentenceTransformer, config: ContrastiveConfig) -> torch.nn.Module:
    """The ST loss named by ``config.loss`` (margins in cosine distance)."""
    if config.loss == "batch-all-triplet":
        cosine = losses.BatchHardTripletLossDistanceFunction.cosine_distance
        return losses.BatchAllTripletLoss(model, distance_metric=cosine, margin=config.margin)
    if config.loss == "mnrl":
        return losses.MultipleNegativesRankingLoss(model)
    return losses.OnlineContrastiveLoss(model, margin=config.margin)  # cosine distance by default


def finetune_contrastive(
    base: str, splits: Splits, config: ContrastiveConfig, output_dir: str, show_progress_bar: bool = False
) -> tuple[SentenceTransformer, dict]:
    """Fine-tune ``BertTransformer(base)`` + mean pooling + Normalize on ``splits.train`` with ``config.loss``.

    Returns:
        The model (its evaluation length restored to the base's) and ``{"dev_before", "dev_after"}`` (dev kNN
        accuracy, V-measure, nearest-neighbour confusion), ``train_texts``, ``train_seconds``, ``config``.
    """
    torch.manual_seed(config.seed)
    model = build_model(base, FinetuneConfig())
    eval_length = model.max_seq_length
    dev_before = _dev_figures(model, splits.dev)
    model.max_seq_length = config.max_seq_length  # long articles are truncated for training
    train = training_dataset(*splits.train, config.loss, config.seed)
    sampler = BatchSamplers.GROUP_BY_LABEL if config.loss == "batch-all-triplet" else BatchSamplers.BATCH_SAMPLER
    args = training_arguments(
        config,
        os.path.join(output_dir, "checkpoints"),
        eval_strategy="no",
        save_strategy="no",
        logging_steps=10,
        batch_sampler=sampler,
        disable_tqdm=not show_progress_bar,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=build_loss(model, config))
    t0 = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - t0
    model.eval()
    model.max_seq_length = eval_length
    return model, {
        "dev_before": dev_before,
        "dev_after": _dev_figures(model, splits.dev),
        "train_texts": len(splits.train[0]),
        "train_rows": len(train),
        "train_seconds": train_seconds,
        "config": asdict(config),
    }


def _dev_figures(model: SentenceTransformer, dev: Texts) -> dict[str, float] | None:
    if len(dev[0]) < 10:
        return None
    m = View("dev", encode(model, dev[0]), dev[1]).analyze().metrics
    return {k: m[k] for k in ("knn_accuracy", "v_measure", "nn_confusion")}


def run_contrastive(
    base: str,
    data: LabelledDataConfig,
    recipe: ContrastiveConfig,
    output_dir: str,
    loss_names: tuple[str, ...] | None = None,
    extra: dict[str, SentenceTransformer] | None = None,
) -> dict:
    """Split ``data``, fine-tune one model per loss (saved as ``output_dir/<loss>/``, built-in modules only), and
    analyse the raw BERT, the base model, the fine-tuned models and ``extra`` models on the held-out test documents.

    Writes ``results.json``, ``results.md`` (the table) and ``pca.png`` into ``output_dir``; returns the results.
    """
    from dataclasses import replace

    from st_bertapprox.persistence.saving import export_builtin

    os.makedirs(output_dir, exist_ok=True)
    t0 = time.perf_counter()
    splits = load_splits(data)
    views = base_views(base, splits.test)
    runs = {}
    for loss in loss_names or (recipe.loss,):
        model, info = finetune_contrastive(base, splits, replace(recipe, loss=loss), os.path.join(output_dir, loss))
        info["path"] = os.path.join(output_dir, loss)
        export_builtin(model, info["path"])
        runs[loss] = info
        views.append(View(f"fine-tuned, {loss}", encode(model, splits.test[0]), splits.test[1]))
    views += [View(name, encode(model, splits.test[0]), splits.test[1]) for name, model in (extra or {}).items()]
    for view in views:
        view.analyze()
    return write_analysis(output_dir, views, runs, data, time.perf_counter() - t0)
