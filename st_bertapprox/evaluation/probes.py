"""Probes that make a BERT sentence encoder's behaviour visible: pair similarities, contextual token vectors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from sentence_transformers import SentenceTransformer

if TYPE_CHECKING:
    from st_bertapprox.modules.bert import BertTransformer

DEMO_PAIRS = [
    ("How are you?", "How are things?"),
    ("A man is playing a guitar.", "Someone is playing an instrument."),
    ("The cat sits on the mat.", "A cat is sitting on a rug."),
    ("How are you?", "The train leaves at noon."),
    ("The stock market fell sharply today.", "I love eating fresh strawberries."),
    ("A man is playing a guitar.", "A woman is slicing an onion."),
]

# (sentence A, sentence B, word): the same word in two contexts; cat/dog: two words in the same frame
CONTEXT_PROBES = [
    ("He sat on the bank of the river.", "She deposited money at the bank.", "bank"),
    ("The bat flew out of the cave at night.", "He swung the bat and hit the ball.", "bat"),
]
WORD_PAIRS = [("cat", "dog"), ("cat", "car")]
FRAME = "I saw a {} in the garden."


def pair_cosines(model: SentenceTransformer, pairs: list[tuple[str, str]] = DEMO_PAIRS) -> list[float]:
    """The cosine similarity of ``model``'s embeddings of each (a, b) pair in ``pairs``, in order."""
    a = model.encode([p[0] for p in pairs], convert_to_tensor=True)
    b = model.encode([p[1] for p in pairs], convert_to_tensor=True)
    return torch.nn.functional.cosine_similarity(a, b).tolist()


@torch.no_grad()
def token_vector(bert: BertTransformer, sentence: str, word: str) -> torch.Tensor:
    """The contextual vector (last layer) of ``word`` in ``sentence``; ``word`` must be one word piece."""
    features = bert.preprocess([sentence])
    ids = features["input_ids"][0].tolist()
    (word_id,) = bert.tokenizer.convert_tokens_to_ids([word])
    if word_id not in ids:
        raise ValueError(f"{word!r} is not a single token of {sentence!r}")
    hidden = bert(features)["token_embeddings"][0]  # (T, C)
    return hidden[ids.index(word_id)]


@torch.no_grad()
def contextual_probe(bert: BertTransformer) -> dict[str, float]:
    """Cosines showing that BERT token vectors depend on context, unlike its static input embeddings."""
    cos = torch.nn.functional.cosine_similarity
    table = bert.bert.embeddings.word_embeddings.weight
    out = {}
    for a, b, word in CONTEXT_PROBES:
        out[f"'{word}' in two senses (contextual)"] = cos(
            token_vector(bert, a, word), token_vector(bert, b, word), 0
        ).item()
    for w1, w2 in WORD_PAIRS:
        v1, v2 = token_vector(bert, FRAME.format(w1), w1), token_vector(bert, FRAME.format(w2), w2)
        out[f"'{w1}' vs '{w2}' in the same frame (contextual)"] = cos(v1, v2, 0).item()
        i1, i2 = bert.tokenizer.convert_tokens_to_ids([w1, w2])
        out[f"'{w1}' vs '{w2}' (static input embeddings)"] = cos(table[i1], table[i2], 0).item()
    return out
