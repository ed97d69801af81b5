"""Retrieval-augmented extractive question answering on the from-scratch BERT (issue #15).

* :class:`BertForQuestionAnsweringWithReasoning` (``model``): span and reasoning-type heads on our ``Bert``;
* ``features``: SQuAD-style windows and answer positions; ``reasoning``: weak reasoning labels from the question;
* ``metric``: SQuAD v1.1 exact match / F1; ``train``: the article split and ``transformers.Trainer``;
* :class:`Reader` (``reader``): read passages; ``documents``: text / Markdown / PDF -> sentence-window passages;
* :class:`DocumentQA` (``pipeline``): retrieve passages with any sentence model, read them, answer.
"""

from __future__ import annotations

from .model import BertForQuestionAnsweringWithReasoning, QuestionAnsweringWithReasoningOutput
from .pipeline import Answer, DocumentQA
from .reader import Reader, ReaderAnswer
from .reasoning import REASONING_TYPES, weak_reasoning_label

__all__ = [
    "REASONING_TYPES",
    "Answer",
    "DocumentQA",
    "BertForQuestionAnsweringWithReasoning",
    "QuestionAnsweringWithReasoningOutput",
    "Reader",
    "ReaderAnswer",
    "weak_reasoning_label",
]
