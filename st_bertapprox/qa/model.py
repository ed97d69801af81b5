"""Extractive question answering with a reasoning-type head on our from-scratch BERT.

Two heads share one :class:`~st_bertapprox.modules.bert.Bert` encoder, as BERT reads SQuAD (Devlin et al. 2019, §4.2):

* ``qa_outputs``: a linear map of every token vector to a start and an end logit; the answer is the span that
  maximises ``start_logit[i] + end_logit[j]`` (``j >= i``). Attribute name and loss are those of HF
  ``BertForQuestionAnswering``, so a saved reader loads there too (encoder + span head);
* ``reasoning_classifier``: a linear classifier over a pooled vector that names the kind of reasoning a question asks
  for (``REASONING_TYPES``; on SQuAD-style data the labels are weak, see ``st_bertapprox.qa.reasoning``). The pooled
  vector is the encoder's tanh pooler (``tanh(dense(x))``) over ``reasoning_pooling``: ``cls``, the [CLS] vector
  (BERT's sentence-pair classification), or ``question_mean`` (the default), the mean of the question segment's
  vectors ([CLS], question, [SEP]: ``token_type_ids == 0``), the pooling all-MiniLM-L6-v2 was trained with.

The loss is ``(CE(start) + CE(end)) / 2 + reasoning_loss_weight * CE(reasoning)``; positions outside the input and
the label -100 are ignored, as in HF.

A saved reader is an HF folder: ``config.json`` (``architectures: ["BertForQuestionAnswering"]`` plus our keys
``reasoning_labels``, ``reasoning_loss_weight``, ``reasoning_pooling`` and, for a trained reader, ``reader_windows``:
the windows and answer length it was trained with, which :class:`~st_bertapprox.qa.reader.Reader` reads with by
default), ``model.safetensors`` with HF key names (``bert.*``, ``qa_outputs.*``, ``reasoning_classifier.*``) and the
tokenizer. ``transformers.AutoModelForQuestionAnswering``
reads the encoder and span head from it (it reports the reasoning head as unused); ``AutoModel`` reads the encoder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.utils import ModelOutput

from st_bertapprox.modules.checks import find_file
from st_bertapprox.modules.io import load_config_file, save_json, save_tensors

from ..modules.bert import Bert, BertConfig, BertPooler, check_and_load, convert_hf_state_dict, load_hf_state_dict
from .reasoning import REASONING_TYPES

REASONING_POOLINGS = ("cls", "question_mean")
# QAConfig's names of the windows and the decoding length a reader is trained and evaluated with
READER_WINDOWS = ("max_length", "doc_stride", "max_query_length", "max_answer_length")
IGNORE_INDEX = -100  # reasoning label of a feature without one (torch's and HF's default ignore index)


@dataclass
class QuestionAnsweringWithReasoningOutput(ModelOutput):
    """What :class:`BertForQuestionAnsweringWithReasoning` returns (a ``ModelOutput``: attribute, key or index access).

    Attributes:
        loss: The combined loss, when labels were given.
        start_logits: (B, T) answer-start logit of every token.
        end_logits: (B, T) answer-end logit of every token.
        reasoning_logits: (B, R) logits over ``reasoning_labels``.
    """

    loss: Tensor | None = None
    start_logits: Tensor | None = None
    end_logits: Tensor | None = None
    reasoning_logits: Tensor | None = None


class BertForQuestionAnsweringWithReasoning(nn.Module):
    """Our :class:`Bert` with a span head (start/end logits per token) and a reasoning-type head (pooled vector).

    The defaults of ``reasoning_loss_weight`` and ``reasoning_pooling`` are :class:`~st_bertapprox.config.QAConfig`'s
    (``tests/test_defaults.py`` pins them); a saved reader's ``config.json`` records its own values.

    Args:
        config: The encoder's :class:`BertConfig` (or an HF-style dict).
        reasoning_labels: Names of the reasoning types, in the classifier's order.
        reasoning_loss_weight: Weight of the reasoning cross-entropy next to the span loss.
        reasoning_pooling: ``question_mean`` or ``cls``: what the pooler reads for the reasoning head.
        encoder: A loaded :class:`Bert` to start from (default: random, HF initialisation).
        reader_windows: The windows and answer length the reader is trained with (``READER_WINDOWS``, QAConfig's
            names and meaning), saved in ``config.json`` so that a loaded reader reads with them; None: not recorded.

    Example::

        from st_bertapprox.data.shared import teacher_path

        model = BertForQuestionAnsweringWithReasoning.from_pretrained(teacher_path())  # MiniLM, fresh heads
        out = model(input_ids, attention_mask, token_type_ids)  # out.start_logits: (B, T)
        model.save_pretrained("runs/qa/reader", tokenizer)  # transformers.BertForQuestionAnswering reads it
    """

    def __init__(
        self,
        config: BertConfig | dict,
        reasoning_labels: list[str] | tuple[str, ...] = REASONING_TYPES,
        reasoning_loss_weight: float = 0.5,
        reasoning_pooling: str = "question_mean",
        encoder: Bert | None = None,
        reader_windows: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        config = config if isinstance(config, BertConfig) else BertConfig.from_hf_dict(config)
        if not reasoning_labels or len(set(reasoning_labels)) != len(reasoning_labels):
            raise ValueError(f"reasoning_labels must be distinct names, at least one; got {list(reasoning_labels)}")
        if reasoning_loss_weight < 0:
            raise ValueError(f"reasoning_loss_weight must be >= 0, got {reasoning_loss_weight}")
        if reasoning_pooling not in REASONING_POOLINGS:
            raise ValueError(f"reasoning_pooling must be one of {REASONING_POOLINGS}, got {reasoning_pooling!r}")
        self.reasoning_pooling = reasoning_pooling
        self.reader_windows = check_reader_windows(reader_windows)
        self.config = config
        self.reasoning_labels = list(reasoning_labels)
        self.reasoning_loss_weight = float(reasoning_loss_weight)
        self.bert = encoder if encoder is not None else Bert(config, add_pooling_layer=True)
        if self.bert.pooler is None:  # a checkpoint saved without a pooler: a fresh one (HF would do the same)
            self.bert.pooler = BertPooler(config)
            self.bert.pooler.apply(self.bert._init_weights)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)  # HF BertForQuestionAnswering: num_labels = 2
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.reasoning_classifier = nn.Linear(config.hidden_size, len(self.reasoning_labels))
        for head in (self.qa_outputs, self.reasoning_classifier):
            head.apply(self.bert._init_weights)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        start_positions: Tensor | None = None,
        end_positions: Tensor | None = None,
        reasoning_labels: Tensor | None = None,
        **kwargs: Any,
    ) -> QuestionAnsweringWithReasoningOutput:
        """Span and reasoning logits of a batch; ``loss`` sums the span and weighted reasoning losses of the labels
        given (None without labels)."""
        hidden, pooled = self.bert(input_ids, attention_mask, token_type_ids)  # (B, T, C), (B, C)
        start_logits, end_logits = self.qa_outputs(hidden).unbind(-1)  # (B, T) each
        if self.reasoning_pooling == "question_mean":
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            if token_type_ids is not None:
                mask = mask * (token_type_ids == 0)  # [CLS] question [SEP]
            m = mask[..., None].to(hidden.dtype)  # (B, T, 1)
            pooled = torch.tanh(self.bert.pooler.dense((hidden * m).sum(1) / m.sum(1).clamp(min=1)))  # (B, C)
        reasoning_logits = self.reasoning_classifier(self.dropout(pooled))  # (B, R)
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = span_loss(start_logits, end_logits, start_positions, end_positions)
        if reasoning_labels is not None and self.reasoning_loss_weight > 0:
            labels = reasoning_labels.view(-1)
            if bool((labels != IGNORE_INDEX).any()):  # an all-ignored batch would give a NaN mean
                reasoning = F.cross_entropy(reasoning_logits, labels, ignore_index=IGNORE_INDEX)
                weighted = self.reasoning_loss_weight * reasoning
                loss = weighted if loss is None else loss + weighted
        return QuestionAnsweringWithReasoningOutput(
            loss=loss, start_logits=start_logits, end_logits=end_logits, reasoning_logits=reasoning_logits
        )

    def hf_config(self) -> dict[str, Any]:
        """The ``config.json`` of a saved reader: HF's BERT keys, the QA architecture and our head's keys."""
        return {
            **self.config.to_hf_dict(),
            "architectures": ["BertForQuestionAnswering"],
            "reasoning_labels": self.reasoning_labels,
            "reasoning_loss_weight": self.reasoning_loss_weight,
            "reasoning_pooling": self.reasoning_pooling,
            **({"reader_windows": dict(self.reader_windows)} if self.reader_windows is not None else {}),
        }

    def save_pretrained(self, output_dir: str | os.PathLike, tokenizer: Any = None) -> None:
        """Write ``config.json``, ``model.safetensors`` (HF key names) and, if given, the tokenizer."""
        os.makedirs(output_dir, exist_ok=True)
        save_json(self.hf_config(), os.path.join(output_dir, "config.json"))
        state = {f"bert.{k}": v for k, v in self.bert.state_dict().items()}
        state |= {f"qa_outputs.{k}": v for k, v in self.qa_outputs.state_dict().items()}
        state |= {f"reasoning_classifier.{k}": v for k, v in self.reasoning_classifier.state_dict().items()}
        save_tensors(state, os.path.join(output_dir, "model.safetensors"))
        if tokenizer is not None:
            tokenizer.save_pretrained(output_dir)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, reasoning_loss_weight: float | None = None, reasoning_pooling: str | None = None
    ) -> BertForQuestionAnsweringWithReasoning:
        """A saved reader, or any HF BERT checkpoint (a bare encoder gets fresh heads); the keyword arguments, if
        given, override what the checkpoint's ``config.json`` says.

        The encoder goes through the same loading as :class:`Bert` (``bert.`` prefix stripped, ``cls.*`` dropped,
        strict keys and shapes); the heads load strictly when the checkpoint has them.

        Raises:
            FileNotFoundError: no ``config.json`` / weights.
            ValueError: the weights do not fit the config, or a head is missing or misshapen.
        """
        path = os.fspath(path)
        config_path = find_file(path, "config.json")
        if config_path is None:
            raise FileNotFoundError(
                f"No config.json in {path!r}: pass a saved reader or an HF BERT checkpoint folder."
            )
        hf = load_config_file(config_path)
        state_dict = dict(load_hf_state_dict(path))  # model.safetensors, else pytorch_model.bin
        heads = {k: state_dict.pop(k) for k in list(state_dict) if k.split(".")[0] in _HEADS}
        encoder_state = convert_hf_state_dict(state_dict)
        config = BertConfig.from_hf_dict(hf, source=config_path)
        encoder = Bert(config, add_pooling_layer="pooler.dense.weight" in encoder_state)
        check_and_load(encoder, encoder_state, source=path)
        model = cls(config, encoder=encoder, **_head_kwargs(hf, reasoning_loss_weight, reasoning_pooling))
        if heads:  # a saved reader; a bare encoder checkpoint keeps the fresh heads
            check_and_load(_Heads(model), heads, source=path)
        return model


_HEADS = ("qa_outputs", "reasoning_classifier")


class _Heads(nn.Module):
    """A view of a reader's two heads, so a mismatching checkpoint gets ``check_and_load``'s error message."""

    def __init__(self, model: BertForQuestionAnsweringWithReasoning) -> None:
        super().__init__()
        self.qa_outputs, self.reasoning_classifier = model.qa_outputs, model.reasoning_classifier


def _head_kwargs(hf: dict[str, Any], weight: float | None, pooling: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"reasoning_labels": hf.get("reasoning_labels") or list(REASONING_TYPES)}
    out["reader_windows"] = hf.get("reader_windows")  # None: a bare encoder, or a reader saved before they were
    if weight is not None or "reasoning_loss_weight" in hf:
        out["reasoning_loss_weight"] = weight if weight is not None else hf["reasoning_loss_weight"]
    if pooling is not None or "reasoning_pooling" in hf:
        out["reasoning_pooling"] = pooling if pooling is not None else hf["reasoning_pooling"]
    return out


def check_reader_windows(windows: dict[str, Any] | None) -> dict[str, int] | None:
    """``windows`` as a plain dict, checked: only ``READER_WINDOWS`` keys, integers >= 0 (None passes).

    Raises:
        ValueError: an unknown key or a value that is not an integer >= 0.
    """
    if windows is None:
        return None
    if not isinstance(windows, dict):
        raise ValueError(f"reader_windows must be a dict of {READER_WINDOWS}, got {windows!r}")
    unknown = sorted(set(windows) - set(READER_WINDOWS))
    bad = {k: v for k, v in windows.items() if type(v) is not int or v < 0}
    if unknown or bad:
        raise ValueError(
            f"reader_windows must map some of {READER_WINDOWS} to integers >= 0; got unknown keys {unknown}, "
            f"bad values {bad}"
        )
    return dict(windows)


def span_loss(start_logits: Tensor, end_logits: Tensor, start_positions: Tensor, end_positions: Tensor) -> Tensor:
    """HF ``BertForQuestionAnswering``'s loss: mean of the start and end cross-entropies; positions outside the
    input (clamped to ``T``) are ignored."""
    T = start_logits.size(1)
    start = start_positions.view(-1).clamp(0, T)
    end = end_positions.view(-1).clamp(0, T)
    return (
        F.cross_entropy(start_logits, start, ignore_index=T) + F.cross_entropy(end_logits, end, ignore_index=T)
    ) / 2
