"""Identities of models and texts: :func:`model_fingerprint` (sha256 of everything that decides a model's
embeddings) and :func:`text_hashes` (a 128-bit hash per text). The teacher cache keys on both; an index records the
fingerprint of the models that built it; an export records the one of its source."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of everything that decides a model's embeddings (a fraction of a second for MiniLM).

    The weights (names, shapes, values) and, for a SentenceTransformer, the whole pipeline: every module's class and
    config (pooling mode, normalisation, ``max_seq_length``, ...), its tokenizer's vocabulary, the prompts and the
    default prompt, and ``truncate_dim``. Two teachers that differ anywhere there never share cached embeddings.
    """
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    if isinstance(model, SentenceTransformer):
        h.update(json.dumps(_pipeline_spec(model), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _pipeline_spec(model: SentenceTransformer) -> dict:
    modules = []
    for module in model:
        config = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        tokenizer = getattr(module, "tokenizer", None)
        vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else None
        modules.append(
            {
                "type": f"{type(module).__module__}.{type(module).__qualname__}",
                "config": config,
                "max_seq_length": getattr(module, "max_seq_length", None),
                "tokenizer": hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest() if vocab else None,
                "do_lower_case": getattr(module, "do_lower_case", None),
            }
        )
    return {
        "modules": modules,
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "truncate_dim": model.truncate_dim,
    }


def text_hashes(texts: list[str]) -> np.ndarray:
    """(N, 2) int64: a 128-bit blake2b hash of every text."""
    digest = b"".join(hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts)
    return np.frombuffer(digest, dtype=np.int64).reshape(-1, 2).copy()
