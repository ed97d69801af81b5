"""st-bertapprox: understand, fine-tune and approximate BERT sentence encoders inside sentence-transformers."""

from __future__ import annotations

from . import modules
from .modules import *  # noqa: F403  (BertTransformer, MLPMeanPooling, VocabSetEncoder, DeepSetsPooling, ...)
from .numpy_student import NumpyStudent

__version__ = "0.1.0"
__all__ = [*modules.__all__, "NumpyStudent", "__version__"]
