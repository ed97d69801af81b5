"""Atomic file writes and checkpoint-file lookup shared by the modules.

Kept free of any ``st_bertapprox`` import (only the standard library, torch, safetensors and
sentence-transformers) so that it can be copied next to a saved model as remote code.
"""

from __future__ import annotations

import json
import os
import shutil
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


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary folder next to ``path``; it replaces ``path`` only if the block succeeds."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
    try:
        yield tmp
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".old", dir=parent)
            os.replace(path, os.path.join(old, "x"))
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)


def load_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the file is corrupt, re-create or re-download it.") from e


def save_tensors(
    tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> None:
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


def hub_kwargs_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The Hub arguments among the keyword arguments sentence-transformers passes to ``Module.load``."""
    return {k: kwargs[k] for k in ("token", "cache_folder", "revision", "local_files_only") if k in kwargs}


class ConfigAndWeights:
    """Mixin: ``save``/``load`` for a sentence-transformers module described by its config plus its state_dict."""

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        save_json(self.get_config_dict(), os.path.join(output_path, self.config_file_name))
        save_tensors(self.state_dict(), os.path.join(output_path, "model.safetensors"))

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any):
        hub_kwargs = hub_kwargs_of(kwargs)
        model = cls(**cls.load_config(model_name_or_path, subfolder=subfolder, **hub_kwargs))
        path = find_file(model_name_or_path, "model.safetensors", subfolder=subfolder, **hub_kwargs)
        if path is None:
            raise FileNotFoundError(f"No model.safetensors for {cls.__name__} in {model_name_or_path!r}/{subfolder}")
        model.load_state_dict(load_tensors(path), strict=True)
        return model
