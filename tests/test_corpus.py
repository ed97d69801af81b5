"""Fitting the student to a user's documents: reading BEIR / JSONL / text corpora, splitting documents into
sentences and passages, holding out whole documents, and merging the mined vocabulary into a general one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from st_bertapprox.config import VocabConfig
from st_bertapprox.data.corpus import document_texts, load_corpus, split_sentences
from st_bertapprox.data.records import read_documents
from st_bertapprox.distill.mining import embed_vocab, merge_vocabs, mine_vocab, teacher_pieces

DOCS = [
    {
        "_id": "d1",
        "title": "Aspirin and the heart",
        "text": "Dr. Smith et al. gave aspirin to 2.5 times more mice. "
        "The effect was large (p < 0.01). Platelets aggregated less. Bleeding rose slightly.",
    },
    {"_id": "d2", "title": "", "text": "A single sentence about vitamin D."},
    {"_id": "d3", "title": "Sleep", "text": "Short sleep impairs memory. Naps restore it. Caffeine does not."},
]


@pytest.fixture()
def beir(tmp_path):
    folder = tmp_path / "mini-beir"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS) + "\n")
    return folder


def test_read_documents_beir_jsonl_and_text(beir, tmp_path):
    docs = read_documents(beir)
    assert docs[0].startswith("Aspirin and the heart Dr. Smith") and docs[1] == "A single sentence about vitamin D."
    assert read_documents(beir / "corpus.jsonl") == docs
    custom = tmp_path / "custom.jsonl"
    custom.write_text(json.dumps({"body": "Hello there."}) + "\n")
    assert read_documents(custom, text_field="body") == ["Hello there."]
    with pytest.raises(ValueError, match="--text-column"):
        read_documents(custom)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="bad.jsonl, line 1"):
        read_documents(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError, match="corpus.jsonl"):
        read_documents(tmp_path)
    lines = tmp_path / "lines.txt"
    lines.write_text("one.\n\ntwo.\n")
    assert read_documents(lines) == ["one.", "two."]


def test_documents_split_into_sentences_passages_and_the_whole():
    doc = DOCS[0]["text"] + " Aspirin is cheap."
    sentences = split_sentences(doc)
    assert sentences[0].startswith("Dr. Smith et al. gave aspirin to 2.5 times")  # abbreviations, decimals kept
    assert len(sentences) == 5
    texts = document_texts(doc, passage_sentences=3)
    passages = [" ".join(sentences[:3]), " ".join(sentences[3:])]
    assert texts == [*sentences, *passages, doc]
    assert document_texts("Just one sentence.") == ["Just one sentence."]  # a sentence-per-line file is unchanged


def test_corpus_holds_out_whole_documents_and_adds_general_texts(beir, stsb_train):
    corpus = load_corpus(files=[str(beir)], heldout=2, num_sentences=1000, passage_sentences=2)
    held_doc = read_documents(beir)[-1]
    assert corpus.heldout == split_sentences(held_doc)[:2]
    assert not any(t in held_doc for t in corpus.train) and corpus.mine == read_documents(beir)[:-1]
    with_general = load_corpus(files=[str(beir)], heldout=2, general_sentences=50, passage_sentences=2)
    assert with_general.train[: len(corpus.train)] == corpus.train
    assert len(with_general.train) == len(corpus.train) + 50 and with_general.mine == corpus.mine
    assert (
        with_general.train[-50:]
        == list(dict.fromkeys(list(stsb_train["sentence1"]) + list(stsb_train["sentence2"])))[:50]
    )
    with pytest.raises(ValueError, match="too few documents"):
        load_corpus(files=[str(beir)], heldout=100)


def test_merged_vocabulary_keeps_every_general_row_and_embeds_only_new_entries(minilm_path, stsb_train, monkeypatch):
    teacher = SentenceTransformer(minilm_path, device="cpu")
    general_texts = list(stsb_train["sentence1"])[:400]
    domain_texts = [DOCS[0]["text"], DOCS[2]["text"]] * 3
    config = VocabConfig(max_unigrams=300, max_ngrams=50, max_skipgrams=10, min_count=2)
    general = embed_vocab(
        mine_vocab(general_texts, config, pieces=teacher_pieces(teacher), show_progress_bar=False),
        teacher,
        show_progress_bar=False,
    )
    mined = mine_vocab(domain_texts, config, show_progress_bar=False)
    merged = merge_vocabs(general.vocab, mined)
    assert merged.entries[: general.vocab.num_ngrams + 2] == general.vocab.entries[: general.vocab.num_ngrams + 2]
    assert set(general.vocab.entries) <= set(merged.entries)
    new = [e for e in merged.entries if e not in general.vocab.index]
    assert "platelets" in new and "aspirin" in new

    import st_bertapprox.distill.mining as vb

    encoded: list[str] = []
    real = vb.encode_cached

    def spy(model, texts, **kwargs):
        encoded.extend(texts)
        return real(model, texts, **kwargs)

    monkeypatch.setattr(vb, "encode_cached", spy)
    encoder = embed_vocab(merged, teacher, show_progress_bar=False, known=general)
    assert len(encoded) == len(new)  # the general entries cost no teacher pass
    table, old = encoder.embeddings.weight.float(), general.embeddings.weight.float()
    for entry in ("the", general.vocab.entries[-1], general.vocab.entries[general.vocab.num_ngrams + 1]):
        assert np.array_equal(table[merged.index[entry]].numpy(), old[general.vocab.index[entry]].numpy()), entry
    row = table[merged.index["platelets"]].numpy()
    np.testing.assert_allclose(row, teacher.encode("platelets"), atol=2e-3)  # float16 storage
