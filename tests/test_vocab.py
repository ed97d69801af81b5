"""The student's tokenizer: normalisation, longest match, skip-grams, fallback pieces, storage errors."""

from __future__ import annotations

import json

import pytest

from st_bertapprox.modules.vocab import NGramVocab, split_words


@pytest.fixture()
def vocab() -> NGramVocab:
    return NGramVocab(
        ngrams=["new", "york", "new york", "new york city", "city", "is", "big", "not", "good", "cafe", "ecole"],
        skipgrams=["not _ good", "new _ city"],
        pieces=["c", "d", "o", "g", "##a", "##t", "##s", "##o", "##g", "ca", "!", "new"],
    )


def entries(vocab: NGramVocab, text: str) -> list[str]:
    return [vocab.entries[i] for i in vocab.tokenize(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("New York City is big", ["new york city", "is", "big", "new _ city"]),  # longest match; skip-grams too
        ("new york is big", ["new york", "is", "big"]),
        ("new is new york", ["new", "is", "new york"]),
        ("new big city", ["new", "big", "city", "new _ city"]),  # skip-gram over any middle word
        ("not very good", ["not", "[UNK]", "[UNK]", "[UNK]", "[UNK]", "good", "not _ good"]),  # "very": no pieces
        ("Cats, dogs!", ["ca", "##t", "##s", "d", "##o", "##g", "##s"]),  # fallback word pieces, punctuation dropped
        ("!!!", ["!", "!", "!"]),  # text without words falls back to its punctuation
        ("", []),
        ("   \n\t ", []),
        ("CAFÉ École", ["cafe", "ecole"]),  # lowercase + accents stripped, as BERT-uncased
        ("Ναι", ["[UNK]", "[UNK]", "[UNK]"]),  # non-Latin script: letters the vocabulary lacks
    ],
)
def test_tokenization_table(vocab, text, expected):
    assert entries(vocab, text) == expected


def test_overlapping_and_unique_modes():
    v = NGramVocab(["new", "york", "new york", "new york city", "city"], overlapping=True)
    assert entries(v, "new york city") == ["new", "new york", "new york city", "york", "city"]
    u = NGramVocab(["new", "york", "new york"], unique=True)
    assert entries(u, "new york new york new") == ["new york", "new"]


def test_word_splitting_rules():
    assert split_words("Don't stop_me now, it's 3.5 km") == ["don't", "stop", "me", "now", "it's", "3", "5", "km"]


def test_piece_sharing_with_unigrams(vocab):
    assert vocab.piece_ids["new"] == vocab.index["new"]  # a word-initial piece that is also a unigram is one entry
    assert len(set(vocab.entries)) == len(vocab.entries)


def test_round_trip_and_fingerprint(vocab, tmp_path):
    vocab.save(str(tmp_path / "vocab.json"))
    again = NGramVocab.load(str(tmp_path / "vocab.json"))
    assert again.entries == vocab.entries and again.fingerprint() == vocab.fingerprint()
    assert again.tokenize("not so good, New York") == vocab.tokenize("not so good, New York")


def test_corrupt_files_are_clear_errors(vocab, tmp_path):
    path = tmp_path / "vocab.json"
    path.write_text('{"format_version": 1, "ngrams": ["a"')  # truncated
    with pytest.raises(ValueError, match="not valid JSON.*corrupt"):
        NGramVocab.load(str(path))
    path.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(ValueError, match="not an st-bertapprox vocabulary"):
        NGramVocab.load(str(path))
    d = vocab.to_dict()
    d["ngrams"] = d["ngrams"] + ["new"]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="corrupt.*Duplicate vocabulary entry 'new'"):
        NGramVocab.load(str(path))
    d = vocab.to_dict()
    d["skipgrams"] = ["not good"]
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="Invalid skip-gram"):
        NGramVocab.load(str(path))
