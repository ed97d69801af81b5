"""Checks and file lookup for the modules' ``load``: a model folder's health (:func:`check_model_folder`,
:func:`check_no_interrupted_save`), checkpoint files of a local folder or a Hub repo (:func:`find_file`,
:func:`require_file`), and the keyword arguments sentence-transformers passes to ``Module.load``. Standard library,
sentence-transformers and ``.io`` only: it travels with a saved model as remote code."""

from __future__ import annotations

import logging
import os
from typing import Any

from sentence_transformers.util import load_file_path

from .io import MODULES_FILE, ST_CONFIG_FILE, interrupted_writes, load_json

logger = logging.getLogger(__name__)

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


def find_file(model_name_or_path: str, filename: str, subfolder: str = "", **hub_kwargs: Any) -> str | None:
    """Path of ``filename`` in a local folder or a Hub repo (downloaded into the HF cache), or None if absent."""
    return load_file_path(model_name_or_path, filename, subfolder=subfolder, **hub_kwargs)


def hub_kwargs_of(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The Hub arguments among the keyword arguments sentence-transformers passes to ``Module.load``."""
    return {k: kwargs[k] for k in ("token", "cache_folder", "revision", "local_files_only") if k in kwargs}


def module_folder(model_name_or_path: str, subfolder: str = "") -> str:
    """``model_name_or_path/subfolder``, or ``model_name_or_path`` itself without a subfolder."""
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
