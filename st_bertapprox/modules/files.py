"""Atomic file writes, verified tensor files and checkpoint-file lookup shared by the modules.

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
from sentence_transformers.util import load_file_path
from transformers.dynamic_module_utils import get_relative_import_files

logger = logging.getLogger(__name__)

CHECKSUM_KEY = "st_bertapprox_crc32"  # safetensors metadata: JSON {tensor name: CRC32 of its bytes}
MODULES_FILE, ST_CONFIG_FILE = "modules.json", "config_sentence_transformers.json"  # written last / first by ST
# keyword arguments sentence-transformers passes to ``Module.load`` (base/model.py ``_load_config_modules``)
ST_LOAD_KWARGS = frozenset(
    {
        "subfolder",
        "token",
        "cache_folder",
        "revision",
        "local_files_only",
        "trust_remote_code",
        "model_kwargs",
        "processor_kwargs",
        "config_kwargs",
        "backend",
        "init_defaults",
        "module_classes",
    }
)
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


def check_no_interrupted_save(folder: str | os.PathLike, what: str) -> None:
    """Raise if ``folder`` holds leftovers of a killed save (its files may mix two saves), or is the root of a
    SentenceTransformer save that never got to write ``modules.json`` (sentence-transformers writes
    ``config_sentence_transformers.json`` first and ``modules.json`` after every module).

    A path that is not a local folder (a Hub repo id) passes: a Hub repo is written by an upload, not by a save.

    Raises:
        ValueError: naming the leftovers or ``modules.json``; saving the model again into the folder fixes both.
    """
    leftovers = interrupted_writes(folder)
    if leftovers:
        raise ValueError(
            f"A save of {what} into {os.fspath(folder)!r} was interrupted (leftover temporary files "
            f"{[os.path.basename(p) for p in leftovers[:5]]}): the folder may be incomplete or mix two saves. "
            "Save the model into it again (that also removes the leftovers)."
        )
    if os.path.isfile(os.path.join(folder, ST_CONFIG_FILE)) and not os.path.exists(os.path.join(folder, MODULES_FILE)):
        raise FileNotFoundError(
            f"{os.fspath(folder)!r} has {ST_CONFIG_FILE} but no {MODULES_FILE}: the save of this SentenceTransformer "
            f"was interrupted before the end ({MODULES_FILE} is written last), so its modules may be missing or "
            "incomplete. Save the model into it again."
        )


def check_model_folder(model_name_or_path: str, **hub_kwargs: Any) -> list[dict[str, Any]]:
    """The module list (``modules.json``) of a saved SentenceTransformer folder or Hub repo, checked.

    sentence-transformers itself, given a folder without ``modules.json``, falls back to loading it as a plain
    transformers checkpoint and fails with a misleading "Should have a `model_type` key in its config.json"; call
    this first for a clear error. A local folder is also checked for leftovers of an interrupted save, in its root
    and in every module's sub-folder, and every JSON file there must parse.

    Raises:
        FileNotFoundError: no ``modules.json`` (not a saved model, or a save interrupted before its end).
        ValueError: leftovers of an interrupted save, or a ``modules.json`` that is not a list of modules.
    """
    local = os.path.isdir(model_name_or_path)
    if local:
        check_no_interrupted_save(model_name_or_path, "a model")
    path = find_file(model_name_or_path, MODULES_FILE, **hub_kwargs)
    if path is None:
        raise FileNotFoundError(
            f"{model_name_or_path!r} has no {MODULES_FILE}: it is not a saved SentenceTransformer folder or Hub repo "
            f"(a folder whose save was interrupted lacks it too: {MODULES_FILE} is written last). Save the model "
            "(again) with `model.save(path)`."
        )
    modules = load_json(path)
    if not (
        isinstance(modules, list)
        and all(isinstance(m, dict) and isinstance(m.get("path"), str) for m in modules)
        and all(isinstance(m.get("type"), str) for m in modules)
    ):
        raise ValueError(
            f"{path} is not a sentence-transformers module list (a list of {{'path': ..., 'type': ...}}); the file "
            "is corrupt: save the model again or re-download it."
        )
    if local:
        subfolders = {m["path"]: m["type"] for m in modules if m["path"]}
        # a built-in module without files (Normalize) may have no folder at all (the packaged MiniLM has none)
        missing = [
            path
            for path, kind in subfolders.items()
            if not kind.startswith("sentence_transformers.")
            and not os.path.isdir(os.path.join(model_name_or_path, path))
        ]
        if missing:
            raise FileNotFoundError(
                f"{model_name_or_path!r}: the module folders {missing} listed in {MODULES_FILE} are missing; the "
                "folder is incomplete: save the model again (or re-download it)."
            )
        folders = [model_name_or_path] + [os.path.join(model_name_or_path, path) for path in subfolders]
        folders = [f for f in folders if os.path.isdir(f)]
        for folder in folders[1:]:
            check_no_interrupted_save(folder, os.path.basename(folder))
        # sentence-transformers writes its own files (config_sentence_transformers.json, built-in modules' configs)
        # in place, so a killed save can leave one empty: parse every JSON file of the model
        for folder in folders:
            for name in sorted(os.listdir(folder)):
                if name.endswith(".json") and os.path.isfile(os.path.join(folder, name)):
                    try:
                        load_json(os.path.join(folder, name))
                    except ValueError as e:
                        raise ValueError(f"{e} (An interrupted save leaves such files: save the model again.)") from e
    return modules


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


def check_max_seq_length(value: Any, owner: str) -> None:
    """``max_seq_length`` must be a positive int (0 or less would encode every text as empty)."""
    if type(value) is not int or value <= 0:  # bool is an int subclass: refuse True/False too
        raise ValueError(f"{owner}: max_seq_length must be a positive integer, got {value!r}.")


def warn_unknown_kwargs(owner: str, kwargs: dict[str, Any]) -> None:
    """Log a warning for keyword arguments a module constructor does not use (a typo would pass silently).

    The arguments sentence-transformers passes around when loading (:data:`ST_LOAD_KWARGS`) are accepted quietly.
    """
    unknown = sorted(set(kwargs) - ST_LOAD_KWARGS)
    if unknown:
        logger.warning(f"{owner} ignores the unknown keyword arguments {unknown}.")


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


def find_file(model_name_or_path: str, filename: str, subfolder: str = "", **hub_kwargs: Any) -> str | None:
    """Path of ``filename`` in a local folder or a Hub repo (downloaded into the HF cache), or None if absent."""
    return load_file_path(model_name_or_path, filename, subfolder=subfolder, **hub_kwargs)


def hub_kwargs_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The Hub arguments among the keyword arguments sentence-transformers passes to ``Module.load``."""
    return {k: kwargs[k] for k in ("token", "cache_folder", "revision", "local_files_only") if k in kwargs}


def module_folder(model_name_or_path: str, subfolder: str = "") -> str:
    return os.path.join(model_name_or_path, subfolder) if subfolder else model_name_or_path


def check_local_module_folder(model_name_or_path: str, subfolder: str, what: str) -> None:
    """:func:`check_no_interrupted_save` on a module's folder and, for a module in a sub-folder, the model root."""
    check_no_interrupted_save(module_folder(model_name_or_path, subfolder), what)
    if subfolder:
        check_no_interrupted_save(model_name_or_path, what)


def require_file(model_name_or_path: str, filename: str, owner: str, subfolder: str = "", **hub_kwargs: Any) -> str:
    """:func:`find_file`, or a FileNotFoundError naming the missing file and the module that needs it."""
    path = find_file(model_name_or_path, filename, subfolder=subfolder, **hub_kwargs)
    if path is None:
        raise FileNotFoundError(
            f"{owner}: {filename} is missing from {module_folder(model_name_or_path, subfolder)!r}. The folder is "
            "not a complete save of this module: save the model again (or re-download it)."
        )
    return path


class ConfigAndWeights:
    """Mixin: ``save``/``load`` for a sentence-transformers module described by its config plus its state_dict."""

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        save_json(self.get_config_dict(), os.path.join(output_path, self.config_file_name))
        save_tensors(self.state_dict(), os.path.join(output_path, "model.safetensors"))
        save_code(self, output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any):
        hub_kwargs = hub_kwargs_of(kwargs)
        check_local_module_folder(model_name_or_path, subfolder, cls.__name__)
        config_path = require_file(model_name_or_path, cls.config_file_name, cls.__name__, subfolder, **hub_kwargs)
        model = cls(**load_config_file(config_path))
        path = require_file(model_name_or_path, "model.safetensors", cls.__name__, subfolder, **hub_kwargs)
        state_dict = load_tensors(path)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state_dict.items()}
        if found != expected:
            diff = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
            shown = [(k, found.get(k), expected.get(k)) for k in diff[:5]]
            raise ValueError(
                f"{path} does not match {config_path}: tensors {shown} "
                "(name, shape in the file, shape the config implies). The weights and the config come from different "
                "saves: save the model again."
            )
        model.load_state_dict(state_dict, strict=True)
        return model
