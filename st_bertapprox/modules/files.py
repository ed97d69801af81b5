"""Atomic file writes and checkpoint-file lookup shared by the modules.

Kept free of any ``st_bertapprox`` import (only the standard library, torch, safetensors and
sentence-transformers) so that it can be copied next to a saved model as remote code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from sentence_transformers.util import load_file_path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds.

    A crash or an exception half-way through a save never leaves a truncated file under the final name.
    """
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=os.path.dirname(path) or ".")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)


def load_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the file is corrupt, re-create or re-download it.") from e


def save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata={"format": "pt", **(metadata or {})})


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    try:
        return load_file(os.fspath(path))
    except Exception as e:  # safetensors raises its own SafetensorError on truncated/garbled headers
        raise ValueError(f"Could not read the safetensors file {path}: {e}. It is corrupt or incomplete.") from e


def find_file(model_name_or_path: str, filename: str, subfolder: str = "", **hub_kwargs: Any) -> str | None:
    """Path of ``filename`` in a local folder or a Hub repo (downloaded into the HF cache), or None if absent."""
    return load_file_path(model_name_or_path, filename, subfolder=subfolder, **hub_kwargs)
