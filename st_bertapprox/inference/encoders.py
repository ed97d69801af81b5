"""Encoders for indexing and search: :func:`load_encoder` (a spec -> a model: the teacher, a folder or Hub id, a
folded student in numpy, an export), :func:`model_reference` and :class:`CachedEncoder` (a bounded LRU of query
embeddings, keyed on the model's fingerprint)."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import numpy as np

from st_bertapprox.inference.index import encode_unit, fingerprint_of


def load_encoder(spec: str, trust_remote_code: bool = False) -> Any:
    """A model to encode with, from a spec: ``teacher`` (the packaged all-MiniLM-L6-v2), ``numpy:PATH`` (a folded
    student as :class:`~st_bertapprox.NumpyStudent`), an export folder (``st-bertapprox export``: has
    ``export.json``), or a SentenceTransformer folder or Hub id (its own code runs only with ``trust_remote_code``)."""
    if spec == "teacher":
        from st_bertapprox.data.shared import teacher_path

        spec = teacher_path()
    if spec.startswith("numpy:"):
        from st_bertapprox.inference.numpy_student import NumpyStudent

        return NumpyStudent.from_pretrained(spec[len("numpy:") :])
    if os.path.isfile(os.path.join(spec, "export.json")):
        from st_bertapprox.inference.onnx import load_export

        return load_export(spec)
    from st_bertapprox.persistence.loading import load_model

    return load_model(spec, trust_remote_code=trust_remote_code)


def model_reference(spec: str) -> str:
    """The spec an index records (local paths made absolute, so ``search`` finds the model from anywhere)."""
    prefix, path = ("numpy:", spec[6:]) if spec.startswith("numpy:") else ("", spec)
    return prefix + (os.path.abspath(path) if os.path.exists(path) else path)


class CachedEncoder:
    """Wrap a model's ``encode`` with a bounded LRU cache of text -> embedding (for query streams with repeats).

    The cache belongs to one model, so it is keyed by text alone; ``fingerprint`` is the model's, so an index checks
    the wrapped model as it would the model itself. Only the texts not in the cache are encoded, in one call.
    """

    def __init__(self, model: Any, max_size: int = 100_000) -> None:
        self.model, self.max_size = model, max_size
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = self.misses = 0
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str | None:
        """The wrapped model's fingerprint (:func:`fingerprint_of`), computed once."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint_of(self.model)
        return self._fingerprint

    def encode(self, texts: list[str], batch_size: int = 32, **kwargs: Any) -> np.ndarray:
        """(N, D) float32 unit vectors of ``texts``, as ``encode_unit``; encodes only the uncached texts."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        if missing:
            for text, row in zip(missing, encode_unit(self.model, missing, batch_size, **kwargs)):
                self.cache[text] = row
        out = np.stack([self.cache[t] for t in texts])
        for text in texts:
            self.cache.move_to_end(text)
        while len(self.cache) > self.max_size:
            self.cache.popitem(last=False)
        return out
