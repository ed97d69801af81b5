"""Evaluation: STS-B, agreement with the teacher, retrieval (Faiss), topic clustering (V-measure), MTEB."""

from __future__ import annotations

from st_bertapprox.evaluation.agreement import TeacherAgreementEvaluator, mean_cosine, neighbour_overlap
from st_bertapprox.evaluation.clustering import clustering_v_measure
from st_bertapprox.evaluation.retrieval import ndcg_at_k, retrieval_ndcg
from st_bertapprox.evaluation.sts import evaluate_stsb, stsb_evaluator

__all__ = [
    "TeacherAgreementEvaluator",
    "clustering_v_measure",
    "evaluate_stsb",
    "mean_cosine",
    "ndcg_at_k",
    "neighbour_overlap",
    "retrieval_ndcg",
    "stsb_evaluator",
]
