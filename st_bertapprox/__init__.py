"""st-bertapprox: understand, fine-tune and approximate BERT sentence encoders inside sentence-transformers."""

from __future__ import annotations

from .modules import Bert, BertConfig, BertTransformer, MLPMeanPooling

__version__ = "0.1.0"
__all__ = ["Bert", "BertConfig", "BertTransformer", "MLPMeanPooling", "__version__"]
