"""What the training recipes share: their training arguments, the two-learning-rate optimizer, the STS-B-style
model builder, the trainable-parameter count, a model's short name and the results writer.

The recipes: ``distill`` (:mod:`st_bertapprox.distill.student`), ``distill-tiny`` (:mod:`st_bertapprox.distill.tiny`),
``finetune`` (:mod:`st_bertapprox.finetune.stsb`), ``finetune-contrastive`` (:mod:`st_bertapprox.finetune.contrastive`)
and ``train-qa`` (:mod:`st_bertapprox.qa.train`). This module imports no other recipe, so any of them may use it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
from torch import nn

from st_bertapprox.config import ContrastiveConfig, DistillConfig, FinetuneConfig, QAConfig
from st_bertapprox.modules.bert import BertTransformer
from st_bertapprox.modules.pooling import MLPMeanPooling

Recipe = DistillConfig | FinetuneConfig | ContrastiveConfig | QAConfig  # epochs, batch size, rates, warm-up, seed


def training_arguments(
    recipe: Recipe, output_dir: str, *, arguments_class: type | None = None, **overrides: Any
) -> Any:
    """The training arguments of a recipe: the arguments every recipe shares, then ``overrides``.

    Args:
        recipe: A recipe config (:class:`DistillConfig`, :class:`FinetuneConfig`, :class:`ContrastiveConfig`,
            :class:`QAConfig`).
        output_dir: The trainer's checkpoint folder.
        arguments_class: The arguments' class; default ``SentenceTransformerTrainingArguments``. The QA reader,
            trained by a plain ``transformers.Trainer``, passes ``transformers.TrainingArguments``.
        **overrides: Any further training arguments (they win over the shared ones).

    Returns:
        The training arguments: evaluation every epoch, bf16 on a GPU that has it, no reporting integrations.
    """
    from sentence_transformers import SentenceTransformerTrainingArguments

    kwargs = dict(
        output_dir=output_dir,
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        learning_rate=recipe.learning_rate,
        weight_decay=recipe.weight_decay,
        warmup_steps=recipe.warmup_ratio,  # a float < 1 is a fraction of the steps (transformers 5)
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
        eval_strategy="epoch",
        seed=recipe.seed,
        data_seed=recipe.seed,
        report_to="none",
    )
    return (arguments_class or SentenceTransformerTrainingArguments)(**{**kwargs, **overrides})


def two_rate_adamw(
    model: nn.Module, head: Iterable[nn.Parameter], recipe: Recipe, head_learning_rate: float
) -> torch.optim.AdamW:
    """AdamW with two parameter groups: the encoder (every trainable parameter of ``model`` not in ``head``, in
    ``model.parameters()`` order) at ``recipe.learning_rate``, then ``head`` at ``head_learning_rate``; weight decay
    ``recipe.weight_decay`` for both. The trainer's schedule (warm-up, decay) scales both groups."""
    head = [p for p in head if p.requires_grad]
    in_head = {id(p) for p in head}
    encoder = [p for p in model.parameters() if p.requires_grad and id(p) not in in_head]
    groups = [{"params": encoder, "lr": recipe.learning_rate}, {"params": head, "lr": head_learning_rate}]
    return torch.optim.AdamW(groups, weight_decay=recipe.weight_decay)


def build_model(base: str, config: FinetuneConfig) -> SentenceTransformer:
    """``BertTransformer(base)`` + pooling + ``Normalize``; the MLP starts as the identity (plain mean pooling)."""
    bert = BertTransformer(base)
    dim = bert.get_embedding_dimension()
    if config.pooling == "mean":
        pooling = Pooling(dim, "mean")
    elif config.pooling == "mlp":
        pooling = MLPMeanPooling(dim, hidden_dims=config.mlp_hidden_dims, residual=True)
    else:
        raise ValueError(f"pooling must be 'mean' or 'mlp', got {config.pooling!r}")
    return SentenceTransformer(modules=[bert, pooling, Normalize()])


def trainable_parameters(model: nn.Module) -> int:
    """How many parameters of ``model`` training updates (``requires_grad``; a frozen table does not count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def short_name(model_id: str) -> str:
    """What titles call a model: the last part of its Hub id or folder (``sentence-transformers/x`` -> ``x``)."""
    return os.path.basename(os.path.normpath(model_id))
