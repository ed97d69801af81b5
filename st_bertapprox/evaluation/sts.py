"""STS-B evaluation with sentence-transformers' EmbeddingSimilarityEvaluator."""

from __future__ import annotations

from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

from st_bertapprox.data.shared import load_stsb


def stsb_evaluator(split: str = "dev", name: str | None = None, batch_size: int = 32) -> EmbeddingSimilarityEvaluator:
    """``EmbeddingSimilarityEvaluator`` on STS-B ``split``; its primary metric key is ``{name}_spearman_cosine``."""
    data = load_stsb(split)
    return EmbeddingSimilarityEvaluator(
        data["sentence1"], data["sentence2"], data["score"], name=name or f"sts-{split}", batch_size=batch_size
    )


def evaluate_stsb(model: SentenceTransformer, split: str = "dev", batch_size: int = 32) -> float:
    """Spearman correlation (x1) between cosine similarities and gold scores on STS-B ``split``."""
    evaluator = stsb_evaluator(split, batch_size=batch_size)
    return evaluator(model)[evaluator.primary_metric]
