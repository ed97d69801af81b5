"""Atomic file writes, JSON and verified tensor files shared by the modules (lookup and checks: ``.checks``).

Kept free of any ``st_bertapprox`` import (only the standard library, numpy, torch, safetensors, transformers and
sentence-transformers) so that it can be copied next to a saved model as remote code.

Why not only sentence-transformers' ``Module`` helpers: ``save_config``/``save_torch_weights`` write in place (a
killed save leaves a truncated file under the final name) and ``load_config``/``load_torch_weights`` return ``{}``
for a missing config and raise raw ``JSONDecodeError``/``SafetensorError``. Here every write goes through a
temporary file renamed into place (:func:`atomic_path`; leftovers of killed writers are removed by the next write
into the folder and reported by :func:`check_no_interrupted_save`), and every read gives an error that names the
file and says what to do. File lookup uses ST's ``load_file_path`` (local folders and Hub repos alike).

Every tensor file we write carries a CRC32 of each tensor's bytes in its safetensors metadata; reading checks it
(files without it, written earlier or by other tools, skip that check) and refuses non-finite (NaN/inf)
floating-point values. On a 85k x 388 float32 table (132 MB) the two checks cost about 0.05 s (CRC32, zlib) + 0.03 s
(one float64 sum: NaN/inf anywhere makes it non-finite, and a finite float32 table cannot overflow it). A missing or
unreadable file stays an ``OSError`` (``FileNotFoundError``, ``PermissionError``): it is not reported as corrupt.

Interrupted saves: a module's ``load`` refuses a folder holding a killed writer's leftovers, or a model root that has
``config_sentence_transformers.json`` but no ``modules.json`` (sentence-transformers writes them first and last).
sentence-transformers itself never calls our loaders for a folder without ``modules.json`` (it fails with "Should have
a `model_type` key"), so :func:`check_model_folder` exists to diagnose a folder before loading it; ``NumpyStudent``
uses it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from transformers.dynamic_module_utils import get_relative_import_files

logger = logging.getLogger(__name__)


CHECKSUM_KEY = "st_bertapprox_crc32"  # safetensors metadata: JSON {tensor name: CRC32 of its bytes}


MODULES_FILE, ST_CONFIG_FILE = "modules.json", "config_sentence_transformers.json"  # written last / first by ST


# temporary names: ``.{name}.{host}.{pid}.{random}.tmp`` (or ``.old``), so a later writer can tell a killed writer's
# leftovers (same host, process gone) from a save still running elsewhere
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.(?P<kind>tmp|old)$")


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.{_HOST}.{os.getpid()}."


def _writer_gone(host: str, pid: int, mtime: float) -> bool:
    if host != _HOST:
        return False  # another machine or container: we cannot tell, leave it alone
    if os.name == "nt":  # os.kill(pid, 0) would signal the process on Windows: go by age instead
        return time.time() - mtime > 24 * 3600
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: the process exists (another user's)
        return False
    return False


def interrupted_writes(folder: str | os.PathLike) -> list[str]:
    """Temporary files/folders of ours in ``folder`` whose writer process is gone (a killed save)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # not a local folder (a Hub id) or unreadable: nothing to report
        return []
    out = []
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m:
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if _writer_gone(m["host"], int(m["pid"]), mtime):
                out.append(entry.path)
    return sorted(out)


def remove_interrupted_writes(folder: str | os.PathLike) -> None:
    """Remove the leftovers of killed writers in ``folder``; a killed :func:`atomic_dir` swap is rolled back."""
    for path in interrupted_writes(folder):
        m = _TEMP_RE.match(os.path.basename(path))
        target = os.path.join(os.path.dirname(path), m["name"])
        old = os.path.join(path, "x")
        if m["kind"] == "old" and os.path.exists(old) and not os.path.exists(target):
            os.replace(old, target)  # killed between the two renames of atomic_dir: restore the previous version
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        logger.info(f"Removed {path}, left by an interrupted save")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds.

    A crash or an exception half-way through a save never leaves a truncated file under the final name.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    remove_interrupted_writes(folder)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=folder)
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
    remove_interrupted_writes(parent)
    tmp = tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=parent)
    try:
        yield tmp
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=parent)
            os.replace(path, os.path.join(old, "x"))
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def save_code(module: Any, output_path: str | os.PathLike) -> None:
    """Copy the source file of ``type(module)`` (and the files it imports relatively) into the saved model's root.

    ``SentenceTransformer.save`` records a module as ``type(module).__module__ + "." + class name``, and loading with
    ``trust_remote_code=True`` resolves a one-dot reference ``file.Class`` from ``file.py`` in the model's root
    folder. Our classes report a one-dot module name (``st_bertapprox_student``, see ``st_bertapprox/modules``), so a
    plain ``model.save()`` / ``push_to_hub()`` writes a folder that loads where st-bertapprox is not installed. A
    module saved in a sub-folder (ST names it ``<idx>_<ClassName>``) writes its code into the parent folder.
    """
    cls = type(module)
    source = sys.modules[cls.__module__].__file__
    out = os.path.normpath(os.fspath(output_path))
    root = os.path.dirname(out) if re.fullmatch(rf"\d+_{cls.__name__}", os.path.basename(out)) else out
    targets = {cls.__module__.rsplit(".", 1)[-1] + ".py": source}
    targets.update({os.path.basename(p): p for p in get_relative_import_files(source)})
    for name, src in targets.items():
        dst = os.path.join(root, name)
        if not (os.path.exists(dst) and os.path.samefile(src, dst)):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)


def save_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` as indented UTF-8 JSON, atomically (a crash leaves the old file or none)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)


def load_json(path: str | os.PathLike) -> Any:
    """Parsed JSON of ``path``; a damaged file is a ValueError naming it (a missing one stays FileNotFoundError)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the file is corrupt, re-create or re-download it.") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e}); the file is corrupt, re-create or re-download it.") from e
    except RecursionError as e:  # json recurses per nesting level: a hostile file must not crash the caller
        raise ValueError(
            f"{path} is nested too deeply to be one of our files; it is corrupt, re-create or re-download it."
        ) from e


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """A module config: :func:`load_json` of ``path``, which must hold a JSON object."""
    config = load_json(path)
    if not isinstance(config, dict):
        raise ValueError(
            f"{path} holds a JSON {type(config).__name__}, not an object of settings: the file is corrupt; "
            "re-save or re-download the model."
        )
    return config


def _tensor_bytes(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def _all_finite(tensor: torch.Tensor) -> bool:
    """No NaN/inf in a floating-point tensor: one float64 sum (numpy's; torch's is 20x slower), exact check only
    when the sum is not finite (a float64 tensor of huge finite values can overflow it)."""
    array = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).detach().cpu().numpy()
    return bool(np.isfinite(array.sum(dtype=np.float64)) or np.isfinite(array).all())


def save_tensors(
    tensors: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` atomically as safetensors, with a CRC32 per tensor in the metadata (:data:`CHECKSUM_KEY`)."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    checksums = {k: zlib.crc32(_tensor_bytes(v)) for k, v in tensors.items()}
    metadata = {"format": "pt", **(metadata or {}), CHECKSUM_KEY: json.dumps(checksums, sort_keys=True)}
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


def _corrupt(path: str, what: str) -> ValueError:
    return ValueError(
        f"{path} is corrupt: {what}. Re-save the model (or re-download it, if it came from the Hub; a download "
        "is verified against the Hub's hashes)."
    )


def load_tensors(path: str | os.PathLike, with_metadata: bool = False) -> Any:
    """Read a safetensors file, verified: the CRC32 of every tensor when the file has them (files written by
    :func:`save_tensors`; other files, e.g. HF checkpoints, have none), and no NaN/inf in floating-point tensors.

    Returns:
        ``{name: tensor}``, or ``(tensors, metadata)`` with ``with_metadata=True``.

    Raises:
        ValueError: the file is unreadable (truncated, garbled header), a checksum differs, or values are non-finite.
        OSError: the file is missing or cannot be opened (FileNotFoundError, PermissionError, ...): not corrupt.
    """
    path = os.fspath(path)
    try:
        with safe_open(path, framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except SafetensorError as e:  # truncated file, garbled header, offsets out of range
        raise _corrupt(path, f"it is not a readable safetensors file ({e})") from e
    stored = metadata.get(CHECKSUM_KEY)
    if stored is not None:
        try:
            checksums = json.loads(stored)
        except (ValueError, RecursionError):
            checksums = None
        if not isinstance(checksums, dict) or set(checksums) != set(tensors):
            raise _corrupt(path, "its list of tensor checksums does not match the tensors it holds")
        for name, tensor in tensors.items():
            if zlib.crc32(_tensor_bytes(tensor)) != checksums[name]:
                raise _corrupt(path, f"the bytes of tensor {name!r} do not match the CRC32 stored when it was saved")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not _all_finite(tensor):
            bad = ~torch.isfinite(tensor.reshape(len(tensor), -1) if tensor.dim() else tensor.reshape(1, 1)).all(1)
            rows = torch.nonzero(bad).flatten()
            raise _corrupt(
                path,
                f"tensor {name!r} has non-finite values (NaN/inf) in {len(rows)} rows (first: {rows[:5].tolist()}), "
                "which would make every output that uses them NaN",
            )
    return (tensors, metadata) if with_metadata else tensors


def tensor_shapes(path: str | os.PathLike) -> dict[str, list[int]]:
    """``{name: shape}`` from a safetensors header, without reading the data."""
    path = os.fspath(path)
    try:
        with safe_open(path, framework="pt") as f:
            return {name: list(f.get_slice(name).get_shape()) for name in f.keys()}
    except SafetensorError as e:
        raise _corrupt(path, f"it is not a readable safetensors file ({e})") from e
