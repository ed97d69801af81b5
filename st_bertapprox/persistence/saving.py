"""Saving and pushing every model kind we make.

* :func:`save_pretrained`: a self-contained folder (custom module code copied in, :func:`save_with_code`) or, with
  ``builtin=True``, built-in modules only (:func:`export_builtin`); plus the model card (``persistence.cards``) and
  ``card.json`` (the card's inputs, so a later push re-renders the same card).
* :func:`push_to_hub`: the same folder, uploaded with ``huggingface_hub`` (``create_repo`` + ``upload_folder``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import HfApi
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Transformer
from sentence_transformers.sentence_transformer.modules import Dense, Pooling

from st_bertapprox.modules.io import atomic_dir, atomic_path, save_json
from st_bertapprox.persistence.cards import CardInfo, write_card

if TYPE_CHECKING:
    from st_bertapprox.modules.pooling import MLPMeanPooling


def save_pretrained(
    model: SentenceTransformer,
    path: str,
    info: CardInfo | None = None,
    repo_id: str | None = None,
    builtin: bool = False,
) -> None:
    """Save a loadable-anywhere folder (+ model card when ``info`` is given), atomically: the folder appears (or
    replaces an earlier one) only once everything is written."""
    with atomic_dir(path) as tmp:
        if builtin:
            export_builtin(model, tmp)
        else:
            save_with_code(model, tmp)
        if info is not None:
            write_card(model, tmp, info, repo_id)


def push_to_hub(
    model: SentenceTransformer,
    repo_id: str,
    info: CardInfo | None = None,
    builtin: bool = False,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload st-bertapprox model",
) -> str:
    """Save like :func:`save_pretrained` into a temporary folder and upload it; returns the commit URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, info, repo_id=repo_id, builtin=builtin)
        commit = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return str(commit)


BUILTIN_PREFIX = "sentence_transformers."


def save_with_code(model: SentenceTransformer, path: str, **save_kwargs: Any) -> None:
    """``model.save(path)``: our modules copy their own code into the folder (``modules.io.save_code``).

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
                    "st_bertapprox.persistence.saving.save_with_code (loads with trust_remote_code=True)."
                )
        builtin = SentenceTransformer(modules=modules, device=str(model.device))
        builtin.save(path)
    return SentenceTransformer(path, device=str(model.device))


def _mlp_to_dense(module: MLPMeanPooling) -> list[Dense]:
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


def save_results(output_dir: str, results: dict, markdown: str | None = None) -> dict:
    """Write ``output_dir/results.json`` (atomically) and, when ``markdown`` is given, ``output_dir/results.md``
    (that text and a newline); returns ``results``."""
    save_json(results, os.path.join(output_dir, "results.json"))
    if markdown is not None:
        with atomic_path(os.path.join(output_dir, "results.md")) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(markdown + "\n")
    return results
