"""BERT written from scratch, and `BertTransformer`, the sentence-transformers input module around it.

The encoder is the post-LayerNorm Transformer of Devlin et al. (2019), "BERT: Pre-training of Deep Bidirectional
Transformers for Language Understanding". Attribute paths mirror Hugging Face ``modeling_bert.py`` verbatim, so any
HF BERT ``state_dict`` loads with ``strict=True`` and no rename map, and our saved weights load into
``transformers.BertModel``. Decoder, cross-attention and KV-cache branches are left out on purpose.

This file imports only torch, transformers (for the tokenizer), sentence-transformers and its siblings ``checks``
and ``io``, so it can travel with a saved model as remote code.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from sentence_transformers.sentence_transformer.modules import InputModule
from torch import Tensor, nn

from .checks import check_local_module_folder, check_max_seq_length, find_file, warn_unknown_kwargs
from .io import load_config_file, load_tensors, save_code, save_json, save_tensors

logger = logging.getLogger(__name__)

ACTIVATIONS = {
    "gelu": F.gelu,  # exact erf GELU, HF "gelu"
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


@dataclass
class BertConfig:
    """Hyper-parameters of a BERT encoder; field names are those of HF ``BertConfig``."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12  # HF default; parity depends on it
    pad_token_id: int = 0
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act={self.hidden_act!r} is not supported; use one of {sorted(ACTIVATIONS)}")

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], source: str = "config.json") -> BertConfig:
        """Build from an HF ``config.json`` dict, refusing checkpoints that are not plain BERT encoders."""
        model_type = d.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(
                f"{source} describes a {model_type!r} model, but BertTransformer only loads BERT checkpoints "
                "(model_type 'bert'). Use sentence_transformers.base.modules.Transformer for other architectures."
            )
        if d.get("position_embedding_type", "absolute") != "absolute" or d.get("is_decoder", False):
            raise ValueError(f"{source}: only encoder BERT with absolute position embeddings is supported.")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_hf_dict(self) -> dict[str, Any]:
        """The HF ``config.json`` dict of this config (``model_type`` "bert", ``architectures`` ["BertModel"])."""
        return {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "position_embedding_type": "absolute",
            **asdict(self),
        }


class BertEmbeddings(nn.Module):
    """Word + token-type + absolute position embeddings, then LayerNorm and dropout (HF ``BertEmbeddings``)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings)[None], persistent=False)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """Embed token ids (B, T) into (B, T, C); ``token_type_ids`` default to zeros."""
        B, T = input_ids.size()
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # (B, T, C)
        x = x + self.position_embeddings(self.position_ids[:, :T])  # (1, T, C) broadcast over B
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, without the output projection (HF ``BertSelfAttention``)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.n_head = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Attend over (B, T, C) hidden states; ``mask`` is a bool (B, 1, 1, T) True-to-attend mask, or None."""
        B, T, C = x.size()
        q = self.query(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = self.key(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = self.value(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        dropout_p = self.dropout_p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)  # (B, nh, T, hs)
        return y.transpose(1, 2).reshape(B, T, C)


class BertAddNorm(nn.Module):
    """``LayerNorm(dropout(dense(h)) + x)``: HF ``BertSelfOutput`` and ``BertOutput`` (post-LN residual)."""

    def __init__(self, d_in: int, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: Tensor, x: Tensor) -> Tensor:
        """``LayerNorm(dropout(dense(h)) + x)``: project ``h`` back to the hidden size and add the residual ``x``."""
        return self.LayerNorm(self.dropout(self.dense(h)) + x)


class BertAttention(nn.Module):
    """Self-attention followed by its add & norm output block (HF ``BertAttention``)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertAddNorm(config.hidden_size, config)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Self-attention on ``x`` (B, T, C), then ``LayerNorm(dense(attention) + x)``."""
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    """The feed-forward up-projection and activation, hidden size -> intermediate size (HF ``BertIntermediate``)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        """``act(dense(x))``: (B, T, C) -> (B, T, intermediate_size)."""
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    """One Transformer block: attention + add & norm, feed-forward + add & norm (HF ``BertLayer``)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertAddNorm(config.intermediate_size, config)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Run the block on (B, T, C) hidden states; ``mask`` as in :class:`BertSelfAttention`."""
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    """The stack of ``num_hidden_layers`` :class:`BertLayer` blocks (HF ``BertEncoder``)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Run every layer in turn on (B, T, C) hidden states, with the same ``mask``."""
        for layer in self.layer:
            x = layer(x, mask)
        return x


class BertPooler(nn.Module):
    """``tanh(dense(h_[CLS]))``, the pooled output of HF ``BertPooler``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        """Pool (B, T, C) hidden states into (B, C) from the first ([CLS]) position."""
        return torch.tanh(self.dense(x[:, 0]))  # (B, C) from the [CLS] position


class Bert(nn.Module):
    """The BERT encoder: embeddings -> N x (self-attention, add & norm, GELU feed-forward, add & norm) -> tanh pooler.

    Example::

        bert = Bert.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")
        hidden, pooled = bert(input_ids, attention_mask)  # (B, T, C), (B, C)
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:  # HF BertPreTrainedModel._init_weights
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            nn.init.zeros_(module.weight[module.padding_idx])

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Encode ``input_ids`` (B, T) into hidden states (B, T, C) and the pooled output (B, C), or None without a
        pooler. ``attention_mask`` (B, T) is 1 for real tokens, 0 for padding."""
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            # bool (B, 1, 1, T): True = attend; left as None when nothing is padded so SDPA takes its fastest kernel
            mask = attention_mask.bool()[:, None, None, :]
        x = self.encoder(self.embeddings(input_ids, token_type_ids), mask)  # (B, T, C)
        return x, (self.pooler(x) if self.pooler is not None else None)

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, **hub_kwargs: Any) -> Bert:
        """Load an HF BERT checkpoint (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``).

        ``model_name_or_path`` is a local folder or a Hub repo id; ``hub_kwargs`` are ``token``, ``cache_folder``,
        ``revision`` and ``local_files_only``.
        """
        config_path = find_file(model_name_or_path, "config.json", **hub_kwargs)
        if config_path is None:
            where = "folder" if os.path.isdir(model_name_or_path) else "path or Hub repo"
            raise FileNotFoundError(
                f"No config.json found in the {where} {model_name_or_path!r}. Pass a folder (or Hub repo id) holding "
                "an HF BERT checkpoint: config.json plus model.safetensors or pytorch_model.bin."
            )
        config = BertConfig.from_hf_dict(load_config_file(config_path), source=config_path)
        state_dict = convert_hf_state_dict(load_hf_state_dict(model_name_or_path, **hub_kwargs))
        model = cls(config, add_pooling_layer="pooler.dense.weight" in state_dict)
        check_and_load(model, state_dict, source=model_name_or_path)
        return model


def load_hf_state_dict(model_name_or_path: str, **hub_kwargs: Any) -> dict[str, Tensor]:
    """The raw ``state_dict`` of an HF checkpoint (folder or Hub repo id): ``model.safetensors``, else
    ``pytorch_model.bin`` (loaded with ``weights_only=True``); keys as saved (see :func:`convert_hf_state_dict`).

    Raises:
        FileNotFoundError: neither weights file is there.
    """
    path = find_file(model_name_or_path, "model.safetensors", **hub_kwargs)
    if path is not None:
        return load_tensors(path)
    path = find_file(model_name_or_path, "pytorch_model.bin", **hub_kwargs)
    if path is None:
        raise FileNotFoundError(f"Neither model.safetensors nor pytorch_model.bin found in {model_name_or_path!r}.")
    return torch.load(path, map_location="cpu", weights_only=True)


def convert_hf_state_dict(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The keys of a :class:`Bert` from an HF checkpoint's: the ``bert.`` prefix (task heads) stripped, ``cls.*``
    heads and the ``position_ids`` / ``token_type_ids`` buffers dropped, legacy LayerNorm ``gamma``/``beta`` renamed
    ``weight``/``bias``. Other keys (e.g. a task head's) pass through unchanged."""
    out = {}
    for key, value in state_dict.items():
        key = key.removeprefix("bert.")
        if key.startswith("cls.") or key in ("embeddings.position_ids", "embeddings.token_type_ids"):
            continue
        if "LayerNorm" in key:
            key = key.replace(".gamma", ".weight").replace(".beta", ".bias")
        out[key] = value
    return out


def check_and_load(model: nn.Module, state_dict: dict[str, Tensor], source: str) -> None:
    """``model.load_state_dict(state_dict, strict=True)`` after checking keys and shapes, with errors that name
    ``source`` (the checkpoint), up to ten missing / unexpected keys, or the first misshapen tensor.

    Raises:
        ValueError: the keys or a tensor's shape do not match ``model``.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"The checkpoint {source!r} does not match a BERT built from its config.json.\n"
            f"  missing keys: {missing[:10]}{' ...' if len(missing) > 10 else ''}\n"
            f"  unexpected keys: {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}"
        )
    for key, tensor in state_dict.items():
        if tensor.shape != expected[key].shape:
            raise ValueError(
                f"The checkpoint {source!r} has {key} of shape {tuple(tensor.shape)}, but its config.json implies "
                f"{tuple(expected[key].shape)}. The weights and config.json come from different models."
            )
    model.load_state_dict(state_dict, strict=True)


class BertTransformer(InputModule):
    """A sentence-transformers input module whose encoder is our from-scratch :class:`Bert`.

    Loads any HF BERT checkpoint (local folder or Hub repo id) with its tokenizer. ``forward`` writes
    ``token_embeddings`` (B, T, C), ``cls_token_embeddings`` (B, C) and, when the checkpoint has a pooler,
    ``pooler_output`` (B, C). A saved module is an HF-compatible folder (``config.json`` + ``model.safetensors``
    + tokenizer), readable by ``transformers.BertModel.from_pretrained``.

    Args:
        model_name_or_path: Folder or Hub repo id of an HF BERT checkpoint. None builds a randomly initialised
            model from ``config`` and ``tokenizer``.
        max_seq_length: Longer inputs are truncated. Defaults to the checkpoint's ``sentence_bert_config.json``
            value, else the tokenizer's / position-embedding limit.
        config: A :class:`BertConfig` or HF-style dict, only when ``model_name_or_path`` is None.
        tokenizer: A ``transformers`` tokenizer, only when ``model_name_or_path`` is None.

    Example::

        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
        from st_bertapprox import BertTransformer

        bert = BertTransformer("sentence-transformers/all-MiniLM-L6-v2")
        model = SentenceTransformer(modules=[bert, Pooling(bert.get_embedding_dimension(), "mean"), Normalize()])
        embeddings = model.encode(["A man is playing a guitar.", "Someone plays an instrument."])
    """

    config_keys: list[str] = ["max_seq_length"]
    config_file_name: str = "bert_transformer_config.json"

    def __init__(
        self,
        model_name_or_path: str | None = None,
        max_seq_length: int | None = None,
        *,
        config: BertConfig | dict | None = None,
        tokenizer: Any = None,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        warn_unknown_kwargs("BertTransformer", kwargs)
        if model_name_or_path is not None:
            from transformers import AutoTokenizer

            hub_kwargs = dict(
                subfolder=subfolder,
                token=token,
                cache_folder=cache_folder,
                revision=revision,
                local_files_only=local_files_only,
            )
            self.bert = Bert.from_pretrained(model_name_or_path, **hub_kwargs)
            self.tokenizer = AutoTokenizer.from_pretrained(
                model_name_or_path,
                subfolder=subfolder,
                token=token,
                cache_dir=cache_folder,
                revision=revision,
                local_files_only=local_files_only,
            )
            if max_seq_length is None:  # the limit a packaged SentenceTransformer was trained/evaluated with
                st_config = find_file(model_name_or_path, "sentence_bert_config.json", **hub_kwargs)
                max_seq_length = load_config_file(st_config).get("max_seq_length") if st_config else None
        else:
            if config is None or tokenizer is None:
                raise ValueError(
                    "Pass model_name_or_path, or both config= and tokenizer= for a randomly initialised BERT."
                )
            self.bert = Bert(config if isinstance(config, BertConfig) else BertConfig.from_hf_dict(config))
            self.tokenizer = tokenizer
        bert_config = self.bert.config
        if len(self.tokenizer) > bert_config.vocab_size:
            raise ValueError(
                f"The tokenizer has {len(self.tokenizer)} tokens but the model's word embeddings have only "
                f"{bert_config.vocab_size} rows: tokenizer and weights come from different checkpoints."
            )
        limit = min(self.tokenizer.model_max_length, bert_config.max_position_embeddings)
        if max_seq_length is not None:
            check_max_seq_length(max_seq_length, "BertTransformer")
        if max_seq_length is not None and max_seq_length > bert_config.max_position_embeddings:
            raise ValueError(
                f"max_seq_length={max_seq_length} exceeds "
                f"max_position_embeddings={bert_config.max_position_embeddings}"
            )
        self.max_seq_length = max_seq_length or limit

    @property
    def config(self) -> BertConfig:
        """The :class:`BertConfig` of the wrapped encoder."""
        return self.bert.config

    def preprocess(self, inputs: list[str] | list[tuple[str, str]], prompt: str | None = None, **kwargs: Any) -> dict:
        """Tokenize a batch of strings, or of pairs ``(text_a, text_b)`` (cross-encoder style), padded.

        Raises:
            TypeError: an element is neither a string nor a pair of strings, or strings and pairs are mixed.
            ValueError: a pair does not have exactly two texts.
        """
        if not inputs:
            return {}
        inputs = list(inputs)
        _check_batch(inputs)
        if prompt:
            inputs = (
                [prompt + t for t in inputs] if isinstance(inputs[0], str) else [(prompt + a, b) for a, b in inputs]
            )
        max_length = kwargs.get("max_length") or self.max_seq_length
        if isinstance(inputs[0], str):
            args = (list(inputs),)
        else:
            args = ([a for a, _ in inputs], [b for _, b in inputs])
        return dict(
            self.tokenizer(*args, padding=True, truncation="longest_first", max_length=max_length, return_tensors="pt")
        )

    def forward(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        """Encode tokenized features with :class:`Bert` and add its token, [CLS] and pooler embeddings to them."""
        hidden, pooled = self.bert(features["input_ids"], features["attention_mask"], features.get("token_type_ids"))
        features["token_embeddings"] = hidden  # (B, T, C)
        features["cls_token_embeddings"] = hidden[:, 0]  # (B, C)
        if pooled is not None:
            features["pooler_output"] = pooled  # (B, C), tanh(dense([CLS]))
        return features

    def get_embedding_dimension(self) -> int:
        """The hidden size of the encoder, the width of its token embeddings."""
        return self.bert.config.hidden_size

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write an HF-compatible BERT folder (config.json, model.safetensors, tokenizer) plus our module config."""
        os.makedirs(output_path, exist_ok=True)
        save_json(self.bert.config.to_hf_dict(), os.path.join(output_path, "config.json"))
        save_tensors(self.bert.state_dict(), os.path.join(output_path, "model.safetensors"))
        self.tokenizer.save_pretrained(output_path)
        save_json(self.get_config_dict(), os.path.join(output_path, self.config_file_name))
        save_code(self, output_path)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> BertTransformer:
        """Load a BertTransformer from a saved module folder, a plain HF BERT checkpoint or a Hub repo id."""
        hub_kwargs = dict(
            subfolder=subfolder,
            token=token,
            cache_folder=cache_folder,
            revision=revision,
            local_files_only=local_files_only,
        )
        check_local_module_folder(model_name_or_path, subfolder, cls.__name__)
        config_path = find_file(model_name_or_path, cls.config_file_name, **hub_kwargs)
        module_config = load_config_file(config_path) if config_path else {}  # absent in a plain HF checkpoint
        return cls(model_name_or_path, **module_config, **hub_kwargs)


def _check_batch(inputs: list) -> None:
    """All strings, or all pairs of strings: else an error naming the first bad element (position in the batch)."""
    pairs = isinstance(inputs[0], (tuple, list))
    for i, item in enumerate(inputs):
        where = f"at position {i} of the batch: {repr(item)[:80]}"
        is_pair = isinstance(item, (tuple, list))
        if not (is_pair or isinstance(item, str)):
            raise TypeError(
                f"BertTransformer expects strings or pairs (text_a, text_b) of strings, got a {type(item).__name__} "
                f"{where}. Replace missing texts (None) by ''."
            )
        if is_pair != pairs:
            raise TypeError(
                f"BertTransformer got a batch that mixes strings and pairs (a {type(item).__name__} {where}). Pass "
                "all strings, or all pairs (text_a, text_b)."
            )
        if is_pair and len(item) != 2:
            raise ValueError(
                f"BertTransformer expects pairs (text_a, text_b), got a {type(item).__name__} of {len(item)} "
                f"text(s) {where}."
            )
        if is_pair and not all(isinstance(t, str) for t in item):
            raise TypeError(f"BertTransformer expects pairs of strings, got {where}. Replace missing texts by ''.")
