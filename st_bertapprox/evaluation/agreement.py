"""How closely a student follows its teacher: cosine, MSE and k-nearest-neighbour overlap on held-out texts."""

from __future__ import annotations

import logging

import numpy as np
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

logger = logging.getLogger(__name__)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (an all-zero row stays zero)."""
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean row-wise cosine similarity of two (N, D) arrays."""
    return float((unit_rows(a) * unit_rows(b)).sum(1).mean())


def neighbour_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean |kNN_a(i) & kNN_b(i)| / k over all rows, neighbours by cosine among the same N texts (self excluded)."""

    def knn(x: np.ndarray) -> np.ndarray:
        x = unit_rows(x)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argpartition(-sim, k, axis=1)[:, :k]

    na, nb = knn(a), knn(b)
    return float(np.mean([len(set(r) & set(s)) / k for r, s in zip(na, nb)]))


class TeacherAgreementEvaluator(BaseEvaluator):
    """Student vs precomputed teacher embeddings of the same held-out texts: ``cosine`` (primary), ``mse`` (x100),
    ``top10_overlap``.

    Args:
        sentences: Held-out texts.
        teacher_embeddings: The teacher's (N, D) embeddings of ``sentences``.
        name: Metric prefix, e.g. ``"heldout"`` -> ``eval_heldout_cosine`` in the trainer.
        batch_size: Batch size for encoding ``sentences`` with the student.

    Raises:
        ValueError: If ``sentences`` and ``teacher_embeddings`` differ in length.
    """

    def __init__(
        self, sentences: list[str], teacher_embeddings: np.ndarray, name: str = "heldout", batch_size: int = 64
    ) -> None:
        super().__init__()
        if len(sentences) != len(teacher_embeddings):
            raise ValueError(f"{len(sentences)} sentences but {len(teacher_embeddings)} teacher embeddings")
        self.sentences, self.teacher_embeddings = sentences, np.asarray(teacher_embeddings, dtype=np.float32)
        self.name, self.batch_size = name, batch_size
        self.primary_metric = "cosine"

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encode the held-out texts with ``model``; return the prefixed metrics (``output_path`` is unused)."""
        emb = model.encode(self.sentences, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
        metrics = {
            "cosine": mean_cosine(emb, self.teacher_embeddings),
            "mse": float(((emb - self.teacher_embeddings) ** 2).mean() * 100),
            "top10_overlap": neighbour_overlap(emb, self.teacher_embeddings, 10),
        }
        logger.info(f"Teacher agreement on {self.name}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    @property
    def description(self) -> str:
        """The evaluator's name in logs and model cards."""
        return "Teacher agreement"
