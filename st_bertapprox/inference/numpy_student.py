"""A folded student as plain numpy, for serving: no SentenceTransformer, no torch operators on the hot path.

A folded student (:func:`st_bertapprox.fold_student`) stores ``[phi(x) | attention logits]`` for every vocabulary
entry. Its softmax-weighted sum over a text's entries is a ratio of two sums, so at load time every row becomes
``[exp(l_h) * phi_h(x) | exp(l_h)]`` (``l_h`` the head-h logit, shifted so the largest is 0): one gather over the
padded entry ids of a batch and one sum give every text's pooled vector (the ``[PAD]`` row is zero, so no mask and
no softmax run online). Then rho (LayerNorm -> Linear -> GELU -> Linear, residual) and L2 normalisation, as in the
SentenceTransformer. The embeddings equal the folded SentenceTransformer's up to float32 rounding (tested <= 1e-5).

A folded contextual student (one context block) stores ``[phi(x) | logits | q k v]``; its logits change with the
context, so it runs the block's attention over each text's set, the output projection and a masked softmax in numpy
instead of the ratio of sums.

    student = NumpyStudent.from_pretrained("runs/student/student-folded")
    embeddings = student.encode(["A man is playing a guitar.", "Someone plays music."])  # (2, 384), unit norm
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import erf

from st_bertapprox.modules.checks import check_model_folder
from st_bertapprox.modules.student import DeepSetsPooling, VocabSetEncoder
from st_bertapprox.modules.vocab import NGramVocab, check_texts

MAX_LOGIT_RANGE = 80.0  # exp(-80) is still a normal float32: no text's weights can all underflow to zero


class NumpyStudent:
    """Encode with a folded student in numpy (see the module docstring).

    Args:
        encoder: The folded student's :class:`VocabSetEncoder` (vocabulary + ``[phi(x) | logits]`` table).
        pooling: Its folded :class:`DeepSetsPooling` (rho).
        normalize: L2-normalise the output (the saved model ends in ``Normalize``).
    """

    def __init__(self, encoder: VocabSetEncoder, pooling: DeepSetsPooling, normalize: bool = True) -> None:
        if not (encoder.folded_heads and pooling.folded):
            raise ValueError(
                "NumpyStudent got an unfolded student: fold it first (`st_bertapprox.fold_student`); "
                "`st-bertapprox distill` writes the folded one to `student-folded/`."
            )
        context_layers = getattr(pooling, "context_layers", 0)
        if context_layers > 1:
            raise ValueError(
                f"NumpyStudent runs contextual students of one context block; this one has {context_layers}: encode "
                "it through SentenceTransformer."
            )
        if context_layers and getattr(pooling, "context_positions", 0):
            raise ValueError(
                "NumpyStudent runs order-free contextual students; this one has entry positions (the "
                "context_positions ablation): encode it through SentenceTransformer."
            )
        if context_layers and getattr(encoder, "folded_context", 0) != 3 * pooling.context_dim:
            raise ValueError(
                "This contextual student's table does not hold the context block's queries, keys and values "
                f"(folded_context={getattr(encoder, 'folded_context', None)}, expected {3 * pooling.context_dim}): it "
                "was folded by an older st-bertapprox; fold and save it again."
            )
        table = encoder.embeddings.weight.detach().cpu().numpy()  # (V, C + H): phi(x), then H logits
        if not np.isfinite(table.sum(dtype=np.float64)):  # NaN/inf anywhere makes the sum non-finite (no overflow)
            bad = np.flatnonzero(~np.isfinite(table).all(1))
            raise ValueError(
                f"The folded table has non-finite values (NaN/inf) in {len(bad)} rows (entry ids {bad[:5].tolist()}): "
                "every embedding would be NaN. The model is corrupt: re-fold and re-save it."
            )
        C, H = pooling.embedding_dimension, pooling.num_heads
        if table.shape[1] != pooling.input_width() or encoder.folded_heads != H:
            raise ValueError(
                f"The folded table has {table.shape[1]} columns and {encoder.folded_heads} heads, but the pooling "
                f"expects {pooling.input_width()} and {H}: encoder and pooling come from different saves."
            )
        V = len(table)
        self.vocab, self.dim, self.num_heads = encoder.vocab, C, H
        self.max_seq_length, self.normalize = encoder.max_seq_length, normalize
        self.contextual = bool(context_layers)
        if self.contextual:  # the rows as they are, the context block's output projection and the pooling queries
            block = pooling.context[0]
            self.raw, self.context_heads = table.astype(np.float32), block.heads
            self.w_out = np.ascontiguousarray(block.out.weight.detach().cpu().numpy().T)  # (context_dim, C)
            self.b_out = block.out.bias.detach().cpu().numpy()
            self.w_attn = np.ascontiguousarray(pooling.attn.weight.detach().cpu().numpy().T)  # (C, H)
        else:
            logits = table[:, C:].astype(np.float64)
            logits = np.maximum(logits - logits.max(0), -MAX_LOGIT_RANGE)  # (V, H), largest 0
            weights = np.exp(logits)
            weighted = table[:, :C].reshape(V, H, C // H) * weights[..., None]
            self.table = np.concatenate([weighted.reshape(V, C), weights], 1).astype(np.float32)  # (V, C + H)
            self.table[0] = 0.0  # [PAD]: padding adds nothing to either sum
        # rho = LayerNorm -> Linear -> GELU -> Linear; the LayerNorm's affine part is folded into the first Linear
        rho = {k: v.detach().cpu().double().numpy() for k, v in pooling.rho.state_dict().items()}
        w1 = rho["1.weight"].T  # (C, hidden)
        self.w1 = np.ascontiguousarray(rho["0.weight"][:, None] * w1, dtype=np.float32)
        self.b1 = (rho["0.bias"] @ w1 + rho["1.bias"]).astype(np.float32)
        self.w2 = np.ascontiguousarray(rho["4.weight"].T, dtype=np.float32)  # (hidden, out)
        self.b2 = rho["4.bias"].astype(np.float32)
        self.residual = self.w2.shape[1] == C

    @classmethod
    def from_model(cls, model: Any) -> NumpyStudent:
        """From a folded ``SentenceTransformer([VocabSetEncoder, DeepSetsPooling, (Normalize)])`` in memory."""
        encoder, pooling, *rest = list(model)
        return cls(encoder, pooling, normalize=_ends_in_normalize([type(m).__name__ for m in rest]))

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, **hub_kwargs: Any) -> NumpyStudent:
        """Load a folded student folder (``fold_student`` + ``save``/``save_pretrained``) or Hub repo id, with the
        modules' own loaders (same files, same checks), without running the folder's code."""
        modules = check_model_folder(model_name_or_path, **hub_kwargs)  # clear errors: no modules.json, killed save
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["VocabSetEncoder", "DeepSetsPooling"]:
            raise ValueError(f"{model_name_or_path!r} is not a student (modules {kinds}).")
        encoder = VocabSetEncoder.load(model_name_or_path, subfolder=modules[0]["path"], **hub_kwargs)
        pooling = DeepSetsPooling.load(model_name_or_path, subfolder=modules[1]["path"], **hub_kwargs)
        return cls(encoder, pooling, normalize=_ends_in_normalize(kinds[2:]))

    def encode(self, sentences: str | list[str], batch_size: int = 1024) -> np.ndarray:
        """``(N, D)`` float32 embeddings (``(D,)`` for a single string); an empty text gives a zero vector.

        Raises:
            TypeError: ``sentences`` is not a string or a list of strings (bytes, None, numbers...).
        """
        single = isinstance(sentences, str)
        texts = [sentences] if single else check_texts(sentences, "NumpyStudent.encode")
        out = np.zeros((len(texts), self.w2.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            out[start : start + batch_size] = self._encode_batch(texts[start : start + batch_size])
        return out[0] if single else out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        C = self.dim
        ids = padded_entry_ids(self.vocab, texts, self.max_seq_length)
        pooled, empty = self._pool_contextual(ids) if self.contextual else self._pool(ids)
        x = pooled - pooled.sum(1, keepdims=True) * (1.0 / C)  # LayerNorm (eps 1e-5; affine folded into w1)
        x *= 1.0 / np.sqrt((x * x).sum(1, keepdims=True) * (1.0 / C) + 1e-5)
        y = gelu(x @ self.w1 + self.b1) @ self.w2 + self.b2
        if self.residual:
            y += pooled
        if empty.any():
            y[empty] = 0.0
        if self.normalize:
            y *= 1.0 / np.maximum(np.sqrt((y * y).sum(1, keepdims=True)), 1e-12)
        return y

    def _pool(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The DeepSets student's pooled vectors (B, C) of padded ids (B, T), and which texts are empty."""
        B, C, H = len(ids), self.dim, self.num_heads
        sums = self.table[ids].sum(1)  # (B, C + H): sum of w * phi per head, then sum of w per head
        den = sums[:, C:]  # (B, H); every entry weighs >= exp(-80) > 0 in every head, [PAD] 0
        empty = den[:, 0] == 0
        if empty.any():
            den = np.where(empty[:, None], 1.0, den)  # an empty text pools to 0 / 1 = 0
        return (sums[:, :C].reshape(B, H, C // H) / den[..., None]).reshape(B, C), empty

    def _pool_contextual(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The contextual student's pooled vectors: the folded rows ``[phi(x) | logits | q k v]``, the context
        block's attention over the set and output projection, the corrected logits, a masked softmax per head."""
        (B, T), C, H, h = ids.shape, self.dim, self.num_heads, self.context_heads
        rows, mask = self.raw[ids], ids != 0  # (B, T, C + H + 3d), (B, T)
        v, logits = rows[..., :C], rows[..., C : C + H]
        q, k, val = rows[..., C + H :].reshape(B, T, 3, h, -1).transpose(2, 0, 3, 1, 4)  # (B, h, T, d/h) each
        scores = q @ k.transpose(0, 1, 3, 2) * np.float32(q.shape[-1] ** -0.5)  # (B, h, T, T)
        delta = _masked_softmax(scores, mask[:, None, None, :], -1) @ val  # (B, h, T, d/h)
        delta = delta.transpose(0, 2, 1, 3).reshape(B, T, -1) @ self.w_out + self.b_out  # (B, T, C)
        w = _masked_softmax(logits + delta @ self.w_attn, mask[..., None], 1)  # (B, T, H), over the set
        pooled = (w[..., None] * (v + delta).reshape(B, T, H, C // H)).sum(1).reshape(B, C)
        return pooled, ~mask.any(1)


def padded_entry_ids(vocab: NGramVocab, texts: list[str], max_entries: int) -> np.ndarray:
    """``(B, T)`` int64 entry ids of ``texts``, at most ``max_entries`` each, padded with 0 (``[PAD]``); ``T >= 1``."""
    rows = [vocab.tokenize(t, max_entries=max_entries) for t in texts]
    ids = np.zeros((len(rows), max(1, max(map(len, rows)))), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids


def _ends_in_normalize(after_pooling: list[str]) -> bool:
    """Whether the modules after DeepSetsPooling are ``[Normalize]`` (True) or none (False); anything else would be
    silently skipped, so it is an error."""
    if after_pooling not in ([], ["Normalize"]):
        raise ValueError(
            f"NumpyStudent runs encoder -> pooling (-> Normalize), not the modules {after_pooling} after them."
        )
    return bool(after_pooling)


def _masked_softmax(x: np.ndarray, mask: np.ndarray, axis: int) -> np.ndarray:
    """Softmax over ``axis`` of the entries where ``mask`` (broadcast) holds; 0 elsewhere and on all-masked rows."""
    x = np.where(mask, x, -np.inf)
    top = x.max(axis, keepdims=True)
    e = np.exp(x - np.where(np.isfinite(top), top, 0.0))  # exp(-inf) = 0 under the mask
    total = e.sum(axis, keepdims=True)
    return e / np.where(total > 0, total, 1.0)


def gelu(h: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as ``nn.GELU()``. (Not torch's kernel: its thread pool and numpy's BLAS threads fight over
    the cores when they alternate, measured 10x slower at batch 32.)"""
    return 0.5 * h * (1.0 + erf(h * np.float32(0.5**0.5)))
