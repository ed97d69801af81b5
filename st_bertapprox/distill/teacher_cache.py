"""Teacher embeddings, computed once and cached on disk per (teacher, text): resumable and reusable.

The cache of a teacher lives in ``cache_dir()/<teacher fingerprint>/`` as safetensors chunks; each chunk holds the
embeddings of some texts and a 128-bit hash of each text. A call encodes only the texts no chunk holds yet, writes
each finished chunk atomically (so an interrupted run resumes where it stopped), and gathers the rows it needs, so a
subset, a superset or a reordering of an earlier corpus costs nothing extra. Several devices (GPUs, or CPU processes)
are used through sentence-transformers' own multi-process pool (``SentenceTransformer.encode(pool=...)``).
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from st_bertapprox.fingerprint import model_fingerprint, text_hashes
from st_bertapprox.modules.io import save_tensors

logger = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$ST_BERTAPPROX_CACHE`` or ``~/.cache/st_bertapprox``."""
    return Path(os.environ.get("ST_BERTAPPROX_CACHE", Path.home() / ".cache" / "st_bertapprox"))


def _read_chunk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(hashes (n, 2) int64, embeddings (n, D) float32) of a cache chunk, checked.

    Raises:
        ValueError: the chunk is damaged (unreadable, inconsistent shapes, non-finite embeddings).
    """
    try:
        with safe_open(str(path), "np") as f:
            hashes, embeddings = f.get_tensor("hashes"), f.get_tensor("embeddings")
    except (SafetensorError, KeyError) as e:
        raise ValueError(f"unreadable ({e})") from e
    if hashes.ndim != 2 or hashes.shape[1] != 2 or embeddings.ndim != 2 or len(embeddings) != len(hashes):
        raise ValueError(f"inconsistent shapes {hashes.shape} / {embeddings.shape}")
    if not np.isfinite(embeddings).all():
        raise ValueError("non-finite (NaN/inf) embeddings")
    return hashes, embeddings


def _drop(path: Path, why: object) -> None:
    logger.warning(f"Deleting damaged teacher-cache chunk {path}: {why}; its texts will be encoded again.")
    path.unlink(missing_ok=True)


def _index(folder: Path) -> dict[tuple[int, int], tuple[Path, int]]:
    """Text hash -> (chunk, row) over the folder's chunks, from their hashes only (the embeddings are read, and
    checked, only when a chunk is used); an unreadable chunk is deleted (its texts are encoded again)."""
    index = {}
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), "np") as f:
                hashes = f.get_tensor("hashes")
        except (SafetensorError, KeyError) as e:
            _drop(path, f"unreadable ({e})")
            continue
        for row, (a, b) in enumerate(hashes.tolist()):
            index[(a, b)] = (path, row)
    return index


def store_cached(
    teacher: SentenceTransformer, texts: list[str], embeddings: np.ndarray, fingerprint: str | None = None
) -> None:
    """Add the teacher's sentence embeddings of ``texts``, computed elsewhere (e.g. in the same pass as its token
    vectors, :func:`st_bertapprox.distill.entry_targets.entry_targets`), to its cache as one chunk. ``fingerprint``:
    the teacher's :func:`model_fingerprint`, when a caller storing many chunks has it already."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.shape[0] != len(texts) or not np.isfinite(embeddings).all():
        raise ValueError("store_cached needs one finite embedding per text.")
    folder = cache_dir() / (fingerprint or model_fingerprint(teacher))
    folder.mkdir(parents=True, exist_ok=True)
    _write_chunk(folder, text_hashes(texts), embeddings)


def _write_chunk(folder: Path, hashes: np.ndarray, embeddings: np.ndarray) -> Path:
    """One cache chunk (texts' hashes + float32 embeddings), written atomically under a fresh name."""
    path = folder / f"{uuid.uuid4().hex}.safetensors"
    tensors = {
        "embeddings": torch.from_numpy(np.asarray(embeddings, dtype=np.float32)),
        "hashes": torch.from_numpy(hashes),
    }
    save_tensors(tensors, path)
    return path


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
    """``teacher.encode(texts)`` as a float32 array (N, D), cached per text under ``directory`` (default
    :func:`cache_dir`).

    Args:
        teacher: Any SentenceTransformer.
        texts: The texts, in order (duplicates allowed).
        name: A label for the progress bar.
        batch_size: Encoding batch size.
        chunk_size: Texts per resumable chunk.
        devices: e.g. ``["cuda:0", "cuda:1"]`` to encode with ST's multi-process pool.
        show_progress_bar: One bar over the chunks still to encode.
        directory: Root of the cache.
    """
    if not texts:
        raise ValueError("encode_cached got no texts.")
    folder = Path(directory or cache_dir()) / model_fingerprint(teacher)
    folder.mkdir(parents=True, exist_ok=True)
    hashes = text_hashes(texts)
    keys = [tuple(h) for h in hashes.tolist()]
    index = _index(folder)
    todo = list({k: i for i, k in enumerate(keys) if k not in index}.values())  # first occurrence of each missing text
    if todo:
        pool = teacher.start_multi_process_pool(devices) if devices and len(devices) > 1 else None
        device = {"device": devices[0]} if devices and pool is None else {}
        try:
            starts = range(0, len(todo), chunk_size)
            for start in tqdm(starts, desc=f"teacher: {name}", unit="chunk", disable=not show_progress_bar):
                rows = todo[start : start + chunk_size]
                emb = teacher.encode(
                    [texts[i] for i in rows], batch_size=batch_size, show_progress_bar=False, pool=pool, **device
                )
                if not np.isfinite(emb).all():
                    raise ValueError(
                        f"The teacher gave non-finite (NaN/inf) embeddings for {name!r}: its weights are broken; "
                        "nothing was cached."
                    )
                path = _write_chunk(folder, hashes[rows], emb)
                index.update({keys[i]: (path, r) for r, i in enumerate(rows)})
        finally:
            if pool is not None:
                teacher.stop_multi_process_pool(pool)
    by_file: dict[Path, list[int]] = {}
    for i, k in enumerate(keys):
        by_file.setdefault(index[k][0], []).append(i)
    out = None
    for path, positions in by_file.items():
        try:
            _, emb = _read_chunk(path)
        except ValueError as e:  # deleted, so the call below encodes its texts again and terminates
            _drop(path, e)
            return encode_cached(teacher, texts, name, batch_size, chunk_size, devices, show_progress_bar, directory)
        if out is None:
            out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
        out[positions] = emb[[index[keys[i]][1] for i in positions]]
    return out
