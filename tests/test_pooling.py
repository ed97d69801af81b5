"""MLPMeanPooling: padding invariance, identity start, save/load, export to built-in Dense + Pooling."""

from __future__ import annotations

import json

import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling

from st_bertapprox import MLPMeanPooling
from st_bertapprox.persistence.saving import export_builtin


def random_features(B=3, T=7, C=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    return {"token_embeddings": torch.randn(B, T, C, generator=g), "attention_mask": mask}


@pytest.mark.parametrize("residual", [True, False])
def test_padding_does_not_change_the_result(residual):
    torch.manual_seed(0)
    pool = MLPMeanPooling(16, hidden_dims=[32, 16], output_dim=8, residual=residual).eval()
    for layer in pool.layers:  # non-trivial weights even for the zero-initialised residual variant
        torch.nn.init.normal_(layer.linear.weight, std=0.3)
    f = random_features()
    out = pool(dict(f))["sentence_embedding"]
    for i in range(3):
        n = int(f["attention_mask"][i].sum())
        alone = {"token_embeddings": f["token_embeddings"][i : i + 1, :n], "attention_mask": torch.ones(1, n)}
        assert torch.allclose(out[i], pool(alone)["sentence_embedding"][0], atol=1e-6)
    padded = {
        "token_embeddings": torch.cat([f["token_embeddings"], torch.randn(3, 5, 16) * 100], 1),
        "attention_mask": torch.cat([f["attention_mask"], torch.zeros(3, 5, dtype=torch.long)], 1),
    }
    assert torch.allclose(out, pool(padded)["sentence_embedding"], atol=1e-6)


def test_residual_module_starts_as_mean_pooling():
    f = random_features()
    ours = MLPMeanPooling(16, hidden_dims=[16], residual=True)(dict(f))["sentence_embedding"]
    ref = Pooling(16, "mean")(dict(f))["sentence_embedding"]
    assert torch.allclose(ours, ref, atol=1e-6)


def test_invalid_activation():
    with pytest.raises(ValueError, match="Unknown activation"):
        MLPMeanPooling(16, activation="swishy")


def test_round_trip_and_builtin_export(scratch_minilm, real_sentences, tmp_path):
    torch.manual_seed(0)
    pool = MLPMeanPooling(384, hidden_dims=[512], output_dim=256, residual=True, dropout=0.1)
    for layer in pool.layers:
        torch.nn.init.normal_(layer.linear.weight, std=0.05)
    model = SentenceTransformer(modules=[scratch_minilm[0], pool], device="cpu")
    ref = model.encode(real_sentences, convert_to_tensor=True)

    model.save(str(tmp_path / "custom"))
    reloaded = SentenceTransformer(str(tmp_path / "custom"), trust_remote_code=True, device="cpu")
    assert torch.equal(reloaded.encode(real_sentences, convert_to_tensor=True), ref)

    export_builtin(model, str(tmp_path / "builtin"))
    types = [m["type"] for m in json.loads((tmp_path / "builtin" / "modules.json").read_text())]
    assert types == [
        "sentence_transformers.base.modules.transformer.Transformer",
        "sentence_transformers.base.modules.dense.Dense",
        "sentence_transformers.base.modules.dense.Dense",
        "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    ]
    plain = SentenceTransformer(str(tmp_path / "builtin"), device="cpu")  # no trust_remote_code
    assert (plain.encode(real_sentences, convert_to_tensor=True) - ref).abs().max().item() <= 1e-5
