"""SQuAD v1.1 exact match and F1, as the official evaluation script computes them.

``evaluate.load("squad")`` fetches the metric's code from the Hugging Face Hub (``evaluate-metric/squad``), so it
cannot run offline; this is the same computation, from the official ``evaluate-v1.1.py`` of Rajpurkar et al. (2016),
"SQuAD: 100,000+ Questions for Machine Comprehension of Text" (https://rajpurkar.github.io/SQuAD-explorer/), which
``evaluate``'s ``squad`` metric wraps unchanged:

* normalise an answer: lower-case, drop ASCII punctuation (``string.punctuation``), drop the articles a/an/the,
  collapse whitespace;
* exact match: normalised prediction == normalised gold answer;
* F1: over the normalised whitespace tokens, ``2 P R / (P + R)`` with the multiset overlap, 0 without overlap;
* each question scores the maximum over its gold answers; the dataset score is the mean, in percent.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the official order of the steps)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """Whether the prediction equals the gold answer after :func:`normalize_answer`."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token F1 of the normalised prediction against one gold answer (multiset overlap; 0.0 without overlap)."""
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """``{"exact_match": %, "f1": %}`` over the questions of ``references`` (id -> gold answers); a question
    without a prediction scores 0, as in the official script (which also warns)."""
    if not references:
        raise ValueError("No reference answers to score against.")
    em = f1 = 0.0
    for qid, golds in references.items():
        prediction = predictions.get(qid, "")
        em += max(exact_match_score(prediction, g) for g in golds)
        f1 += max(f1_score(prediction, g) for g in golds)
    return {"exact_match": 100.0 * em / len(references), "f1": 100.0 * f1 / len(references)}
