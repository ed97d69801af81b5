"""The contextual student's entry-level targets: entry <-> word-piece alignment on hand-made cases with the real
MiniLM tokenizer, the targets against the teacher's own token vectors, the loss, and a tiny distillation with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer

from st_bertapprox.config import DistillConfig, StudentConfig, VocabConfig
from st_bertapprox.distill.entry_targets import align, entry_targets
from st_bertapprox.distill.losses import EntryDistillLoss
from st_bertapprox.distill.mining import embed_vocab, mine_vocab
from st_bertapprox.distill.student import build_student, distill
from st_bertapprox.evaluation import TeacherAgreementEvaluator
from st_bertapprox.modules.student import VocabSetEncoder, fold_student
from st_bertapprox.modules.vocab import NGramVocab

VOCAB = NGramVocab(["new york", "new", "is", "big", "the", "city"], ["new _ is"], ["token", "##ization", "tok"])


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def pieces_of(text: str, tokenizer, max_entries=None) -> list[tuple[str, list[str]]]:
    """(entry, the teacher word pieces aligned with it) for every entry of ``text``."""
    ids, spans = VOCAB.entry_spans(text, max_entries)
    enc = tokenizer(text, return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    return [(VOCAB.entries[i], [tokens[t] for t in ts]) for i, ts in zip(ids, align(spans, enc["offset_mapping"]))]


def test_alignment_hand_made_cases(tokenizer):
    # an n-gram covering two pieces; a skip-gram covering its two end words; unigrams
    assert pieces_of("New York is big", tokenizer) == [
        ("new york", ["new", "york"]),
        ("is", ["is"]),
        ("big", ["big"]),
        ("new _ is", ["new", "is"]),
    ]
    # a word the teacher splits into pieces, matched by our own pieces: each covers its part
    assert tokenizer.tokenize("tokenization") == ["token", "##ization"]
    assert pieces_of("Tokenization", tokenizer) == [("token", ["token"]), ("##ization", ["##ization"])]
    # our piece covers part of a teacher piece: every teacher piece that overlaps it counts
    assert pieces_of("tokenize", tokenizer)[0] == ("token", ["token"])
    # accents are mapped back to the original characters
    assert pieces_of("The Café is big", tokenizer)[-1] == ("big", ["big"])
    # the empty text has no entries; a truncated text keeps the spans of the entries it keeps
    assert pieces_of("", tokenizer) == []
    assert pieces_of("New York is big", tokenizer, max_entries=2) == [("new york", ["new", "york"]), ("is", ["is"])]


def test_entry_spans_agree_with_tokenize_on_real_text(real_sentences):
    config = VocabConfig(max_unigrams=500, max_ngrams=200, max_skipgrams=50, min_count=2)
    vocab = mine_vocab(real_sentences[:400], config, show_progress_bar=False)
    for text in real_sentences[:300] + ["Ça c'est très ÉTRANGE!", "ﬁnal ﬂow", "İstanbul", "...", "  "]:
        for limit in (None, 3):
            ids, spans = vocab.entry_spans(text, limit)
            assert ids == vocab.tokenize(text, limit) and len(spans) == len(ids)
            assert all(0 <= a < b <= len(text) for entry in spans for a, b in entry)


def test_entry_targets_are_the_teacher_token_vectors(minilm_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ST_BERTAPPROX_CACHE", str(tmp_path))
    teacher = SentenceTransformer(minilm_path, device="cpu")
    texts = ["New York is big", "Tokenization is big", ""]
    targets = entry_targets(teacher, VOCAB, texts, max_entries=256, show_progress_bar=False)
    assert [len(targets.of(i)) for i in range(3)] == [4, 4, 0]  # token ##ization is big
    tokens = teacher.encode(texts[:1], output_value="token_embeddings")[0].numpy()  # [CLS] new york is big [SEP]
    t = targets.of(0)
    np.testing.assert_allclose(t[0], tokens[1:3].mean(0), atol=2e-3)  # "new york": float16 storage
    np.testing.assert_allclose(t[3], tokens[[1, 3]].mean(0), atol=2e-3)  # "new _ is"
    again = entry_targets(teacher, VOCAB, texts, max_entries=256, show_progress_bar=False)  # from the cache
    assert np.array_equal(again.vectors, targets.vectors)
    assert len(list(tmp_path.rglob("entries/*.safetensors"))) == 1


def test_entry_loss_refuses_targets_of_another_vocabulary(minilm_path, tmp_path, monkeypatch):
    monkeypatch.setenv("ST_BERTAPPROX_CACHE", str(tmp_path))
    teacher = SentenceTransformer(minilm_path, device="cpu")
    texts = ["New York city", "the city"]  # "new york": one entry in VOCAB, two in the other
    encoder = VocabSetEncoder(VOCAB, torch.randn(len(VOCAB), 384))
    student = build_student(encoder, StudentConfig(context_layers=1, adapter_rank=0))
    other = NGramVocab(["new", "york", "is", "big", "the", "city"])  # "new york" is two entries here
    loss = EntryDistillLoss(student, entry_targets(teacher, other, texts, 256, show_progress_bar=False), 1.0)
    features = student[0].preprocess(texts)
    labels = torch.cat([torch.randn(2, 384), torch.arange(2.0)[:, None]], 1)
    with pytest.raises(ValueError, match="another vocabulary"):
        loss([features], labels)
    loss.targets = entry_targets(teacher, VOCAB, texts, 256, show_progress_bar=False)
    value = loss([student[0].preprocess(texts)], labels)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert student[1].context[0].out.weight.grad.abs().sum() > 0  # the entry loss reaches the context block


@pytest.mark.slow
def test_tiny_contextual_distillation_with_entry_targets(minilm_path, stsb_train, tmp_path, monkeypatch):
    """The contextual student with entry-level targets learns on real sentences, and folds to the same model."""
    monkeypatch.setenv("ST_BERTAPPROX_CACHE", str(tmp_path / "cache"))
    teacher = SentenceTransformer(minilm_path, device="cpu")
    sentences = list(dict.fromkeys(list(stsb_train["sentence1"]) + list(stsb_train["sentence2"])))[:1200]
    train, heldout = sentences[:1000], sentences[1000:]
    config = VocabConfig(max_unigrams=1500, max_ngrams=400, max_skipgrams=100, min_count=2)
    vocab = mine_vocab(train, config, show_progress_bar=False)
    encoder = embed_vocab(vocab, teacher, show_progress_bar=False)
    arch = StudentConfig(phi_hidden_dim=64, rho_hidden_dim=64, adapter_rank=0, context_layers=1, context_dim=32)
    torch.manual_seed(0)
    before = TeacherAgreementEvaluator(heldout, teacher.encode(heldout))(build_student(encoder, arch))
    student, metrics = distill(
        teacher,
        encoder,
        train,
        heldout,
        str(tmp_path / "run"),
        DistillConfig(epochs=2, batch_size=64, entry_loss_weight=1.0, eval_stsb=False),
        arch,
        show_progress_bar=False,
    )
    assert metrics["heldout_cosine"] > before["heldout_cosine"] + 0.05, (before, metrics)
    folded = fold_student(student)
    assert np.abs(folded.encode(heldout) - student.encode(heldout)).max() <= 1e-5
