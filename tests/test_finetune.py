"""STS-B fine-tuning recipe: a short real run raises the dev score; the saved model reloads and exports exactly."""

from __future__ import annotations

import torch
from sentence_transformers import SentenceTransformer

from st_bertapprox.export import export_builtin
from st_bertapprox.finetune import FinetuneConfig, finetune_stsb
from st_bertapprox.hub import CardInfo, save_pretrained


def test_short_finetune_raises_dev_spearman_and_round_trips(minilm_path, stsb_dev, real_sentences, tmp_path):
    config = FinetuneConfig(pooling="mlp", epochs=1, batch_size=16, max_train_pairs=640, seed=0)  # 40 steps
    model, res = finetune_stsb(minilm_path, str(tmp_path / "run"), config, show_progress_bar=False)
    assert abs(res["before"] - 0.8672) < 5e-4
    assert res["after"] > res["before"] + 0.001, res

    info = CardInfo("t", "d", "a", "t", "pytest", results={"stsb_dev_spearman": res["after"]})
    save_pretrained(model, str(tmp_path / "saved"), info)
    reloaded = SentenceTransformer(str(tmp_path / "saved"), trust_remote_code=True, device="cpu")
    ref = model.encode(real_sentences, convert_to_tensor=True)
    assert torch.equal(reloaded.encode(real_sentences, convert_to_tensor=True), ref)
    export_builtin(model, str(tmp_path / "builtin"))
    plain = SentenceTransformer(str(tmp_path / "builtin"), device="cpu")
    assert (plain.encode(real_sentences, convert_to_tensor=True) - ref).abs().max().item() <= 1e-5
    assert f"{res['after']:.4f}" in (tmp_path / "saved" / "README.md").read_text()
