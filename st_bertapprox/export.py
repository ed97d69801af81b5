"""Saving models so that they load anywhere.

* :func:`save_with_code`: ``model.save`` plus the source files of every custom module copied into the folder root,
  with ``modules.json`` types rewritten to ``<file>.<Class>``. ``SentenceTransformer(folder_or_repo,
  trust_remote_code=True)`` then loads it on a machine without st-bertapprox (transformers' dynamic modules fetch
  the files, relative imports included). The copied files import only torch, safetensors, transformers,
  sentence-transformers and the standard library.
* :func:`export_builtin`: rewrite a model into built-in sentence-transformers modules only (scratch BERT ->
  ``Transformer`` on the same HF weights, ``MLPMeanPooling`` -> ``Dense`` layers + ``Pooling("mean")``), which loads
  with no ``trust_remote_code`` at all.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.modules import Dense, Pooling
from transformers.dynamic_module_utils import get_relative_import_files

from .modules.files import save_json

BUILTIN_PREFIX = "sentence_transformers."


def _source_files(cls: type) -> list[Path]:
    """The file defining ``cls`` and every file it imports relatively (transitively)."""
    main = Path(inspect.getsourcefile(cls))
    return [main, *(Path(p) for p in get_relative_import_files(str(main)))]


def save_with_code(model: SentenceTransformer, path: str, **save_kwargs) -> None:
    """``model.save(path)``, then make the folder self-contained for ``trust_remote_code=True`` loading."""
    model.save(path, **save_kwargs)
    modules_json = os.path.join(path, "modules.json")
    with open(modules_json, encoding="utf-8") as f:
        modules_config = json.load(f)
    for entry, module in zip(modules_config, model):
        cls = type(module)
        if entry["type"].startswith(BUILTIN_PREFIX):
            continue
        for file in _source_files(cls):
            target = os.path.join(path, file.name)
            if not os.path.exists(target) or not os.path.samefile(file, target):
                shutil.copyfile(file, target)
        entry["type"] = f"{Path(inspect.getsourcefile(cls)).stem}.{cls.__name__}"
        for stale in Path(path, entry["path"]).glob("*.py") if entry["path"] else ():
            stale.unlink()  # ST copies remote-code files into sub-folders, where nothing reads them
    save_json(modules_config, modules_json)


def export_builtin(model: SentenceTransformer, path: str) -> SentenceTransformer:
    """Save ``model`` rebuilt from built-in modules only; returns the rebuilt model (equal embeddings).

    Raises:
        ValueError: for modules with no built-in equivalent (the student): use :func:`save_with_code`.
    """
    modules = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, module in enumerate(model):
            name = type(module).__name__
            if type(module).__module__.startswith(BUILTIN_PREFIX):
                modules.append(module)
            elif name == "BertTransformer":
                hf_dir = os.path.join(tmp, str(i))
                module.save(hf_dir)  # HF-compatible config.json + model.safetensors + tokenizer
                modules.append(Transformer(hf_dir, max_seq_length=module.max_seq_length))
            elif name == "MLPMeanPooling":
                modules += _mlp_to_dense(module)
                modules.append(Pooling(module.output_dim, "mean"))
            else:
                raise ValueError(
                    f"{name} has no built-in sentence-transformers equivalent; save this model with "
                    "st_bertapprox.export.save_with_code (loads with trust_remote_code=True)."
                )
        builtin = SentenceTransformer(modules=modules, device=str(model.device))
        builtin.save(path)
    return SentenceTransformer(path, device=str(model.device))


def _mlp_to_dense(module) -> list[Dense]:
    """MLPMeanPooling layers -> ST ``Dense`` on ``token_embeddings`` with identical weights and activations."""
    dense = []
    for layer in module.layers:
        d = Dense(
            layer.linear.in_features,
            layer.linear.out_features,
            activation_function=type(layer.act)(),
            module_input_name="token_embeddings",
            use_residual=layer.use_residual,
        )
        with torch.no_grad():
            d.linear.load_state_dict(layer.linear.state_dict())
            if hasattr(layer, "residual"):
                d.residual.load_state_dict(layer.residual.state_dict())
        dense.append(d)
    return dense
