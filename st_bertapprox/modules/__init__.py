"""sentence-transformers modules of st-bertapprox."""

from __future__ import annotations

from .bert import Bert, BertConfig, BertTransformer
from .pooling import MLPMeanPooling
from .student import DeepSetsPooling, VocabSetEncoder, fold_student
from .vocab import NGramVocab

__all__ = [
    "Bert",
    "BertConfig",
    "BertTransformer",
    "DeepSetsPooling",
    "MLPMeanPooling",
    "NGramVocab",
    "VocabSetEncoder",
    "fold_student",
]
