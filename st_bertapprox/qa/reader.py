"""The reader at inference: a trained :class:`BertForQuestionAnsweringWithReasoning` and its tokenizer, reading
(question, passage) pairs in batches and returning the best span of each, with its reasoning type."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from ..config import QAConfig
from .features import best_spans, prepare_features
from .model import READER_WINDOWS, BertForQuestionAnsweringWithReasoning

PassageScore = Literal["span", "margin"]


@dataclass
class ReaderAnswer:
    """The reader's answer to one (question, passage) pair.

    Attributes:
        text: The answer span ("" if the passage offered no valid span).
        start_char, end_char: Its characters in the passage.
        score: ``start_logit + end_logit`` of the span.
        null_score: The [CLS] score of the same window ("no answer in this window").
        reasoning: The most likely reasoning type; ``reasoning_probs`` all of them (mean logits over windows).
    """

    text: str
    start_char: int
    end_char: int
    score: float
    null_score: float
    reasoning: str
    reasoning_probs: dict[str, float]

    @property
    def margin(self) -> float:
        """How far the span's score is above "no answer here": comparable across passages (see ``rank_score``)."""
        return self.score - self.null_score

    def rank_score(self, rule: PassageScore) -> float:
        """The score that ranks answers from different passages: the span's logits (``span``), or its ``margin``."""
        return self.margin if rule == "margin" else self.score


class Reader:
    """Read passages with a trained reader.

    Args:
        model_or_path: A :class:`BertForQuestionAnsweringWithReasoning`, or the folder it was saved to.
        tokenizer: Its tokenizer (default: the one saved in the folder).
        max_length, doc_stride, max_query_length, max_answer_length: Windows and decoding (``QAConfig``'s meaning).
            Each one not given is the value the reader was trained with (its ``config.json``'s ``reader_windows``,
            written by ``train-qa``), else ``QAConfig``'s default (a reader saved without them).
        batch_size: Windows per forward pass.

    Example::

        reader = Reader("runs/qa/reader")
        answer = reader.read(["Who won Super Bowl 50?"], [passage])[0]  # ReaderAnswer(text="Denver Broncos", ...)
    """

    def __init__(
        self,
        model_or_path: BertForQuestionAnsweringWithReasoning | str | os.PathLike,
        tokenizer: Any = None,
        max_length: int | None = None,
        doc_stride: int | None = None,
        max_query_length: int | None = None,
        max_answer_length: int | None = None,
        batch_size: int = 32,
    ) -> None:
        if isinstance(model_or_path, BertForQuestionAnsweringWithReasoning):
            self.model = model_or_path
            if tokenizer is None:
                raise ValueError("Reader(model) needs the model's tokenizer= (a folder brings its own).")
        else:
            self.model = BertForQuestionAnsweringWithReasoning.from_pretrained(model_or_path)
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(os.fspath(model_or_path))
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("The reader needs a fast tokenizer (offset mappings).")
        self.tokenizer = tokenizer
        given = dict(
            max_length=max_length,
            doc_stride=doc_stride,
            max_query_length=max_query_length,
            max_answer_length=max_answer_length,
        )
        saved, fallback = getattr(self.model, "reader_windows", None) or {}, QAConfig()
        for name in READER_WINDOWS:  # explicit argument, else what the reader was trained with, else the default
            value = given[name] if given[name] is not None else saved.get(name, getattr(fallback, name))
            setattr(self, name, value)
        self.batch_size = batch_size
        self.model.eval()

    @property
    def labels(self) -> list[str]:
        """The model's reasoning types, in the order of its reasoning logits."""
        return self.model.reasoning_labels

    @torch.no_grad()
    def logits(self, features: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, end, reasoning) logits of every window, padded to the longest window: (W, T), (W, T), (W, R)."""
        n = len(features)
        width = max(len(ids) for ids in features.encodings["input_ids"])
        start = np.full((n, width), -np.inf, dtype=np.float32)
        end = np.full((n, width), -np.inf, dtype=np.float32)
        reasoning = np.zeros((n, len(self.labels)), dtype=np.float32)
        order = np.argsort([len(ids) for ids in features.encodings["input_ids"]])  # similar lengths share a batch
        device = next(self.model.parameters()).device
        for b in range(0, n, self.batch_size):
            rows = order[b : b + self.batch_size]
            batch = self.tokenizer.pad(
                {k: [v[r] for r in rows] for k, v in features.encodings.items()}, return_tensors="pt"
            )
            out = self.model(**{k: v.to(device) for k, v in batch.items()})
            T = out.start_logits.size(1)
            start[rows, :T] = out.start_logits.float().cpu().numpy()
            end[rows, :T] = out.end_logits.float().cpu().numpy()
            reasoning[rows] = out.reasoning_logits.float().cpu().numpy()
        return start, end, reasoning

    def read(self, questions: list[str], passages: list[str]) -> list[ReaderAnswer]:
        """The best answer span of each (question, passage) pair, with the question's reasoning type."""
        if len(questions) != len(passages):
            raise ValueError(f"{len(questions)} questions but {len(passages)} passages: give one passage per question")
        if not questions:
            return []
        features = prepare_features(
            self.tokenizer,
            questions,
            passages,
            max_length=self.max_length,
            doc_stride=self.doc_stride,
            max_query_length=self.max_query_length,
            labels=self.labels,
        )
        start, end, reasoning = self.logits(features)
        spans = best_spans(features, passages, start, end, max_answer_length=self.max_answer_length)
        mean_logits = np.zeros((len(questions), len(self.labels)), dtype=np.float64)
        np.add.at(mean_logits, features.example_index, reasoning)
        mean_logits /= np.bincount(features.example_index, minlength=len(questions))[:, None]
        probs = np.exp(mean_logits - mean_logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        answers = []
        for i, span in enumerate(spans):
            named = {label: float(p) for label, p in zip(self.labels, probs[i])}
            reasoning_type = self.labels[int(probs[i].argmax())]
            if span is None:  # nothing valid (e.g. an empty passage): the lowest possible score
                answers.append(ReaderAnswer("", 0, 0, -np.inf, 0.0, reasoning_type, named))
            else:
                answers.append(
                    ReaderAnswer(
                        span.text, span.start_char, span.end_char, span.score, span.null_score, reasoning_type, named
                    )  # fmt: skip
                )
        return answers
