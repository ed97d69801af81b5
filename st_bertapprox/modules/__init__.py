"""sentence-transformers modules of st-bertapprox."""

from __future__ import annotations

from .bert import Bert, BertConfig, BertTransformer
from .pooling import MLPMeanPooling

__all__ = ["Bert", "BertConfig", "BertTransformer", "MLPMeanPooling"]
