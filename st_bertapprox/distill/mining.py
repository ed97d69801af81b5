"""Offline half of the student: mine an n-gram / skip-gram vocabulary from a corpus, embed every entry with the
teacher.

Selection rule (documented in the README):
  * words and normalisation exactly as the student's tokenizer (``st_bertapprox.modules.vocab.split_words``);
  * the ``stop_top_k`` most frequent words are "stop words";
  * unigrams: the ``max_unigrams`` most frequent words seen at least ``min_count`` times;
  * n-grams, n = 2..``max_ngram``: ``max_ngrams`` in all, split evenly between the orders (a share an order cannot
    fill passes to the next order), the most frequent of each order seen at least ``min_count`` times, neither
    starting nor ending with a stop word;
  * skip-grams ``w1 _ w3`` (two words with exactly one word between them): the ``max_skipgrams`` most frequent,
    seen at least ``min_count`` times, neither end a stop word;
  * fallback pieces: the teacher tokenizer's word pieces and single punctuation tokens (normalised, ``##``
    continuations kept), plus every letter/digit seen in the corpus as a start and as a continuation piece, so any
    word of the corpus splits into known pieces.
Ties are broken alphabetically, so the same corpus always gives the same vocabulary.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from tqdm.auto import tqdm

from st_bertapprox.config import VocabConfig
from st_bertapprox.distill.teacher_cache import encode_cached
from st_bertapprox.modules.student import VocabSetEncoder
from st_bertapprox.modules.vocab import SKIP, WORD_RE, NGramVocab, normalize, split_words

logger = logging.getLogger(__name__)


def _top(
    counter: Counter, k: int, min_count: int, keep: Callable[[tuple[str, ...] | str], bool] = lambda key: True
) -> list:
    items = sorted(
        ((key, c) for key, c in counter.items() if c >= min_count and keep(key)), key=lambda kc: (-kc[1], kc[0])
    )
    return items[:k]


def teacher_pieces(teacher: SentenceTransformer) -> list[str]:
    """Word pieces of the teacher's tokenizer, normalised to our conventions (``##`` marks a continuation)."""
    tokenizer = getattr(teacher, "tokenizer", None)
    vocab = tokenizer.get_vocab() if tokenizer is not None and hasattr(tokenizer, "get_vocab") else {}
    special = set(getattr(tokenizer, "all_special_tokens", []))
    pieces = set()
    for token in vocab:
        if token in special or token.startswith("[") or token.startswith("<"):
            continue
        cont = token.startswith("##")
        body = normalize(token.removeprefix("##").lstrip("\u0120\u2581"))  # BPE "Ġ" / SentencePiece "▁" markers
        if body and WORD_RE.fullmatch(body) and "'" not in body:
            pieces.add("##" + body if cont else body)
        elif len(body) == 1 and not body.isspace() and not cont:  # punctuation, so "!!!" is not [UNK]
            pieces.add(body)
    return sorted(pieces)


def mine_vocab(
    texts: Iterable[str],
    config: VocabConfig | None = None,
    pieces: Iterable[str] = (),
    overlapping: bool = False,
    unique: bool = False,
    show_progress_bar: bool = True,
) -> NGramVocab:
    """Count words, n-grams and skip-grams over ``texts`` and select a vocabulary (rules in the module docstring).

    ``config`` (default ``VocabConfig()``) gives ``max_ngram``, ``max_unigrams``, ``max_ngrams``, ``max_skipgrams``,
    ``min_count`` and ``stop_top_k``; ``pieces`` are the fallback word pieces (e.g. :func:`teacher_pieces`),
    ``overlapping`` and ``unique`` the tokenizer flags of :class:`NGramVocab`.
    """
    config = config or VocabConfig()
    max_ngram, max_unigrams, max_ngrams = config.max_ngram, config.max_unigrams, config.max_ngrams
    max_skipgrams, min_count, stop_top_k = config.max_skipgrams, config.min_count, config.stop_top_k
    counts = [Counter() for _ in range(max_ngram + 1)]  # counts[n] for n-grams, counts[0] for skip-grams
    chars: set[str] = set()
    for text in tqdm(texts, desc="mining n-grams", unit="text", disable=not show_progress_bar):
        words = split_words(text)
        counts[1].update(words)
        for n in range(2, max_ngram + 1):
            counts[n].update(zip(*(words[k:] for k in range(n))))
        if max_skipgrams:
            counts[0].update(zip(words, words[2:]))
    for word in counts[1]:
        chars.update(word)
    if not counts[1]:
        raise ValueError("The corpus has no words: pass a non-empty corpus of text.")
    stop = {w for w, _ in _top(counts[1], stop_top_k, 1)}
    not_stop_ends = lambda key: key[0] not in stop and key[-1] not in stop  # noqa: E731
    unigrams = _top(counts[1], max_unigrams, min_count)
    ngrams, budget = [], max_ngrams
    for n in range(2, max_ngram + 1):
        share = budget // (max_ngram + 1 - n)  # even split; an order that has fewer candidates passes on its share
        ngrams += _top(counts[n], share, min_count, not_stop_ends)
        budget = max_ngrams - len(ngrams)
    skipgrams = _top(counts[0], max_skipgrams, min_count, not_stop_ends) if max_skipgrams else []
    alnum = sorted(c for c in chars if WORD_RE.fullmatch(c))
    all_pieces = sorted(set(pieces) | set(alnum) | {"##" + c for c in alnum})
    entry_counts = {w: c for w, c in unigrams} | {" ".join(k): c for k, c in ngrams}
    entry_counts |= {f"{a} {SKIP} {b}": c for (a, b), c in skipgrams}
    logger.info(
        f"vocabulary: {len(unigrams)} unigrams, {len(ngrams)} n-grams (n=2..{max_ngram}), "
        f"{len(skipgrams)} skip-grams, "
        f"{len(all_pieces)} fallback pieces"
    )
    return NGramVocab(
        [w for w, _ in unigrams] + [" ".join(k) for k, _ in ngrams],
        [f"{a} {SKIP} {b}" for (a, b), _ in skipgrams],
        all_pieces,
        counts=entry_counts,
        overlapping=overlapping,
        unique=unique,
    )


def merge_vocabs(base: NGramVocab, extra: NGramVocab) -> NGramVocab:
    """``base`` with the entries of ``extra`` it lacks appended (n-grams, skip-grams, pieces; ``base``'s flags).

    Used to fit a general vocabulary to a user's corpus: every general entry is kept (so general quality is kept),
    and the corpus's own words, n-grams and skip-grams are added.
    """
    b, e = base.to_dict(), extra.to_dict()

    def union(key: str) -> list[str]:
        seen = set(b[key])
        return b[key] + [x for x in e[key] if x not in seen]

    counts = {**(e.get("counts") or {}), **(b.get("counts") or {})}
    return NGramVocab(
        union("ngrams"),
        union("skipgrams"),
        union("pieces"),
        counts=counts,
        overlapping=base.overlapping,
        unique=base.unique,
    )


def embed_vocab(
    vocab: NGramVocab,
    teacher: SentenceTransformer,
    batch_size: int = 256,
    devices: list[str] | None = None,
    max_seq_length: int = 256,
    show_progress_bar: bool = True,
    known: VocabSetEncoder | None = None,
) -> VocabSetEncoder:
    """Encode every entry with the teacher (cached, resumable) into a :class:`VocabSetEncoder`; ``[PAD]`` is zero.

    ``known``: an unfolded encoder of the same teacher whose table rows are reused for the entries it has (only the
    other entries are encoded).
    """
    reuse = {}
    if known is not None:
        if known.folded_heads:
            raise ValueError("embed_vocab(known=...) needs an unfolded vocabulary (build-vocab or distill's vocab/).")
        rows = known.embeddings.weight.detach().float().cpu().numpy()
        reuse = {i: rows[known.vocab.index[e]] for i, e in enumerate(vocab.entries) if i and e in known.vocab.index}
    todo = [i for i in range(1, len(vocab)) if i not in reuse]
    texts = [vocab.teacher_text(i) for i in todo]
    if texts:
        emb = encode_cached(
            teacher, texts, name="vocab", batch_size=batch_size, devices=devices, show_progress_bar=show_progress_bar
        )
    else:
        emb = np.zeros((0, next(iter(reuse.values())).shape[0]), dtype=np.float32)
    if reuse:
        if emb.shape[1] != known.get_embedding_dimension():
            raise ValueError(
                f"The vocabulary to merge with has {known.get_embedding_dimension()}-d rows but the teacher gives "
                f"{emb.shape[1]}-d embeddings: merge only with a vocabulary built by the same teacher."
            )
        full = np.empty((len(vocab) - 1, emb.shape[1]), dtype=np.float32)
        full[[i - 1 for i in todo]] = emb
        full[[i - 1 for i in reuse]] = np.stack(list(reuse.values()))
        emb, texts = full, [vocab.teacher_text(i) for i in range(1, len(vocab))]
    bad = np.flatnonzero(~np.isfinite(emb).all(1))
    if len(bad):
        raise ValueError(
            f"The teacher embeddings of {len(bad)} vocabulary entries are not finite (NaN/inf), e.g. "
            f"{[texts[i] for i in bad[:5]]}: the teacher or its embedding cache is broken. Clear the cache "
            "(ST_BERTAPPROX_CACHE, default ~/.cache/st_bertapprox) and check the teacher, then run build-vocab again."
        )
    table = torch.cat([torch.zeros(1, emb.shape[1]), torch.from_numpy(emb)])
    return VocabSetEncoder(vocab, table, max_seq_length=max_seq_length)


def merge_encoder(config: VocabConfig) -> VocabSetEncoder | None:
    """The :class:`VocabSetEncoder` saved in ``config.merge_with`` (``--merge-vocab``), or None when it is unset.

    Raises:
        ValueError: ``merge_with`` is not a vocabulary folder (no ``vocab_set_encoder_config.json``).
    """
    if config.merge_with is None:
        return None
    check_merge_with(config)
    return VocabSetEncoder.load(config.merge_with)


def is_vocab_dir(path: str) -> bool:
    """Whether ``path`` holds a saved :class:`VocabSetEncoder` (``build-vocab`` output)."""
    return os.path.isfile(os.path.join(path, VocabSetEncoder.config_file_name))


def check_merge_with(config: VocabConfig) -> None:
    """Fail early (before a corpus or a teacher is loaded) when ``merge_with`` is set but no vocabulary folder.

    Raises:
        ValueError: ``merge_with`` has no ``vocab_set_encoder_config.json``.
    """
    if config.merge_with is not None and not is_vocab_dir(config.merge_with):
        raise ValueError(
            "VocabConfig.merge_with (--merge-vocab) must be a vocabulary folder (the vocab/ of an earlier distill, or "
            f"build-vocab's), got {config.merge_with!r}."
        )


def build_vocab(
    texts: list[str],
    teacher: SentenceTransformer,
    output_dir: str | None = None,
    config: VocabConfig | None = None,
    devices: list[str] | None = None,
    show_progress_bar: bool = True,
) -> VocabSetEncoder:
    """Mine a vocabulary from ``texts`` as ``config`` says (default ``VocabConfig()``), embed it with ``teacher``
    (batches of ``config.embed_batch_size``), and save it to ``output_dir`` (if given).

    ``config.merge_with``: a general vocabulary folder (unfolded, same teacher) that the mined entries are added to
    (:func:`merge_encoder`, :func:`merge_vocabs`); its table rows are reused, so only the new entries cost teacher
    passes. It is loaded (and checked) before mining.
    """
    config = config or VocabConfig()
    merge_with = merge_encoder(config)
    vocab = mine_vocab(texts, config, pieces=teacher_pieces(teacher), show_progress_bar=show_progress_bar)
    if merge_with is not None:
        merged = merge_vocabs(merge_with.vocab, vocab)
        logger.info(
            f"merged vocabulary: {len(merge_with.vocab):,} general + {len(merged) - len(merge_with.vocab):,} new"
        )
        vocab = merged
    encoder = embed_vocab(
        vocab,
        teacher,
        batch_size=config.embed_batch_size,
        devices=devices,
        show_progress_bar=show_progress_bar,
        known=merge_with,
    )
    if output_dir:
        encoder.save(output_dir)
    return encoder
