"""st-bertapprox: understand, fine-tune and approximate BERT sentence encoders inside sentence-transformers."""

from __future__ import annotations

from .modules import (
    Bert,
    BertConfig,
    BertTransformer,
    DeepSetsPooling,
    MLPMeanPooling,
    NGramVocab,
    VocabSetEncoder,
    fold_student,
)

__version__ = "0.1.0"
__all__ = [
    "Bert",
    "BertConfig",
    "BertTransformer",
    "DeepSetsPooling",
    "MLPMeanPooling",
    "NGramVocab",
    "VocabSetEncoder",
    "__version__",
    "fold_student",
]
