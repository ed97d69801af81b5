"""Evaluating the reader alone (gold paragraph) and retrieve-then-read (a pool of paragraphs), SQuAD v1.1 metrics.

* :func:`evaluate_reader`: every question read with its own paragraph: exact match and F1
  (``st_bertapprox.qa.metric``), reasoning-type accuracy against the weak labels, next to the accuracy of always
  answering the most frequent weak label of the training questions;
* :func:`evaluate_end_to_end`: every question answered from the top-``k`` paragraphs a sentence model retrieves out of
  the pool (all paragraphs of the evaluated articles): exact match, F1, and hit@k (the gold paragraph was retrieved).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from .metric import squad_scores
from .pipeline import DocumentQA
from .reader import PassageScore, Reader
from .reasoning import weak_reasoning_label


def evaluate_reader(reader: Reader, examples: list[dict[str, Any]], train_questions: list[str]) -> dict[str, Any]:
    """Reader-only scores of ``examples`` (records of ``train.qa_examples``), each read with its gold paragraph.

    Returns:
        ``exact_match``, ``f1`` (percent), ``reasoning_accuracy`` and ``reasoning_majority_accuracy`` (percent, on the
        weak labels), ``reasoning_per_label`` (label -> [correct, total]), ``questions``, ``seconds``.
    """
    t0 = time.perf_counter()
    answers = reader.read([ex["question"] for ex in examples], [ex["context"] for ex in examples])
    seconds = time.perf_counter() - t0
    scores = squad_scores({ex["id"]: a.text for ex, a in zip(examples, answers)}, _references(examples))
    gold = [weak_reasoning_label(ex["question"]) for ex in examples]
    majority = Counter(weak_reasoning_label(q) for q in train_questions).most_common(1)[0][0]
    per_label: dict[str, list[int]] = {}
    for label, answer in zip(gold, answers):
        per_label.setdefault(label, [0, 0])
        per_label[label][0] += answer.reasoning == label
        per_label[label][1] += 1
    return {
        **scores,
        "reasoning_accuracy": 100.0 * sum(a.reasoning == g for a, g in zip(answers, gold)) / len(gold),
        "reasoning_majority_label": majority,
        "reasoning_majority_accuracy": 100.0 * sum(g == majority for g in gold) / len(gold),
        "reasoning_per_label": per_label,
        "questions": len(examples),
        "seconds": seconds,
    }


def evaluate_end_to_end(
    reader: Reader,
    retriever: Any,
    examples: list[dict[str, Any]],
    pool: dict[str, str],
    ks: tuple[int, ...] = (1, 3),
    passage_score: PassageScore = "margin",
) -> dict[str, Any]:
    """Retrieve-then-read scores of ``examples`` over the passage ``pool`` (``{paragraph_id: text}``), per ``k``.

    The pool is embedded once (``index_seconds``); per k: ``exact_match``, ``f1``, ``hit`` (percent of questions
    whose gold paragraph is among the k retrieved), ``retrieve_seconds`` and ``read_seconds`` for all questions.
    """
    qa = DocumentQA(reader, retriever, passage_score)
    t0 = time.perf_counter()
    qa.add_passages(pool)
    out: dict[str, Any] = {"index_seconds": time.perf_counter() - t0, "passages": len(pool)}
    questions = [ex["question"] for ex in examples]
    for k in ks:
        t0 = time.perf_counter()
        retrieved = qa.retrieve(questions, k)
        retrieve_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        answers = qa.ask_many(questions, k)
        seconds = time.perf_counter() - t0  # retrieval again + reading k passages per question
        hits = [ex["paragraph_id"] in [pid for pid, _ in r] for ex, r in zip(examples, retrieved)]
        out[f"k={k}"] = {
            **squad_scores({ex["id"]: a.text for ex, a in zip(examples, answers)}, _references(examples)),
            "hit": 100.0 * sum(hits) / len(hits),
            "answer_from_gold_paragraph": 100.0
            * sum(a.passage_id == ex["paragraph_id"] for a, ex in zip(answers, examples))
            / len(examples),
            "retrieve_seconds": retrieve_seconds,
            "read_seconds": max(seconds - retrieve_seconds, 0.0),
        }
    return out


def _references(examples: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {ex["id"]: ex["answers"] for ex in examples}
