"""(question, context) pairs -> model features, and start/end logits -> the best answer span, as the SQuAD scripts do.

Preparation follows Hugging Face's ``run_qa.py`` (``prepare_train_features``) and BERT's ``run_squad.py``:

* the question is cut to ``max_query_length`` word pieces (BERT: 64), then the pair is tokenised with
  ``truncation="only_second"``; a context longer than ``max_length`` is split into overlapping windows that share
  ``doc_stride`` word pieces (``return_overflowing_tokens``), each window one feature;
* ``offset_mapping`` maps the answer's characters to word pieces: the first context piece that starts at or after
  ``answer_start`` ... the last that ends at or before ``answer_end`` (pieces are walked from both ends of the
  window's context);
* a window that does not hold the whole answer (cut by truncation), and a question without an answer in this
  context, point both positions at [CLS] (index 0): "no answer in this window". Such windows teach the reader to put
  its weight on [CLS] where the answer is not, which is what makes its scores comparable across retrieved passages.

Decoding (``best_spans``) is ``postprocess_qa_predictions`` of ``run_qa.py``: the ``n_best`` highest start and end
logits of every window, spans inside the context with ``start <= end`` and at most ``max_answer_length`` pieces,
score ``start_logit + end_logit``, best over the windows of an example; the answer is the context's characters from
the start piece's first to the end piece's last character.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .model import IGNORE_INDEX
from .reasoning import REASONING_TYPES, weak_reasoning_label


@dataclass
class Features:
    """Model inputs of a batch of examples; one row per window.

    Attributes:
        encodings: ``input_ids``, ``token_type_ids``, ``attention_mask`` (lists of unpadded lists).
        example_index: The example each window comes from.
        offsets: Per window, the (start, end) characters of each word piece in the context, None outside it.
        start_positions, end_positions: Answer word pieces of each window (0 = [CLS]: not in this window).
        reasoning_labels: Index of the example's reasoning type in ``labels`` (-100: none given).
    """

    encodings: dict[str, list[list[int]]]
    example_index: list[int]
    offsets: list[list[tuple[int, int] | None]]
    start_positions: list[int]
    end_positions: list[int]
    reasoning_labels: list[int]

    def __len__(self) -> int:
        return len(self.example_index)

    def model_columns(self) -> dict[str, list]:
        """The columns a training set needs (``datasets.Dataset.from_dict`` of it)."""
        return {
            **self.encodings,
            "start_positions": self.start_positions,
            "end_positions": self.end_positions,
            "reasoning_labels": self.reasoning_labels,
        }


def truncate_question(tokenizer: Any, question: str, max_query_length: int) -> str:
    """The question without leading blanks (HF ``run_qa.py``), cut after its first ``max_query_length`` word pieces."""
    question = question.lstrip()
    enc = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_query_length:
        return question
    return question[: enc["offset_mapping"][max_query_length - 1][1]]


def answer_token_span(
    offsets: list[tuple[int, int] | None], answer_start: int | None, answer_text: str | None
) -> tuple[int, int]:
    """Word pieces ``(start, end)`` of the character span ``[answer_start, answer_start + len(answer_text))`` in one
    window, or ``(0, 0)`` ([CLS]) when the window does not hold all of it or there is no answer.

    ``offsets`` are the window's ``offset_mapping`` with None for every piece outside the context.
    """
    if answer_start is None or not answer_text:
        return 0, 0
    start_char, end_char = answer_start, answer_start + len(answer_text)
    context = [i for i, o in enumerate(offsets) if o is not None]
    if not context or offsets[context[0]][0] > start_char or offsets[context[-1]][1] < end_char:
        return 0, 0  # the answer is (partly) outside this window: truncation cut it
    first, last = context[0], context[-1]
    while first <= last and offsets[first][0] <= start_char:
        first += 1
    while last >= first - 1 and offsets[last][1] >= end_char:
        last -= 1
    return first - 1, last + 1


def prepare_features(
    tokenizer: Any,
    questions: list[str],
    contexts: list[str],
    answers: list[dict | None] | None = None,
    max_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
    reasoning: list[str | None] | None = None,
    labels: tuple[str, ...] | list[str] = REASONING_TYPES,
) -> Features:
    """Tokenise (question, context) pairs into windows with answer positions and reasoning labels.

    Args:
        tokenizer: A fast (``offset_mapping``) BERT tokenizer.
        questions: The question of each example.
        contexts: The context (passage) of each example, one per question.
        answers: Per example ``{"text": str, "answer_start": int}`` (SQuAD's first answer), or None: no answer.
        max_length: Word pieces per window, special tokens included.
        doc_stride: Word pieces two consecutive windows of a long context share.
        max_query_length: Questions are cut to this many word pieces.
        reasoning: Per example a reasoning type, None for none; default: the weak labels of the questions
            (``st_bertapprox.qa.reasoning``).
        labels: The reasoning types, in the head's order.

    Raises:
        ValueError: lengths disagree, or ``doc_stride`` leaves no room for a context window.
    """
    n = len(questions)
    answers = answers if answers is not None else [None] * n
    reasoning = reasoning if reasoning is not None else [weak_reasoning_label(q) for q in questions]
    if not (len(contexts) == len(answers) == len(reasoning) == n):
        raise ValueError(f"{n} questions, {len(contexts)} contexts, {len(answers)} answers, {len(reasoning)} labels")
    cut = [truncate_question(tokenizer, q, max_query_length) for q in questions]
    room = max_length - max_query_length - 3  # [CLS] q [SEP] c [SEP]
    if doc_stride >= room:
        raise ValueError(f"doc_stride={doc_stride} must be below max_length - max_query_length - 3 = {room}")
    enc = tokenizer(
        cut,
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    example_index = list(enc["overflow_to_sample_mapping"])
    offsets, starts, ends, reasons = [], [], [], []
    for row, i in enumerate(example_index):
        seq = enc.sequence_ids(row)
        window = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][row], seq)]
        answer = answers[i] or {}
        start, end = answer_token_span(window, answer.get("answer_start"), answer.get("text"))
        offsets.append(window)
        starts.append(start)
        ends.append(end)
        reasons.append(labels.index(reasoning[i]) if reasoning[i] is not None else IGNORE_INDEX)
    keys = ("input_ids", "token_type_ids", "attention_mask")
    return Features({k: enc[k] for k in keys}, example_index, offsets, starts, ends, reasons)


@dataclass
class Span:
    """The best answer of one example: text, characters in the context, score and window."""

    text: str
    start_char: int
    end_char: int
    score: float  # start_logit + end_logit
    null_score: float  # the [CLS] ("no answer here") score of the same window
    feature: int


def best_spans(
    features: Features,
    contexts: list[str],
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> list[Span | None]:
    """The best span of every example over its windows (None if no window has a valid span).

    Args:
        features: What :func:`prepare_features` made for ``contexts``.
        contexts: The context of each example, as passed to :func:`prepare_features`.
        start_logits: (windows, T) start logits (padded windows: extra columns are never in the context).
        end_logits: (windows, T) end logits, likewise.
        n_best: Spans are built from the ``n_best`` highest start and ``n_best`` highest end logits of a window.
        max_answer_length: Longest span considered, in word pieces.
    """
    best: list[Span | None] = [None] * len(contexts)
    for row, i in enumerate(features.example_index):
        offsets = features.offsets[row]
        s_logits, e_logits = start_logits[row], end_logits[row]
        length = len(offsets)
        top_start = np.argsort(s_logits[:length])[::-1][:n_best]
        top_end = np.argsort(e_logits[:length])[::-1][:n_best]
        for s in top_start:
            if offsets[s] is None:
                continue
            for e in top_end:
                if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(s_logits[s] + e_logits[e])
                if best[i] is None or score > best[i].score:
                    a, b = offsets[s][0], offsets[e][1]
                    null = float(s_logits[0] + e_logits[0])
                    best[i] = Span(contexts[i][a:b], a, b, score, null, row)
    return best
