"""Saving models so that they load anywhere.

* :func:`save_with_code`: ``model.save``, which for our modules already writes their source files into the folder
  root and one-dot ``file.Class`` types into ``modules.json`` (see ``st_bertapprox.modules``), so
  ``SentenceTransformer(folder_or_repo, trust_remote_code=True)`` loads it on a machine without st-bertapprox. The
  copied files import only torch, safetensors, transformers, sentence-transformers and the standard library.
* :func:`export_builtin`: rewrite a model into built-in sentence-transformers modules only (scratch BERT ->
  ``Transformer`` on the same HF weights, ``MLPMeanPooling`` -> ``Dense`` layers + ``Pooling("mean")``), which loads
  with no ``trust_remote_code`` at all.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.modules import Dense, Pooling

BUILTIN_PREFIX = "sentence_transformers."


def save_with_code(model: SentenceTransformer, path: str, **save_kwargs) -> None:
    """``model.save(path)``: our modules copy their own code into the folder (``modules.files.save_code``).

    Also removes the ``.py`` copies that sentence-transformers itself writes into module sub-folders when re-saving a
    model loaded with ``trust_remote_code=True`` (it loads code only from the root, so they are never read).
    """
    model.save(path, **save_kwargs)
    modules = json.loads(Path(path, "modules.json").read_text(encoding="utf-8"))
    for entry in modules:
        for stale in Path(path, entry["path"]).glob("*.py") if entry["path"] else ():
            stale.unlink()


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
