"""Entry-level distillation targets: what the teacher says about every vocabulary entry *in its sentence*.

A teacher pass over a sentence yields one contextual vector per word piece. Each of the student's entries covers some
characters of the sentence (an n-gram its words, a skip-gram its two end words, a word piece its characters: see
``NGramVocab.entry_spans``); its target is the mean of the teacher's vectors of the word pieces overlapping those
characters. So a teacher-encoded sentence gives one target per entry instead of one per sentence.

    targets = entry_targets(teacher, student_encoder.vocab, texts, max_entries=256)
    targets.of(i)  # (n_i, C) float32: the targets of tokenize(texts[i], 256), in order; zero rows: no coverage

The same teacher pass gives the sentence embeddings too: they go to the teacher's cache (``teacher.store_cached``),
so entry-level distillation costs one teacher pass over the corpus, not two. The targets are cached under the
teacher's folder of that cache (``teacher.cache_dir()``), in ``entries/``, keyed by the teacher's fingerprint, the
vocabulary's fingerprint, ``max_entries`` and the texts.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from st_bertapprox.distill.teacher_cache import cache_dir, store_cached
from st_bertapprox.fingerprint import model_fingerprint, text_hashes
from st_bertapprox.modules.io import load_tensors, save_tensors
from st_bertapprox.modules.vocab import NGramVocab

logger = logging.getLogger(__name__)


def align(spans: list[list[tuple[int, int]]], offsets: list[tuple[int, int]]) -> list[list[int]]:
    """For every entry (its character spans), the word pieces (their character offsets) that overlap it.

    Special tokens ([CLS], [SEP]) have empty offsets ``(0, 0)`` and never overlap anything.

    Example::

        >>> align([[(0, 8)], [(0, 3), (9, 11)]], [(0, 0), (0, 3), (4, 8), (9, 11), (0, 0)])
        [[1, 2], [1, 3]]
    """
    out = []
    for entry in spans:
        out.append([t for t, (s, e) in enumerate(offsets) if e > s and any(s < b and e > a for a, b in entry)])
    return out


@dataclass
class EntryTargets:
    """The targets of N texts, flat: rows ``offsets[i]:offsets[i + 1]`` of ``vectors`` belong to text ``i``."""

    vectors: np.ndarray  # (sum of n_i, C) float16; a zero row: the entry covers no teacher word piece
    offsets: np.ndarray  # (N + 1,) int64

    def of(self, i: int) -> np.ndarray:
        """The targets of text ``i``: an ``(n_i, C)`` float32 array, one row per entry, in tokenization order."""
        return self.vectors[self.offsets[i] : self.offsets[i + 1]].astype(np.float32)

    def __len__(self) -> int:
        return len(self.offsets) - 1


def _cache_file(fingerprint: str, vocab: NGramVocab, texts: list[str], max_entries: int) -> Path:
    h = hashlib.sha256(f"{vocab.fingerprint()}|{max_entries}|".encode())
    h.update(text_hashes(texts).tobytes())
    return cache_dir() / fingerprint / "entries" / f"{h.hexdigest()[:16]}.safetensors"


@torch.no_grad()
def entry_targets(
    teacher: SentenceTransformer,
    vocab: NGramVocab,
    texts: list[str],
    max_entries: int,
    batch_size: int = 64,
    chunk_size: int = 4096,
    show_progress_bar: bool = True,
) -> EntryTargets:
    """The entry-level targets of ``texts`` (see the module docstring), from a cache or one teacher pass.

    The teacher must be a ``[Transformer-like module with a fast HF tokenizer, ...]`` pipeline: its first module's
    tokenizer gives the word pieces' character offsets.
    """
    fingerprint = model_fingerprint(teacher)  # once: it hashes every weight
    path = _cache_file(fingerprint, vocab, texts, max_entries)
    if path.exists():
        try:
            t = load_tensors(str(path))
            if t["offsets"].shape == (len(texts) + 1,):
                return EntryTargets(t["vectors"].numpy(), t["offsets"].numpy())
        except (ValueError, KeyError) as e:
            logger.warning(f"Re-computing the damaged entry-target cache {path}: {e}")
    tokenizer = getattr(teacher[0], "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ValueError("Entry-level targets need a teacher whose first module has a fast HF tokenizer (offsets).")
    vectors, counts = [], []
    for start in tqdm(range(0, len(texts), chunk_size), desc="entry targets", disable=not show_progress_bar):
        chunk = texts[start : start + chunk_size]
        outputs = teacher.encode(chunk, batch_size=batch_size, output_value=None, show_progress_bar=False)
        sentences = np.stack([o["sentence_embedding"].float().cpu().numpy() for o in outputs])
        store_cached(teacher, chunk, sentences, fingerprint)
        enc = tokenizer(chunk, return_offsets_mapping=True, truncation=True, max_length=teacher.max_seq_length)
        for text, out, offsets in zip(chunk, outputs, enc["offset_mapping"]):
            token_vectors = out["token_embeddings"][out["attention_mask"].bool()].float().cpu().numpy()  # unpadded
            if len(offsets) != len(token_vectors):
                raise ValueError("The teacher's tokenizer and its token embeddings disagree on a text's length.")
            _, spans = vocab.entry_spans(text, max_entries)
            rows = np.zeros((len(spans), token_vectors.shape[1]), dtype=np.float32)
            for r, pieces in enumerate(align(spans, offsets)):
                if pieces:
                    rows[r] = token_vectors[pieces].mean(0)
            vectors.append(rows.astype(np.float16))
            counts.append(len(spans))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    width = teacher.get_embedding_dimension()
    flat = np.concatenate(vectors) if vectors else np.zeros((0, width), np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_tensors({"vectors": torch.from_numpy(flat), "offsets": torch.from_numpy(offsets)}, str(path))
    return EntryTargets(flat, offsets)
