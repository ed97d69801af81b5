"""The one trainer of the recipes that distil into a SentenceTransformer: :class:`Targets` (training and held-out
texts with their teacher embeddings, from :func:`teacher_targets`), :func:`build_evaluator` (held-out agreement,
then STS-B dev), :func:`train_student` (``SentenceTransformerTrainer`` + ``MSELoss`` or :class:`EntryDistillLoss`,
best checkpoint by held-out cosine), :func:`evaluate_student` and :func:`distill_card` (the model-card fields every
distilled student shares). Used by the student (``distill.student``) and the tiny transformer (``distill.tiny``)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.base.evaluation import SequentialEvaluator
from sentence_transformers.sentence_transformer.losses import MSELoss

from st_bertapprox.config import DistillConfig
from st_bertapprox.distill.entry_targets import EntryTargets
from st_bertapprox.distill.losses import EntryDistillLoss
from st_bertapprox.distill.teacher_cache import encode_cached
from st_bertapprox.evaluation import TeacherAgreementEvaluator, stsb_evaluator
from st_bertapprox.finetune.common import trainable_parameters, training_arguments
from st_bertapprox.persistence.cards import CardInfo


def teacher_targets(
    teacher: SentenceTransformer,
    train_texts: list[str],
    heldout_texts: list[str],
    batch_size: int = 64,
    devices: list[str] | None = None,
    show_progress_bar: bool = True,
) -> Targets:
    """The teacher's embeddings of the training and held-out texts (cached on disk: ``encode_cached``)."""
    if not train_texts or not heldout_texts:
        raise ValueError("distill needs non-empty train_texts and heldout_texts")
    kw = dict(batch_size=batch_size, devices=devices, show_progress_bar=show_progress_bar)
    train_emb = encode_cached(teacher, train_texts, name="corpus", **kw)
    heldout_emb = encode_cached(teacher, heldout_texts, name="heldout", **kw)
    return Targets(train_texts, train_emb, heldout_texts, heldout_emb)


def build_evaluator(targets: Targets, config: DistillConfig) -> SequentialEvaluator:
    """Held-out agreement with the teacher (the main score, used for selection), then STS-B dev if asked for."""
    agreement = TeacherAgreementEvaluator(targets.heldout_texts, targets.heldout_embeddings, name="heldout")
    evaluators = [agreement] + ([stsb_evaluator("dev")] if config.eval_stsb else [])
    return SequentialEvaluator(evaluators, main_score_function=lambda scores: scores[0])


def train_student(
    student: SentenceTransformer,
    targets: Targets,
    evaluator: SequentialEvaluator,
    output_dir: str,
    config: DistillConfig,
    show_progress_bar: bool = True,
    entries: EntryTargets | None = None,
) -> SentenceTransformer:
    """MSE distillation with ``SentenceTransformerTrainer`` (plus the entry-level loss when ``entries`` are given);
    ``student`` ends as the best checkpoint, in eval mode."""
    labels, loss = targets.train_embeddings.astype(np.float32), MSELoss(student)
    if entries is not None:
        labels = np.hstack([labels, np.arange(len(labels), dtype=np.float32)[:, None]])  # + the text's index
        loss = EntryDistillLoss(student, entries, config.entry_loss_weight)
    train_dataset = Dataset.from_dict({"sentence": targets.train_texts, "label": labels})
    args = training_arguments(
        config,
        os.path.join(output_dir, "checkpoints"),
        per_device_eval_batch_size=config.batch_size,
        lr_scheduler_type="cosine",
        max_grad_norm=config.max_grad_norm,
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_heldout_cosine",
        greater_is_better=True,
        logging_steps=config.logging_steps,
        dataloader_num_workers=config.dataloader_num_workers,
        disable_tqdm=not show_progress_bar,
    )
    trainer = SentenceTransformerTrainer(
        model=student, args=args, train_dataset=train_dataset, loss=loss, evaluator=evaluator
    )
    trainer.train()
    shutil.rmtree(args.output_dir, ignore_errors=True)  # the best checkpoint is loaded; the rest is clutter
    return student.eval()


def evaluate_student(student: SentenceTransformer, evaluator: SequentialEvaluator) -> dict[str, float]:
    """The evaluator's metrics without the trainer's ``eval_`` prefix, e.g. ``heldout_cosine``."""
    return {k.removeprefix("eval_"): v for k, v in evaluator(student).items()}


def distill_card(
    job: Any,
    student: SentenceTransformer,
    metrics: dict[str, float],
    num_train: int,
    facts: dict[str, str],
    entry_note: str = "",
    **fields: Any,
) -> CardInfo:
    """The model card of a distilled student: what every distillation shares (the recipe's training line, the
    command, the teacher, the corpus's datasets and held-out source, the STS-B dev and held-out results, the
    trainable parameters after ``facts``) plus the student's own ``fields`` (title, description, architecture, tags).

    Args:
        job: The run (``DistillJob`` or ``TinyJob``): its ``recipe``, ``corpus``, ``teacher_id`` and ``command``.
        student: The trained student.
        metrics: :func:`evaluate_student`'s metrics (``heldout_cosine``; ``sts-dev_spearman_cosine`` if measured).
        num_train: The number of training sentences.
        facts: The student's own facts, shown before the trainable parameters.
        entry_note: Words after the sentence count in the training line (the entry-level targets).
        **fields: The other :class:`CardInfo` fields.
    """
    r = job.recipe
    results = {
        "stsb_dev_spearman": metrics.get("sts-dev_spearman_cosine"),
        "heldout_cosine_to_teacher": metrics["heldout_cosine"],
    }
    return CardInfo(
        training=f"MSE distillation to the teacher's sentence embeddings of {num_train:,} sentences{entry_note}, "
        f"{r.epochs} epoch(s), batch {r.batch_size}, lr {r.learning_rate}, best checkpoint by held-out cosine.",
        command=job.command,
        base_model=job.teacher_id,
        datasets=job.corpus.datasets(),
        results={k: v for k, v in results.items() if v is not None},
        facts={**facts, "trainable parameters": f"{trainable_parameters(student):,}"},
        heldout_dataset=job.corpus.heldout_source(),
        **fields,
    )


@dataclass
class Targets:
    """What the student learns from (``train_*``) and is measured on (``heldout_*``): texts + teacher embeddings."""

    train_texts: list[str]
    train_embeddings: np.ndarray  # (N, C) float32
    heldout_texts: list[str]
    heldout_embeddings: np.ndarray  # (M, C) float32
