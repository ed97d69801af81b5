"""Pseudo-queries: query-like texts made from a collection's own documents, to distil rankings on (issue #24).

Three kinds, drawn in the shares of a :class:`PseudoQueryConfig`: a document's **title**; one **sentence** of its
text (the inverse cloze task: a sentence stands for the query its document answers; sentences longer than
``max_words`` are cropped); a random **crop** of ``min_words`` to ``max_words`` consecutive words (uniform length:
short keyword-like queries next to claim-length ones). Only the documents are read: never a collection's queries or
relevance judgements. Seeded and de-duplicated.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from st_bertapprox.config import PseudoQueryConfig
from st_bertapprox.data.corpus import split_sentences


def _crop(words: list[str], rng: random.Random, config: PseudoQueryConfig) -> str:
    n = rng.randint(config.min_words, config.max_words)
    if len(words) <= n:
        return " ".join(words)
    start = rng.randrange(len(words) - n + 1)
    return " ".join(words[start : start + n])


def pseudo_queries(documents: Sequence[tuple[str, str]], config: PseudoQueryConfig | None = None) -> list[str]:
    """``config.count`` distinct pseudo-queries of ``documents`` ((title, text) pairs), in draw order.

    Each draw picks a document at random, then a kind by the config's shares (a title-less document gives a
    sentence instead of its title). Stops early, with fewer texts, when draws stop finding new ones.

    Raises:
        ValueError: no document has any text.
    """
    config = config or PseudoQueryConfig()
    docs = [(title.strip(), text.strip()) for title, text in documents if (title or "").strip() or text.strip()]
    if not docs:
        raise ValueError("pseudo_queries needs documents with text: every document given is empty.")
    rng = random.Random(config.seed)
    sentences: dict[int, list[str]] = {}
    out: dict[str, None] = {}
    misses = 0
    while len(out) < config.count and misses < 10 * config.count:
        i = rng.randrange(len(docs))
        title, text = docs[i]
        u = rng.random()
        if u < config.title_share and title:
            query = title
        elif u < config.title_share + config.sentence_share:  # a title-less document gives a sentence
            if i not in sentences:
                sentences[i] = split_sentences(text) or [text]
            words = rng.choice(sentences[i]).split()
            query = " ".join(words) if len(words) <= config.max_words else _crop(words, rng, config)
        else:
            query = _crop(text.split() or title.split(), rng, config)
        if not query or query in out:
            misses += 1
            continue
        out[query] = None
    return list(out)
