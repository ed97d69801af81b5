"""Pseudo-queries from a collection's documents (``distill.pseudo_queries``, issue #24 item 2), on real SciFact
documents: the kinds come in their shares, crops keep their lengths, the draw is seeded, and no pseudo-query is one
of the collection's real queries (train or test)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import require_dataset

from st_bertapprox.config import PseudoQueryConfig
from st_bertapprox.data.shared import load_beir
from st_bertapprox.distill.pseudo_queries import pseudo_queries


@pytest.fixture(scope="module")
def scifact():
    require_dataset("scifact")
    corpus, test_queries, _ = load_beir("scifact", "test", join=False)
    _, train_queries, _ = load_beir("scifact", "train", join=False)
    docs = [(d["title"], d["text"]) for d in corpus.values()]
    return docs, set(test_queries.values()) | set(train_queries.values())


def test_kinds_lengths_and_seed_on_real_documents(scifact):
    docs, _ = scifact
    config = PseudoQueryConfig(count=3000, title_share=0.2, sentence_share=0.4, min_words=4, max_words=20)
    queries = pseudo_queries(docs, config)
    assert len(queries) == 3000 and len(set(queries)) == 3000
    titles = {t for t, _ in docs}
    n_titles = sum(q in titles for q in queries)
    assert 0.15 < n_titles / len(queries) < 0.25  # 20 % drawn (a title can also be a sentence: rare)
    lengths = [len(q.split()) for q in queries if q not in titles]
    assert min(lengths) >= 1 and max(lengths) <= 20
    assert sum(4 <= n <= 20 for n in lengths) / len(lengths) > 0.95  # a sentence or a document can be shorter
    assert pseudo_queries(docs, config) == queries  # seeded
    assert pseudo_queries(docs, replace(config, seed=1)) != queries
    only_crops = pseudo_queries(docs, replace(config, count=500, title_share=0, sentence_share=0))
    assert all(4 <= len(q.split()) <= 20 for q in only_crops)


def test_never_emits_a_collection_query(scifact):
    docs, real_queries = scifact
    queries = pseudo_queries(docs, PseudoQueryConfig(count=20_000))
    assert len(queries) == 20_000
    assert not set(queries) & real_queries


def test_small_and_empty_collections():
    docs = [("", "One short document about cells."), ("A title", "")]
    queries = pseudo_queries(docs, PseudoQueryConfig(count=50, min_words=2, max_words=4))
    assert 0 < len(queries) < 50 and "A title" in queries  # stops when no new text can be drawn
    with pytest.raises(ValueError, match="empty"):
        pseudo_queries([("", "  ")])
    with pytest.raises(ValueError, match="sentence_share"):
        PseudoQueryConfig(title_share=0.7, sentence_share=0.5)
