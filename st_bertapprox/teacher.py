"""Teacher embeddings, computed once and cached on disk: resumable, chunked, and content-addressed.

A cache file is named by a hash of the teacher's weights and of the texts, so changing either recomputes it, and a
rerun (or a benchmark, or another recipe) reuses it. Encoding runs in chunks; each finished chunk is written
atomically, so an interrupted run resumes where it stopped. Several devices (GPUs, or CPU processes) are used
through sentence-transformers' own multi-process pool (``SentenceTransformer.encode(device=[...])``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from .modules.files import load_tensors, save_tensors

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$ST_BERTAPPROX_CACHE`` or ``~/.cache/st_bertapprox``."""
    return Path(os.environ.get("ST_BERTAPPROX_CACHE", Path.home() / ".cache" / "st_bertapprox"))


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 over parameter names, shapes and values (a fraction of a second for MiniLM)."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def texts_fingerprint(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def encode_cached(
    teacher: SentenceTransformer,
    texts: list[str],
    name: str = "texts",
    batch_size: int = 64,
    chunk_size: int = 8192,
    devices: list[str] | None = None,
    show_progress_bar: bool = True,
    directory: str | os.PathLike | None = None,
) -> np.ndarray:
    """``teacher.encode(texts)`` as a float32 array (N, D), cached under ``directory`` (default :func:`cache_dir`).

    Args:
        teacher: Any SentenceTransformer.
        texts: The texts, in order.
        name: A label for the cache file name.
        batch_size: Encoding batch size.
        chunk_size: Texts per resumable chunk.
        devices: e.g. ``["cuda:0", "cuda:1"]`` to encode with ST's multi-process pool.
        show_progress_bar: One bar over the chunks.
        directory: Where cache files go.
    """
    if not texts:
        raise ValueError("encode_cached got no texts.")
    directory = Path(directory or cache_dir())
    key = f"{name}-{model_fingerprint(teacher)}-{texts_fingerprint(texts)}-{len(texts)}"
    final = directory / f"{key}.safetensors"
    if final.exists():
        return load_tensors(final)["embeddings"].numpy()
    parts = directory / f"{key}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    starts = range(0, len(texts), chunk_size)
    pool = teacher.start_multi_process_pool(devices) if devices and len(devices) > 1 else None
    try:
        for start in tqdm(starts, desc=f"teacher: {name}", unit="chunk", disable=not show_progress_bar):
            part = parts / f"{start:012d}.safetensors"
            if part.exists():
                continue
            emb = teacher.encode(
                texts[start : start + chunk_size],
                batch_size=batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
                pool=pool,
                **({"device": devices[0]} if devices and pool is None else {}),
            )
            save_tensors({"embeddings": torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float32))}, part)
    finally:
        if pool is not None:
            teacher.stop_multi_process_pool(pool)
    emb = np.concatenate([load_tensors(parts / f"{s:012d}.safetensors")["embeddings"].numpy() for s in starts])
    save_tensors({"embeddings": torch.from_numpy(emb)}, final)
    shutil.rmtree(parts, ignore_errors=True)
    return emb
