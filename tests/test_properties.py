"""Property tests (hypothesis): random unicode texts and random small vocabularies, for the tokenizer and the
student (unfolded, folded, numpy)."""

from __future__ import annotations

import random

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize
from test_student import tiny_student

from st_bertapprox.inference.numpy_student import NumpyStudent
from st_bertapprox.modules.student import DeepSetsPooling, VocabSetEncoder, fold_student
from st_bertapprox.modules.vocab import NONSPACE_RE, NGramVocab, normalize

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STUDENT_SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WORD = st.text("abcd", min_size=1, max_size=3)


@st.composite
def vocabularies(draw) -> NGramVocab:
    """n-grams over a few short words (so they overlap and nest), skip-grams, start and continuation pieces."""
    words = draw(st.lists(WORD, min_size=1, max_size=6, unique=True))
    ngram = st.lists(st.sampled_from(words), min_size=1, max_size=3).map(" ".join)
    skipgram = st.tuples(st.sampled_from(words), st.sampled_from(words)).map(lambda ab: f"{ab[0]} _ {ab[1]}")
    continuation = st.text("abcd", min_size=1, max_size=3).map("##".__add__)
    piece = st.one_of(st.text("abcd!", min_size=1, max_size=3), continuation)
    return NGramVocab(
        draw(st.lists(ngram, max_size=12, unique=True)),
        draw(st.lists(skipgram, max_size=4, unique=True)),
        draw(st.lists(piece, max_size=10, unique=True)),
        overlapping=draw(st.booleans()),
        unique=draw(st.booleans()),
    )


# vocabulary-like text (words, case, accents, punctuation, underscores, combining marks) and arbitrary unicode
TEXTS = st.one_of(st.text("abcdABé !_'\u0301\n中", max_size=40), st.text(max_size=30))


def reference_pieces(vocab: NGramVocab, word: str) -> list[int]:
    """Greedy longest prefix by slicing (the definition); the tokenizer walks character tries instead."""
    out, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab.piece_ids:
                out.append(vocab.piece_ids[piece])
                start = end
                break
        else:
            out.append(1)
            start += 1
    return out


@SETTINGS
@given(vocab=vocabularies(), text=TEXTS, T=st.integers(0, 12))
def test_tokenizer_invariants(vocab, text, T):
    ids = vocab.tokenize(text)
    assert all(1 <= i < len(vocab) for i in ids)  # never [PAD], always an entry
    assert bool(ids) == bool(NONSPACE_RE.search(normalize(text)))  # empty (after normalisation) <-> no entries
    assert vocab.tokenize("") == []
    assert vocab.tokenize(text, max_entries=T) == ids[:T]  # the cost bound never changes the result
    if vocab.unique:
        assert len(set(ids)) == len(ids)
    for word in normalize(text).split():
        assert vocab.word_pieces(word) == reference_pieces(vocab, word)
    # the spans of the entry-level targets: same entries, and every span inside the text
    for limit in (None, T):
        span_ids, spans = vocab.entry_spans(text, limit)
        assert span_ids == (ids if limit is None else ids[:limit]) and len(spans) == len(span_ids)
        assert all(0 <= a < b <= len(text) for entry in spans for a, b in entry)


def random_student(vocab: NGramVocab, seed: int, heads: int, max_seq_length: int) -> SentenceTransformer:
    torch.manual_seed(seed)
    encoder = VocabSetEncoder(vocab, torch.randn(len(vocab), 8), max_seq_length, storage_dtype="float32")
    pooling = DeepSetsPooling(8, phi_hidden_dim=16, num_heads=heads, rho_hidden_dim=12, dropout=0.0).eval()
    for p in pooling.parameters():  # not the zero-initialised residual branches
        torch.nn.init.normal_(p, std=0.3)
    return SentenceTransformer(modules=[encoder, pooling, Normalize()], device="cpu")


@STUDENT_SETTINGS
@given(
    vocab=vocabularies(),
    texts=st.lists(TEXTS, min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
    heads=st.sampled_from([1, 2, 4]),
    max_seq_length=st.integers(1, 12),
)
def test_student_invariants(vocab, texts, seed, heads, max_seq_length):
    student = random_student(vocab, seed, heads, max_seq_length)
    out = student.encode(texts)
    assert np.isfinite(out).all()
    empty = np.array([not vocab.tokenize(t) for t in texts])
    assert not out[empty].any()  # no entries -> the zero vector
    np.testing.assert_allclose(np.linalg.norm(out[~empty], axis=1), 1.0, atol=1e-5)
    # folded == unfolded == numpy
    folded = fold_student(student)
    np.testing.assert_allclose(folded.encode(texts), out, atol=1e-5)
    np.testing.assert_allclose(NumpyStudent.from_model(folded).encode(texts), out, atol=1e-5)
    # padding: alone vs next to a much longer text
    long_text = " ".join(vocab.entries[2:]) * 3
    for i, text in enumerate(texts):
        np.testing.assert_allclose(student.encode([text, long_text])[0], out[i], atol=1e-6)
    # permutation: shuffle the entries of every text's set (padding stays at the end)
    encoder, pooling = student[0], student[1]
    features = encoder.preprocess(texts)
    with torch.no_grad():
        ref = pooling(encoder(dict(features)))["sentence_embedding"]
        ids = features["input_ids"].clone()
        rng = random.Random(seed)
        for row in ids:
            n = int((row != 0).sum())
            row[:n] = row[:n][torch.tensor(rng.sample(range(n), n), dtype=torch.long)]
        shuffled = pooling(encoder({"input_ids": ids, "attention_mask": (ids != 0).long()}))["sentence_embedding"]
    torch.testing.assert_close(shuffled, ref, atol=1e-6, rtol=0)


WEIRD = [
    "",
    " ",
    "\x00\x01\x1f\x7f",
    "🙂🚀👍🏽 emoji only 🙂",
    "中文句子没有空格",
    "النص العربي من اليمين",
    "Ünïcödé çafé naïve",
    "\u0301\u0301",  # lone combining marks: normalised away
    "a\u200bb\ufeff",  # zero-width characters
    "new york " * 2000,
    "x" * 1_000_000,
]


def test_weird_texts_finite_unit_norm_and_folded_equals_unfolded_equals_numpy():
    student = tiny_student()
    folded = fold_student(student)
    fast = NumpyStudent.from_model(folded)
    many = [f"text {i} new york" for i in range(10_000)]
    for texts in (WEIRD, many):
        out = student.encode(texts, batch_size=256)
        assert np.isfinite(out).all()
        norms = np.linalg.norm(out, axis=1)
        empty = np.array([not student[0].vocab.tokenize(t) for t in texts])
        assert np.allclose(norms[~empty], 1.0, atol=1e-5) and not norms[empty].any()
        assert np.abs(folded.encode(texts, batch_size=256) - out).max() <= 1e-5
        assert np.abs(fast.encode(texts) - out).max() <= 1e-5
