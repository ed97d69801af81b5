"""st-bertapprox: understand, fine-tune and approximate BERT sentence encoders inside sentence-transformers."""

from __future__ import annotations

from st_bertapprox import modules
from st_bertapprox.inference.numpy_student import NumpyStudent
from st_bertapprox.modules import *  # noqa: F403  (BertTransformer, MLPMeanPooling, VocabSetEncoder, DeepSetsPooling, ...)

__version__ = "0.1.0"
__all__ = [*modules.__all__, "NumpyStudent", "__version__"]
