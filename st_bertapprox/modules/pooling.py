"""`MLPMeanPooling`: a per-token MLP, then masked mean pooling.

Each layer is ``act(linear(x))`` plus, with ``residual=True``, the input (through a bias-free projection when the
widths differ) -- exactly the computation of sentence-transformers' ``Dense(..., use_residual=...)``, so a trained
module exports 1:1 to built-in ``Dense`` modules + ``Pooling("mean")`` (see ``st_bertapprox.persistence.saving``).
"""

from __future__ import annotations

from typing import Any

from sentence_transformers.sentence_transformer.modules import Module
from torch import Tensor, nn

from .base import ConfigAndWeights
from .checks import warn_unknown_kwargs

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh, "silu": nn.SiLU, "identity": nn.Identity}


class MLPLayer(nn.Module):
    """``act(linear(dropout(x))) (+ residual)``, parameter names as in ST ``Dense`` (``linear``, ``residual``)."""

    def __init__(self, d_in: int, d_out: int, activation: str, dropout: float, residual: bool) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_in, d_out)
        self.act = ACTIVATIONS[activation]()
        self.use_residual = residual
        if residual and d_in != d_out:
            self.residual = nn.Linear(d_in, d_out, bias=False)
        if residual:  # start as the identity map: fine-tuning begins from plain mean pooling
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layer to (..., d_in) features, giving (..., d_out)."""
        out = self.act(self.linear(self.dropout(x)))
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        return out


class MLPMeanPooling(ConfigAndWeights, Module):
    """Per-token MLP on ``token_embeddings``, then masked mean pooling into ``sentence_embedding``.

    Args:
        embedding_dimension: Width of the incoming token embeddings.
        hidden_dims: Widths of the hidden layers (each followed by ``activation``). ``[]`` gives a single
            linear output layer.
        output_dim: Width of the sentence embedding; defaults to ``embedding_dimension``.
        activation: ``"gelu"``, ``"relu"``, ``"tanh"``, ``"silu"`` for hidden layers.
        output_activation: Activation of the output layer, ``"identity"`` by default.
        dropout: Dropout on the input of every layer (training only).
        residual: Add each layer's input to its output. Residual layers are zero-initialised, so a fresh module
            equals plain mean pooling.

    Example::

        from st_bertapprox import BertTransformer, MLPMeanPooling

        bert = BertTransformer("sentence-transformers/all-MiniLM-L6-v2")
        pool = MLPMeanPooling(bert.get_embedding_dimension(), hidden_dims=[384], residual=True)
        model = SentenceTransformer(modules=[bert, pool])
    """

    config_keys: list[str] = [
        "embedding_dimension",
        "hidden_dims",
        "output_dim",
        "activation",
        "output_activation",
        "dropout",
        "residual",
    ]
    config_file_name: str = "mlp_mean_pooling_config.json"

    def __init__(
        self,
        embedding_dimension: int,
        hidden_dims: list[int] | tuple[int, ...] = (384,),
        output_dim: int | None = None,
        activation: str = "gelu",
        output_activation: str = "identity",
        dropout: float = 0.0,
        residual: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        warn_unknown_kwargs("MLPMeanPooling", kwargs)
        for name in (activation, output_activation):
            if name not in ACTIVATIONS:
                raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
        self.embedding_dimension = embedding_dimension
        self.hidden_dims = list(hidden_dims)
        self.output_dim = output_dim or embedding_dimension
        self.activation = activation
        self.output_activation = output_activation
        self.dropout = dropout
        self.residual = residual
        widths = [embedding_dimension, *self.hidden_dims, self.output_dim]
        acts = [activation] * len(self.hidden_dims) + [output_activation]
        self.layers = nn.ModuleList(
            MLPLayer(d_in, d_out, act, dropout, residual) for d_in, d_out, act in zip(widths[:-1], widths[1:], acts)
        )

    def forward(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        """Run the MLP on every token, then mean-pool over unmasked tokens into ``sentence_embedding``."""
        x = features["token_embeddings"]  # (B, T, C)
        for layer in self.layers:
            x = layer(x)  # (B, T, C')
        mask = features["attention_mask"].unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        features["sentence_embedding"] = (x * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, C')
        return features

    def get_embedding_dimension(self) -> int:
        """The width of the sentence embedding, ``output_dim``."""
        return self.output_dim
