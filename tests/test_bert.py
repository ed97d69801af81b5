"""BertTransformer: parity with transformers.BertModel, ST pipelines, save/load, export, errors."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from conftest import tiny_bert_config
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer, BertModel
from transformers import BertConfig as HFBertConfig

from st_bertapprox import Bert, BertConfig, BertTransformer
from st_bertapprox.evaluation import evaluate_stsb
from st_bertapprox.persistence.saving import export_builtin


def nonpad_max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return (a - b)[mask.bool()].abs().max().item()


def test_tiny_random_parity_and_strict_load():
    torch.manual_seed(0)
    hf = BertModel(HFBertConfig(**tiny_bert_config(), attn_implementation="eager")).eval()
    ours = Bert(BertConfig.from_hf_dict(tiny_bert_config())).eval()
    ours.load_state_dict(hf.state_dict(), strict=True)  # attribute paths mirror HF: no rename map
    ids = torch.randint(1, 99, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types)
        hidden, pooled = ours(ids, mask, types)
    assert nonpad_max_diff(hidden, ref.last_hidden_state, mask) <= 1e-5
    assert (pooled - ref.pooler_output).abs().max().item() <= 1e-5


def test_real_weights_parity_padded_batch(minilm_path, real_sentences):
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    batch = tokenizer(real_sentences, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any(), "the batch must contain padding"
    hf = BertModel.from_pretrained(minilm_path, attn_implementation="sdpa").eval()
    ours = Bert.from_pretrained(minilm_path).eval()
    with torch.no_grad():
        ref = hf(**batch)
        hidden, pooled = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert nonpad_max_diff(hidden, ref.last_hidden_state, batch["attention_mask"]) <= 1e-5
    assert (pooled - ref.pooler_output).abs().max().item() <= 1e-5


def test_sentence_transformer_matches_packaged_model(scratch_minilm, packaged_minilm, real_sentences):
    texts = real_sentences + ["", "word " * 1000]  # empty text and a text far beyond max_seq_length (truncated)
    ours = scratch_minilm.encode(texts, convert_to_tensor=True)
    ref = packaged_minilm.encode(texts, convert_to_tensor=True)
    assert scratch_minilm.max_seq_length == packaged_minilm.max_seq_length == 256
    assert torch.isfinite(ours).all()
    assert (ours * ref).sum(-1).min().item() >= 0.99999


@pytest.mark.slow
def test_stsb_dev_spearman_reproduced(scratch_minilm, stsb_dev):
    assert evaluate_stsb(scratch_minilm, "dev") == pytest.approx(0.8672, abs=5e-4)


def test_forward_keys_and_builtin_modules(minilm_path, real_sentences):
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize, Pooling

    bert = BertTransformer(minilm_path)
    model = SentenceTransformer(modules=[bert, Pooling(384, "cls"), Dense(384, 128), Normalize()], device="cpu")
    emb = model.encode(real_sentences[:4], convert_to_tensor=True)
    assert emb.shape == (4, 128)
    features = bert.preprocess(real_sentences[:4])
    with torch.no_grad():
        out = bert(features)
    assert out["token_embeddings"].shape[:2] == features["input_ids"].shape
    assert torch.equal(out["cls_token_embeddings"], out["token_embeddings"][:, 0])
    assert out["pooler_output"].shape == (4, 384)


def test_save_load_round_trip_and_hf_readable(scratch_minilm, real_sentences, tmp_path):
    scratch_minilm.save(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertModel"]
    reloaded = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    assert type(reloaded[0]).__name__ == "BertTransformer"
    a = scratch_minilm.encode(real_sentences, convert_to_tensor=True)
    assert torch.equal(a, reloaded.encode(real_sentences, convert_to_tensor=True))
    # the saved folder is a plain HF BERT checkpoint
    tokenizer = AutoTokenizer.from_pretrained(str(tmp_path))
    hf = BertModel.from_pretrained(str(tmp_path)).eval()
    batch = tokenizer(real_sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden, _ = scratch_minilm[0].bert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        assert nonpad_max_diff(hidden, hf(**batch).last_hidden_state, batch["attention_mask"]) <= 1e-5


def test_custom_code_needs_trust_remote_code(scratch_minilm, tmp_path):
    scratch_minilm.save(str(tmp_path))
    with pytest.raises(ValueError, match="trust_remote_code"):
        SentenceTransformer(str(tmp_path), device="cpu")


def test_export_builtin_loads_without_custom_code(scratch_minilm, real_sentences, tmp_path):
    export_builtin(scratch_minilm, str(tmp_path))
    types = [m["type"] for m in json.loads((tmp_path / "modules.json").read_text())]
    assert all(t.startswith("sentence_transformers.") for t in types), types
    plain = SentenceTransformer(str(tmp_path), device="cpu")  # no trust_remote_code
    a = scratch_minilm.encode(real_sentences, convert_to_tensor=True)
    b = plain.encode(real_sentences, convert_to_tensor=True)
    assert (a - b).abs().max().item() <= 1e-5


# --- errors ------------------------------------------------------------------------------------------------------


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        BertTransformer(str(tmp_path / "does-not-exist"))
    with pytest.raises(FileNotFoundError, match="config.json"):
        BertTransformer(str(tmp_path))  # an existing but empty folder


def test_missing_weights_is_a_clear_error(minilm_path, tmp_path):
    shutil.copy(os.path.join(minilm_path, "config.json"), tmp_path)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        Bert.from_pretrained(str(tmp_path))


def test_non_bert_checkpoint_is_refused(minilm_path, tmp_path):
    shutil.copytree(minilm_path, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["model_type"] = "roberta"
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="'roberta'.*only loads BERT"):
        BertTransformer(str(tmp_path / "m"))


def test_wrong_shape_names_key_and_shapes(minilm_path, tmp_path):
    shutil.copytree(minilm_path, tmp_path / "m")
    weights = load_file(str(tmp_path / "m" / "model.safetensors"))
    weights["encoder.layer.3.intermediate.dense.weight"] = torch.zeros(1000, 384)
    save_file(weights, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(
        ValueError, match=r"encoder\.layer\.3\.intermediate\.dense\.weight.*\(1000, 384\).*\(1536, 384\)"
    ):
        BertTransformer(str(tmp_path / "m"))


def test_corrupt_weights_file(minilm_path, tmp_path):
    shutil.copytree(minilm_path, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="corrupt"):
        BertTransformer(str(tmp_path / "m"))


def test_bad_inputs(scratch_minilm):
    with pytest.raises(TypeError, match="expects strings"):
        scratch_minilm[0].preprocess([None])
    assert scratch_minilm[0].preprocess([]) == {}


def test_invalid_config():
    with pytest.raises(ValueError, match="multiple of num_attention_heads"):
        BertConfig(hidden_size=30, num_attention_heads=4)
