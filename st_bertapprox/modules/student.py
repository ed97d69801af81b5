"""The student: `VocabSetEncoder` (text -> set of vocabulary entries -> frozen teacher embeddings) and
`DeepSetsPooling` (per-entry MLP phi -> masked multi-head attention pooling -> output MLP rho).

DeepSets: Zaheer et al. (2017), "Deep Sets"; attention pooling with learned queries: Lee et al. (2019), "Set
Transformer" (PMA). Everything is masked, so padding and the order of entries never change the output, and an empty
set (all padding) gives a zero vector, never NaN.

Folding: phi and the attention logits see one entry at a time, so ``fold_student`` precomputes them for every
vocabulary entry; the folded model's online cost is a table lookup, a softmax-weighted sum and rho.

The contextual student (``context_layers > 0``) lets the entries of a text attend to each other between phi and the
pooling: narrow pre-norm self-attention blocks over the set, without positions (entries carry local order in their
n-grams), so the output stays permutation-invariant. phi still sees one entry at a time and folds away, and so do the
first block's queries, keys and values (a LayerNorm and a projection of one entry); since the pooling logits are
linear in the entry vector, the folded logits plus ``W_attn`` times the blocks' change are exactly the logits of the
contextual vectors. Online, a folded contextual student adds one narrow attention and its output projection per entry.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import torch
import torch.nn.functional as F
from sentence_transformers.sentence_transformer.modules import InputModule, Module
from torch import Tensor, nn

from .base import ConfigAndWeights
from .checks import check_local_module_folder, check_max_seq_length, find_file, hub_kwargs_of, warn_unknown_kwargs
from .io import (
    MODULES_FILE,
    load_config_file,
    load_json,
    load_tensors,
    save_code,
    save_json,
    save_tensors,
    tensor_shapes,
)
from .vocab import NGramVocab, check_texts


class VocabSetEncoder(InputModule):
    """Input module: tokenizes text into vocabulary entries and looks up their frozen teacher embeddings.

    ``preprocess`` gives padded ``input_ids`` (entry ids) and ``attention_mask``; ``forward`` writes
    ``token_embeddings`` (B, T, C) from the frozen ``(V, C)`` table. A folded student stores phi(x) and the attention
    logits in that table instead (``folded_heads`` > 0).

    Args:
        vocab: An :class:`NGramVocab` or a path to ``vocab.json``.
        embeddings: ``(V, C)`` table aligned with the vocabulary's entry ids.
        max_seq_length: At most this many entries per text are kept (the first ones).
        folded_heads: Number of attention-logit columns after ``phi(x)`` in each row (0 for raw teacher embeddings).
        folded_context: Number of columns after those: a folded contextual student's first-block queries, keys and
            values (``3 * context_dim``; 0 otherwise).
        adapters: Saved ``adapter_u`` / ``adapter_v`` tensors for the adapter (shapes checked against
            ``adapter_rank`` and the table); None keeps the fresh initialisation.
        storage_dtype: ``"float16"`` (half the size on disk) or ``"float32"``. The table is rounded to this precision
            on construction, so a saved and reloaded model is bit-identical to the one in memory.
        adapter_rank: If > 0, a trainable low-rank correction ``U[e] @ V`` (``U``: (V, r), zero-initialised;
            ``V``: (r, C)) is added to every entry's frozen embedding; it is per-entry, so it folds away. The default
            0 is a vocabulary as built, loaded or folded; ``StudentConfig.adapter_rank`` (32) is the rank
            ``build_student`` gives the encoder it trains (``tests/test_defaults.py`` pins both).

    Example::

        encoder = VocabSetEncoder.load("path/to/vocab_dir")  # written by `st-bertapprox build-vocab`
        pooling = DeepSetsPooling(encoder.get_embedding_dimension())
        student = SentenceTransformer(modules=[encoder, pooling, Normalize()])
    """

    config_keys: list[str] = [
        "max_seq_length",
        "folded_heads",
        "folded_context",
        "storage_dtype",
        "adapter_rank",
        "vocab_fingerprint",
    ]
    config_file_name: str = "vocab_set_encoder_config.json"
    vocab_file_name: str = "vocab.json"

    def __init__(
        self,
        vocab: NGramVocab | str,
        embeddings: Tensor,
        max_seq_length: int = 256,
        folded_heads: int = 0,
        storage_dtype: str = "float16",
        adapter_rank: int = 0,
        adapters: dict[str, Tensor] | None = None,
        folded_context: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        warn_unknown_kwargs("VocabSetEncoder", kwargs)
        if storage_dtype not in ("float16", "float32"):
            raise ValueError(f"storage_dtype must be 'float16' or 'float32', got {storage_dtype!r}")
        check_max_seq_length(max_seq_length, "VocabSetEncoder")
        for name, value in (
            ("folded_heads", folded_heads),
            ("adapter_rank", adapter_rank),
            ("folded_context", folded_context),
        ):
            if type(value) is not int or value < 0:
                raise ValueError(f"VocabSetEncoder: {name} must be an integer >= 0, got {value!r}.")
        self.vocab = vocab if isinstance(vocab, NGramVocab) else NGramVocab.load(vocab)
        if embeddings.dim() != 2 or embeddings.size(0) != len(self.vocab):
            raise ValueError(
                f"The embedding table has shape {tuple(embeddings.shape)} but the vocabulary has {len(self.vocab)} "
                "entries: table and vocabulary do not belong together (rebuild with `st-bertapprox build-vocab`)."
            )
        width = embeddings.size(1) - folded_context
        if folded_context and not folded_heads:
            raise ValueError(f"folded_context={folded_context} needs folded_heads > 0 (a folded table).")
        if folded_heads and (width <= folded_heads or (width - folded_heads) % folded_heads):
            raise ValueError(
                f"A folded table has C + H (+ context) columns ([phi(x) | H logits | q k v], C divisible by H), but "
                f"this one has {embeddings.size(1)} with folded_heads={folded_heads} and folded_context="
                f"{folded_context}: the table and the config come from different saves."
            )
        stored = embeddings.detach().to(getattr(torch, storage_dtype))
        self.embeddings = nn.Embedding.from_pretrained(stored.float(), freeze=True)  # lookups run in fp32
        self.max_seq_length = max_seq_length
        self.folded_heads, self.folded_context = folded_heads, folded_context
        self.storage_dtype = storage_dtype
        self.adapter_rank = adapter_rank
        if adapters and not adapter_rank:
            raise ValueError(f"Got adapter tensors {sorted(adapters)} but adapter_rank=0: they would be ignored.")
        if adapter_rank:
            C = embeddings.size(1)
            self.adapter_u = nn.Parameter(torch.zeros(len(self.vocab), adapter_rank))
            self.adapter_v = nn.Parameter(torch.randn(adapter_rank, C) / C**0.5)
            if adapters is not None:
                shapes = {k: tuple(v.shape) for k, v in adapters.items()}
                expected = {"adapter_u": (len(self.vocab), adapter_rank), "adapter_v": (adapter_rank, C)}
                if shapes != expected:
                    raise ValueError(
                        f"The adapter tensors have shapes {shapes}, but adapter_rank={adapter_rank} and a "
                        f"({len(self.vocab)}, {C}) table need {expected}: they come from different saves."
                    )
                self.adapter_u.data.copy_(adapters["adapter_u"])
                self.adapter_v.data.copy_(adapters["adapter_v"])
        self.vocab_fingerprint = self.vocab.fingerprint()

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """Padded entry ids ``(B, T)`` and mask of a batch of texts; at most ``max_seq_length`` entries per text.

        Raises:
            TypeError: an element is not a string (position given within this batch: ``SentenceTransformer.encode``
                sorts texts by length before batching).
        """
        if not inputs:
            return {}
        inputs = check_texts(inputs, "VocabSetEncoder (within this batch; encode sorts texts by length)")
        if prompt:
            inputs = self._prepend_prompt(inputs, prompt)
        max_len = kwargs.get("max_length") or self.max_seq_length
        rows = [self.vocab.tokenize(text, max_entries=max_len) for text in inputs]  # cost bounded by max_len
        T = max(1, max(map(len, rows)))
        input_ids = torch.tensor([row + [0] * (T - len(row)) for row in rows], dtype=torch.long)  # (B, T)
        return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long()}

    def forward(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        """Look up the entry ids' embeddings (plus the adapter) into ``token_embeddings`` (B, T, C)."""
        ids = features["input_ids"]  # (B, T)
        x = self.embeddings(ids)  # (B, T, C)
        if self.adapter_rank:
            x = x + nn.functional.embedding(ids, self.adapter_u) @ self.adapter_v  # (B, T, r) @ (r, C)
        features["token_embeddings"] = x
        return features

    def table(self) -> Tensor:
        """The (V, C) entry embeddings the model actually uses (frozen table plus the adapter, if any)."""
        if self.adapter_rank:
            return self.embeddings.weight + self.adapter_u @ self.adapter_v
        return self.embeddings.weight

    def get_embedding_dimension(self) -> int:
        """The width C of an entry embedding (without a folded table's logit and context columns)."""
        return self.embeddings.embedding_dim - self.folded_heads - self.folded_context

    @property
    def tokenizer(self) -> NGramVocab:
        """The :class:`NGramVocab` that splits texts into entries."""
        return self.vocab

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the vocabulary, the table (in ``storage_dtype``) with any adapter, the config and the module code."""
        os.makedirs(output_path, exist_ok=True)
        self.vocab.save(os.path.join(output_path, self.vocab_file_name))
        adapters = {"adapter_u": self.adapter_u, "adapter_v": self.adapter_v} if self.adapter_rank else {}
        save_tensors(
            {"embeddings": self.embeddings.weight.to(getattr(torch, self.storage_dtype)), **adapters},
            os.path.join(output_path, "model.safetensors"),
            metadata={"vocab_fingerprint": self.vocab_fingerprint},
        )
        save_json(self.get_config_dict(), os.path.join(output_path, self.config_file_name))
        save_code(self, output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> VocabSetEncoder:
        """Load a saved encoder, checked: no interrupted save, the table's checksums and finiteness, and the
        vocabulary against both copies of its fingerprint (config and table metadata) before its trie is built."""
        hub_kwargs = hub_kwargs_of(kwargs)
        check_local_module_folder(model_name_or_path, subfolder, cls.__name__)
        paths = {
            name: find_file(model_name_or_path, name, subfolder=subfolder, **hub_kwargs)
            for name in (cls.vocab_file_name, "model.safetensors", cls.config_file_name)
        }
        missing = [name for name, path in paths.items() if path is None]
        if missing:
            raise FileNotFoundError(
                f"{model_name_or_path!r} is missing {missing}: not a VocabSetEncoder folder (build one with "
                "`st-bertapprox build-vocab`, or save the model again)."
            )
        config = load_config_file(paths[cls.config_file_name])
        table, metadata = load_tensors(paths["model.safetensors"], with_metadata=True)
        expected = {config.pop("vocab_fingerprint", None), metadata.get("vocab_fingerprint")} - {None}
        if len(expected) > 1:
            raise ValueError(
                f"{paths[cls.config_file_name]} and {paths['model.safetensors']} record different vocabulary "
                "fingerprints: the config and the table come from different saves; save the model again."
            )
        vocab = NGramVocab.load(paths[cls.vocab_file_name], expected_fingerprint=next(iter(expected), None))
        if "embeddings" not in table:
            raise ValueError(f"{paths['model.safetensors']} has no 'embeddings' tensor: not a VocabSetEncoder table.")
        return cls(vocab, table.pop("embeddings"), **config, adapters=table or None)


class SetBlock(nn.Module):
    """A narrow pre-norm self-attention block over a set of entries: ``v + out(attention(qkv(norm(v))))``, masked,
    multi-head, of width ``dim``, without positions; ``out`` starts at zero, so the block starts as the identity.
    No MLP: ``qkv(norm(v))`` of the first block is a function of one entry and folds into the table.

    ``positions > 0`` (an ablation) adds learned offsets to the queries and keys of the first ``positions`` entries
    in text order (later entries share the last offset); they start at zero and keep the fold exact, but the block
    is then no longer permutation-invariant."""

    def __init__(self, width: int, dim: int, heads: int, dropout: float, positions: int = 0) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * dim)
        self.out = nn.Linear(dim, width)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.positions = nn.Parameter(torch.zeros(positions, 2 * dim)) if positions else None  # query | key offsets

    def entry_qkv(self, v: Tensor) -> Tensor:
        """Queries, keys and values ``(..., 3 * dim)`` of entries, each from its own vector (what folding stores)."""
        return self.qkv(self.norm(v))

    def forward(self, v: Tensor, mask: Tensor, qkv: Tensor | None = None) -> Tensor:
        """Update entry vectors (B, T, width) under ``mask`` (B, T), True for real entries; ``qkv`` is a folded
        table's precomputed :meth:`entry_qkv` of ``v``, or None to compute it."""
        B, T, _ = v.size()
        qkv = self.entry_qkv(v) if qkv is None else qkv
        if self.positions is not None:
            at = torch.arange(T, device=v.device).clamp(max=len(self.positions) - 1)
            qkv = qkv + F.pad(self.positions[at], (0, qkv.size(-1) // 3))  # (T, 3 * dim): no offset on values
        q, k, val = qkv.view(B, T, 3, self.heads, -1).transpose(1, 3).unbind(2)  # (B, heads, T, dim / heads)
        # an additive mask (finfo.min, not -inf) keeps an all-padding set finite; padded rows are never pooled
        bias = (~mask).to(v.dtype)[:, None, None, :] * torch.finfo(v.dtype).min  # (B, 1, 1, T)
        drop = self.dropout if self.training else 0.0
        h = F.scaled_dot_product_attention(q, k, val, attn_mask=bias, dropout_p=drop)  # (B, heads, T, dim / heads)
        return v + self.out(h.transpose(1, 2).reshape(B, T, -1))


class DeepSetsPooling(ConfigAndWeights, Module):
    """phi per entry -> masked multi-head attention pooling -> rho, into ``sentence_embedding``.

    ``phi(x) = x + MLP(x)`` on every entry embedding; head ``h`` scores an entry with a learned query,
    ``a_h = q_h . phi(x)`` (one ``Linear(C, H)``), takes a masked softmax over the set and pools its own ``C / H``
    slice of ``phi(x)``; ``rho`` maps the pooled vector (residually when the widths match) to the output.

    Args:
        embedding_dimension: Width C of the entry embeddings.
        phi_hidden_dim: Hidden width of phi's MLP (0: phi is the identity).
        num_heads: Attention heads H (C must be divisible by H).
        rho_hidden_dim: Hidden width of rho.
        output_dim: Width of the sentence embedding (default C).
        pooling: ``"attention"`` or ``"mean"`` (masked mean of phi(x); for ablations).
        dropout: Dropout inside phi and rho (training only).
        folded: Expect ``token_embeddings`` that already hold ``[phi(x) | logits]`` (see :func:`fold_student`).
        context_layers: :class:`SetBlock` layers between phi and the pooling (0: the entries never see each other).
        context_dim: Width of the blocks' attention.
        context_heads: Attention heads of the blocks (``context_dim`` must be divisible by it).
        context_positions: Ablation: learned entry-position offsets in the blocks (0: order-free, the default).

    ``forward`` also writes ``entry_embeddings`` (B, T, C): every entry's vector as pooled (after the context
    blocks), what entry-level distillation (:class:`st_bertapprox.distill.losses.EntryDistillLoss`) trains.

    The defaults are ``StudentConfig``'s (this file travels with a saved model and cannot import it, so
    ``tests/test_defaults.py`` pins them); a saved model's ``deepsets_config.json`` records every value.
    """

    config_keys: list[str] = [
        "embedding_dimension",
        "phi_hidden_dim",
        "num_heads",
        "rho_hidden_dim",
        "output_dim",
        "pooling",
        "dropout",
        "folded",
        "context_layers",
        "context_dim",
        "context_heads",
        "context_positions",
    ]
    config_file_name: str = "deepsets_config.json"

    def __init__(
        self,
        embedding_dimension: int,
        phi_hidden_dim: int = 1024,
        num_heads: int = 4,
        rho_hidden_dim: int = 512,
        output_dim: int | None = None,
        pooling: str = "attention",
        dropout: float = 0.1,
        folded: bool = False,
        context_layers: int = 0,
        context_dim: int = 128,
        context_heads: int = 4,
        context_positions: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        warn_unknown_kwargs("DeepSetsPooling", kwargs)
        for name, value, minimum in (
            ("context_layers", context_layers, 0),
            ("context_dim", context_dim, 1),
            ("context_heads", context_heads, 1),
            ("context_positions", context_positions, 0),
        ):
            if type(value) is not int or value < minimum:
                raise ValueError(f"DeepSetsPooling: {name} must be an integer >= {minimum}, got {value!r}.")
        if context_layers and context_dim % context_heads:
            raise ValueError(f"context_dim ({context_dim}) must be divisible by context_heads ({context_heads})")
        if pooling not in ("attention", "mean"):
            raise ValueError(f"pooling must be 'attention' or 'mean', got {pooling!r}")
        num_heads = num_heads if pooling == "attention" else 1
        if embedding_dimension % num_heads:
            raise ValueError(
                f"embedding_dimension ({embedding_dimension}) must be divisible by num_heads ({num_heads})"
            )
        self.embedding_dimension, self.phi_hidden_dim, self.num_heads = embedding_dimension, phi_hidden_dim, num_heads
        self.rho_hidden_dim, self.output_dim = rho_hidden_dim, output_dim or embedding_dimension
        self.pooling, self.dropout, self.folded = pooling, dropout, folded
        self.context_layers, self.context_dim, self.context_heads = context_layers, context_dim, context_heads
        self.context_positions = context_positions
        C = embedding_dimension
        if not folded and phi_hidden_dim:
            self.phi = nn.Sequential(
                nn.Linear(C, phi_hidden_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(phi_hidden_dim, C)
            )
        if pooling == "attention" and (not folded or context_layers):  # folded: for the context's logit change
            self.attn = nn.Linear(C, num_heads)  # rows are the learned queries q_h
        if context_layers:
            self.context = nn.ModuleList(
                SetBlock(C, context_dim, context_heads, dropout, context_positions) for _ in range(context_layers)
            )
        self.rho = nn.Sequential(
            nn.LayerNorm(C),
            nn.Linear(C, rho_hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(rho_hidden_dim, self.output_dim),
        )
        # residual branches start at zero: an untrained student is the mean of its entries' teacher embeddings
        for last in ([self.phi[-1]] if not folded and phi_hidden_dim else []) + (
            [self.rho[-1]] if self.output_dim == C else []
        ):
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def entry_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """phi(x) (..., C) and attention logits (..., H) of entries, each computed from its own embedding."""
        v = x + self.phi(x) if self.phi_hidden_dim else x
        logits = self.attn(v) if self.pooling == "attention" else v.new_zeros(*v.shape[:-1], 1)
        return v, logits

    def input_width(self) -> int:
        """Width of the ``token_embeddings`` this module takes: C, or C + H (+ 3 context_dim) when folded."""
        if not self.folded:
            return self.embedding_dimension
        return self.embedding_dimension + self.num_heads + (3 * self.context_dim if self.context_layers else 0)

    def forward(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        """Pool the entries' ``token_embeddings`` into ``sentence_embedding`` (and write ``entry_embeddings``)."""
        x, mask = features["token_embeddings"], features["attention_mask"].bool()  # (B, T, C'), (B, T)
        B, T, width = x.size()
        C, H = self.embedding_dimension, self.num_heads
        if width != self.input_width():  # else a reshape error deep inside, for a mixed-up encoder
            raise ValueError(_mismatch_message(self, width))
        qkv = None
        if self.folded:
            v, logits = x[..., :C], x[..., C : C + H]  # (B, T, C), (B, T, H)
            qkv = x[..., C + H :] if self.context_layers else None  # (B, T, 3 * context_dim): the first block's
        elif "input_ids" in features:
            # phi sees one entry at a time, so run it once per distinct entry of the batch (stop words repeat a lot)
            ids = features["input_ids"].flatten()  # (B*T,)
            uniq, inverse = torch.unique(ids, return_inverse=True)  # (U,), (B*T,)
            first = torch.full_like(uniq, ids.numel()).scatter_reduce(
                0, inverse, torch.arange(ids.numel(), device=ids.device), "amin"
            )
            v_u, logits_u = self.entry_features(x.reshape(B * T, -1)[first])  # (U, C), (U, H)
            v, logits = v_u[inverse].view(B, T, C), logits_u[inverse].view(B, T, -1)
        else:
            v, logits = self.entry_features(x)
        if self.context_layers:
            v0 = v
            for i, block in enumerate(self.context):
                v = block(v, mask, qkv if i == 0 else None)
            if self.pooling == "attention":  # logits are linear in v: add the change the context made
                logits = logits + (v - v0) @ self.attn.weight.T
        features["entry_embeddings"] = v
        # finfo.min instead of -inf keeps an all-padding row finite; multiplying by the mask then zeroes it
        logits = logits.masked_fill(~mask[..., None], torch.finfo(logits.dtype).min)
        w = torch.softmax(logits, dim=1) * mask[..., None]  # (B, T, H), sums to 1 over the set
        pooled = (w.unsqueeze(-1) * v.reshape(B, T, H, C // H)).sum(1).reshape(B, C)  # (B, H, C/H) -> (B, C)
        out = self.rho(pooled)
        if self.output_dim == C:
            out = out + pooled
        features["sentence_embedding"] = out * mask.any(1, keepdim=True)  # empty set -> zero vector
        return features

    def get_embedding_dimension(self) -> int:
        """The width of the sentence embedding, ``output_dim``."""
        return self.output_dim

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> DeepSetsPooling:
        """Load config + weights, then check them against the model's encoder (see :meth:`check_encoder`)."""
        model = super().load(model_name_or_path, subfolder=subfolder, **kwargs)
        model.check_encoder(model_name_or_path, subfolder, **hub_kwargs_of(kwargs))
        return model

    def check_encoder(self, model_name_or_path: str, subfolder: str, **hub_kwargs: Any) -> None:
        """Refuse a folder whose VocabSetEncoder does not fit this module (folded one with an unfolded one, or
        another width), at load time rather than at the first encode.

        sentence-transformers loads every module on its own, so this reads the sibling encoder's entry in
        ``modules.json``, its config (``folded_heads``) and its table's shape from the safetensors header (no data
        read). A module loaded outside a saved SentenceTransformer has no sibling to check; ``forward`` then still
        refuses a wrong width with the same message.

        Raises:
            ValueError: the encoder's table width or folding does not match this module.
        """
        modules_path = find_file(model_name_or_path, MODULES_FILE, **hub_kwargs)
        modules = load_json(modules_path) if modules_path else None
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            return
        paths = [m.get("path") for m in modules]
        mine = paths.index(subfolder) if subfolder in paths else len(modules)
        encoder = next(
            (m for m in reversed(modules[:mine]) if str(m.get("type", "")).endswith(".VocabSetEncoder")), None
        )
        if encoder is None or not isinstance(encoder.get("path"), str):
            return
        where = dict(subfolder=encoder["path"], **hub_kwargs)
        config_path = find_file(model_name_or_path, VocabSetEncoder.config_file_name, **where)
        table_path = find_file(model_name_or_path, "model.safetensors", **where)
        if config_path is None or table_path is None:
            return  # the encoder's own load reports its missing files
        folded_heads = load_config_file(config_path).get("folded_heads", 0)
        shape = tensor_shapes(table_path).get("embeddings")
        width = shape[1] if shape and len(shape) == 2 else None
        if bool(folded_heads) != self.folded or (self.folded and folded_heads != self.num_heads):
            raise ValueError(_mismatch_message(self, width, folded_heads, model_name_or_path))
        if width is not None and width != self.input_width():
            raise ValueError(_mismatch_message(self, width, folded_heads, model_name_or_path))


def _mismatch_message(
    pooling: DeepSetsPooling, width: int | None, folded_heads: int | None = None, where: str | None = None
) -> str:
    C, H = pooling.embedding_dimension, pooling.num_heads
    kind = f"a folded DeepSetsPooling (C={C}, H={H}) takes [phi(x) | logits] rows of width {pooling.input_width()}"
    if not pooling.folded:
        kind = f"an unfolded DeepSetsPooling (C={C}) takes entry embeddings of width {C}"
    enc = f"the encoder's rows have width {width}"
    if folded_heads is not None:
        enc += f" ({'folded, ' + str(folded_heads) + ' heads' if folded_heads else 'unfolded'})"
    return (
        f"{kind}, but {enc}{' in ' + repr(where) if where else ''}: encoder and pooling come from different models "
        "(a folded encoder needs the folded pooling saved with it, see fold_student). Save the model again from one "
        "SentenceTransformer."
    )


@torch.no_grad()
def fold_student(model: Any, storage_dtype: str = "float32", chunk_size: int = 16384) -> Any:
    """Fold a ``SentenceTransformer([VocabSetEncoder, DeepSetsPooling, ...])``: precompute ``[phi(x) | logits]`` for
    every vocabulary entry, so online work is a lookup, a weighted sum and rho. Returns a new SentenceTransformer
    whose embeddings equal the original's (eval mode) up to float32 rounding; ``storage_dtype="float16"`` halves the
    table at the cost of ~1e-4 deviations."""
    from sentence_transformers import SentenceTransformer

    encoder, pooling, *rest = list(model)
    # by name, not isinstance: a model loaded with trust_remote_code holds copies of these classes
    names = (type(encoder).__name__, type(pooling).__name__)
    if names != ("VocabSetEncoder", "DeepSetsPooling") or pooling.folded:
        raise ValueError(
            "fold_student expects an unfolded SentenceTransformer([VocabSetEncoder, DeepSetsPooling, ...])."
        )
    pooling = copy.deepcopy(pooling).eval()
    table = encoder.table()

    def fold(x: Tensor) -> Tensor:  # [phi(x) | logits (| the first context block's q k v)]
        v, logits = pooling.entry_features(x)
        return torch.cat([v, logits] + ([pooling.context[0].entry_qkv(v)] if pooling.context_layers else []), -1)

    folded_encoder = type(encoder)(
        encoder.vocab,
        torch.cat([fold(table[i : i + chunk_size]) for i in range(0, len(table), chunk_size)]),
        encoder.max_seq_length,
        folded_heads=pooling.num_heads,
        folded_context=3 * pooling.context_dim if pooling.context_layers else 0,
        storage_dtype=storage_dtype,
    )
    folded_pooling = type(pooling)(**{**pooling.get_config_dict(), "folded": True})
    state = pooling.state_dict()  # rho, and the context blocks + attention queries of a contextual student
    folded_pooling.load_state_dict({k: state[k] for k in folded_pooling.state_dict()})
    return SentenceTransformer(
        modules=[folded_encoder, folded_pooling, *copy.deepcopy(rest)], device=str(model.device)
    )
