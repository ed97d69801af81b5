"""st-bertapprox: understand, fine-tune and approximate BERT sentence encoders inside sentence-transformers."""

from __future__ import annotations

from . import modules
from .modules import *  # noqa: F403  (BertTransformer, MLPMeanPooling, VocabSetEncoder, DeepSetsPooling, ...)

__version__ = "0.1.0"
__all__ = [*modules.__all__, "__version__"]
