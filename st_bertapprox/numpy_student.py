"""A folded student as plain numpy, for serving: no SentenceTransformer, no torch operators on the hot path.

A folded student (:func:`st_bertapprox.fold_student`) stores ``[phi(x) | attention logits]`` for every vocabulary
entry. Its softmax-weighted sum over a text's entries is a ratio of two sums, so at load time every row becomes
``[exp(l_h) * phi_h(x) | exp(l_h)]`` (``l_h`` the head-h logit, shifted so the largest is 0): one gather over the
padded entry ids of a batch and one sum give every text's pooled vector (the ``[PAD]`` row is zero, so no mask and
no softmax run online). Then rho (LayerNorm -> Linear -> GELU -> Linear, residual) and L2 normalisation, as in the
SentenceTransformer. The embeddings equal the folded SentenceTransformer's up to float32 rounding (tested <= 1e-5).

    student = NumpyStudent.from_pretrained("runs/student/student-folded")
    embeddings = student.encode(["A man is playing a guitar.", "Someone plays music."])  # (2, 384), unit norm
"""

from __future__ import annotations

import os

import numpy as np
from scipy.special import erf

from .modules.files import find_file, load_json
from .modules.vocab import NGramVocab

MAX_LOGIT_RANGE = 80.0  # exp(-80) is still a normal float32: no text's weights can all underflow to zero


class NumpyStudent:
    """Encode with a folded student in numpy (see the module docstring).

    Args:
        vocab: The student's vocabulary (tokenizer).
        table: ``(V, C + H)`` folded table: ``phi(x)`` then ``H`` attention logits per entry.
        num_heads: ``H``, the number of attention heads (logit columns).
        rho: The DeepSetsPooling weights ``rho.{0,1,4}.{weight,bias}`` (LayerNorm, Linear, Linear).
        max_seq_length: At most this many entries per text (the first ones), as in the encoder.
        normalize: L2-normalise the output (the saved model ends in ``Normalize``).
    """

    def __init__(
        self,
        vocab: NGramVocab,
        table: np.ndarray,
        num_heads: int,
        rho: dict[str, np.ndarray],
        max_seq_length: int = 256,
        normalize: bool = True,
    ) -> None:
        V, width = table.shape
        C, H = width - num_heads, num_heads
        if V != len(vocab) or C <= 0 or C % H:
            raise ValueError(
                f"A folded table of shape {table.shape} does not fit a {len(vocab)}-entry vocabulary with {H} heads."
            )
        self.vocab, self.dim, self.num_heads = vocab, C, H
        self.max_seq_length, self.normalize = max_seq_length, normalize
        logits = table[:, C:].astype(np.float64)
        logits = np.maximum(logits - logits.max(0), -MAX_LOGIT_RANGE)  # (V, H), largest 0
        weights = np.exp(logits)
        weighted = table[:, :C].reshape(V, H, C // H) * weights[..., None]
        self.table = np.concatenate([weighted.reshape(V, C), weights], 1).astype(np.float32)  # (V, C + H)
        self.table[0] = 0.0  # [PAD]: padding adds nothing to either sum
        # rho = LayerNorm -> Linear -> GELU -> Linear; the LayerNorm's affine part is folded into the first Linear
        ln_w, ln_b = rho["rho.0.weight"].astype(np.float64), rho["rho.0.bias"].astype(np.float64)
        w1, b1 = rho["rho.1.weight"].T.astype(np.float64), rho["rho.1.bias"].astype(np.float64)  # (C, hidden)
        self.w1 = np.ascontiguousarray(ln_w[:, None] * w1, dtype=np.float32)
        self.b1 = (ln_b @ w1 + b1).astype(np.float32)
        self.w2, self.b2 = np.ascontiguousarray(rho["rho.4.weight"].T), rho["rho.4.bias"]  # (hidden, out)
        self.residual = self.w2.shape[1] == C

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, **hub_kwargs) -> NumpyStudent:
        """Load a folded student folder (``fold_student`` + ``save``/``save_pretrained``) or Hub repo id."""
        from safetensors.numpy import load_file

        def need(name: str) -> str:
            path = find_file(model_name_or_path, name, **hub_kwargs)
            if path is None:
                raise FileNotFoundError(f"{model_name_or_path!r} has no {name}: not a saved student.")
            return path

        modules = load_json(need("modules.json"))
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["VocabSetEncoder", "DeepSetsPooling"]:
            raise ValueError(f"{model_name_or_path!r} is not a student (modules {kinds}).")
        enc_dir, pool_dir = (modules[i]["path"] for i in (0, 1))
        config = load_json(need(os.path.join(enc_dir, "vocab_set_encoder_config.json")))
        pooling = load_json(need(os.path.join(pool_dir, "deepsets_config.json")))
        if not pooling.get("folded") or not config.get("folded_heads"):
            raise ValueError(
                f"{model_name_or_path!r} is an unfolded student: fold it first (`st_bertapprox.fold_student`); "
                "`st-bertapprox distill` writes the folded one to `student-folded/`."
            )
        vocab = NGramVocab.load(need(os.path.join(enc_dir, "vocab.json")))
        if config.get("vocab_fingerprint") not in (None, vocab.fingerprint()):
            raise ValueError(f"{model_name_or_path!r}: vocab.json does not match its table (fingerprint mismatch).")
        table = load_file(need(os.path.join(enc_dir, "model.safetensors")))["embeddings"].astype(np.float32)
        rho = load_file(need(os.path.join(pool_dir, "model.safetensors")))
        return cls(
            vocab,
            table,
            config["folded_heads"],
            rho,
            max_seq_length=config.get("max_seq_length", 256),
            normalize=kinds[2:3] == ["Normalize"],
        )

    def encode(self, sentences: str | list[str], batch_size: int = 1024) -> np.ndarray:
        """``(N, D)`` float32 embeddings (``(D,)`` for a single string); an empty text gives a zero vector."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        out = np.zeros((len(texts), self.w2.shape[1]), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            out[start : start + batch_size] = self._encode_batch(texts[start : start + batch_size])
        return out[0] if single else out

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        tokenize, T = self.vocab.tokenize, self.max_seq_length
        rows = [tokenize(t)[:T] for t in texts]
        B, C, H = len(texts), self.dim, self.num_heads
        ids = np.zeros((B, max(1, max(map(len, rows)))), dtype=np.int64)  # (B, T), 0 = [PAD]
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        sums = self.table[ids].sum(1)  # (B, C + H): sum of w * phi per head, then sum of w per head
        den = sums[:, C:]  # (B, H); every entry weighs >= exp(-80) > 0 in every head, [PAD] 0
        empty = den[:, 0] == 0
        if empty.any():
            den = np.where(empty[:, None], 1.0, den)  # an empty text pools to 0 / 1 = 0
        pooled = (sums[:, :C].reshape(B, H, C // H) / den[..., None]).reshape(B, C)
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


def gelu(h: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as ``nn.GELU()``. (Not torch's kernel: its thread pool and numpy's BLAS threads fight over
    the cores when they alternate, measured 10x slower at batch 32.)"""
    return 0.5 * h * (1.0 + erf(h * np.float32(0.5**0.5)))
