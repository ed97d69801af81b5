"""Evaluation: STS-B, agreement with the teacher, retrieval (Faiss), MTEB."""

from __future__ import annotations

from .agreement import TeacherAgreementEvaluator, mean_cosine, neighbour_overlap
from .retrieval import ndcg_at_k, retrieval_ndcg
from .sts import evaluate_stsb, stsb_evaluator

__all__ = [
    "TeacherAgreementEvaluator",
    "evaluate_stsb",
    "mean_cosine",
    "ndcg_at_k",
    "neighbour_overlap",
    "retrieval_ndcg",
    "stsb_evaluator",
]
