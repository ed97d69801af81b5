"""The teacher-embedding cache: resumes after an interruption, reuses texts across calls, survives a damaged chunk,
and uses sentence-transformers' multi-process pool for several devices."""

from __future__ import annotations

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from st_bertapprox.distill.teacher_cache import encode_cached
from st_bertapprox.fingerprint import model_fingerprint


@pytest.fixture(scope="module")
def teacher(minilm_path):
    return SentenceTransformer(minilm_path, device="cpu")


@pytest.fixture(scope="module")
def texts(stsb_dev):
    return list(dict.fromkeys(stsb_dev["sentence1"]))[:60]


def test_interrupted_run_resumes_and_reuses_cached_texts(teacher, texts, tmp_path, monkeypatch):
    ref = teacher.encode(texts)
    encode, encoded = teacher.encode, []

    def interrupted_after_two_chunks(batch, **kwargs):
        if len(encoded) == 2:
            raise KeyboardInterrupt("simulated interruption")
        encoded.append(len(batch))
        return encode(batch, **kwargs)

    monkeypatch.setattr(teacher, "encode", interrupted_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        encode_cached(teacher, texts, chunk_size=16, directory=tmp_path, show_progress_bar=False)
    folder = tmp_path / model_fingerprint(teacher)
    assert len(list(folder.glob("*.safetensors"))) == 2 and not list(folder.glob(".*"))  # no half-written file

    def counting(batch, **kwargs):
        encoded.append(len(batch))
        return encode(batch, **kwargs)

    monkeypatch.setattr(teacher, "encode", counting)
    encoded.clear()
    out = encode_cached(teacher, texts, chunk_size=16, directory=tmp_path, show_progress_bar=False)
    assert sum(encoded) == len(texts) - 32  # only the texts the interrupted run did not finish
    np.testing.assert_allclose(out, ref, atol=1e-5)

    encoded.clear()  # a reordered subset with duplicates is served from the cache alone
    subset = texts[::-3] + texts[:2]
    np.testing.assert_allclose(
        encode_cached(teacher, subset, directory=tmp_path, show_progress_bar=False), teacher.encode(subset), atol=1e-5
    )
    assert encoded == [len(subset)]  # the reference call above, nothing from encode_cached

    (folder / "damaged.safetensors").write_bytes(b"not a safetensors file")
    encoded.clear()
    np.testing.assert_allclose(
        encode_cached(teacher, texts, directory=tmp_path, show_progress_bar=False), ref, atol=1e-5
    )
    assert encoded == []
    with pytest.raises(ValueError, match="no texts"):
        encode_cached(teacher, [], directory=tmp_path)


@pytest.mark.slow
def test_several_devices_use_the_multi_process_pool(teacher, texts, tmp_path):
    out = encode_cached(teacher, texts, devices=["cpu", "cpu"], directory=tmp_path, show_progress_bar=False)
    np.testing.assert_allclose(out, teacher.encode(texts), atol=1e-5)


def test_cache_key_covers_the_whole_pipeline(minilm_path, teacher, texts, tmp_path):
    """Teachers that differ only in pooling, normalisation, max_seq_length or prompts never share cached rows."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    def variant(**changes):
        model = SentenceTransformer(minilm_path, device="cpu")
        if "pooling" in changes:
            model[1] = Pooling(384, changes["pooling"])
        if changes.get("no_normalize"):
            del model[2]
        if "max_seq_length" in changes:
            model.max_seq_length = changes["max_seq_length"]
        if "prompt" in changes:
            model.prompts = {"query": changes["prompt"]}
            model.default_prompt_name = "query"
        return model

    variants = [
        teacher,
        variant(pooling="cls"),
        variant(no_normalize=True),
        variant(max_seq_length=8),
        variant(prompt="query: "),
    ]
    assert isinstance(teacher[2], Normalize)
    keys = [model_fingerprint(m) for m in variants]
    assert len(set(keys)) == len(keys), keys
    assert model_fingerprint(variant()) == keys[0]  # the same pipeline, loaded again: the same key
    for model in variants:  # through the cache, each variant gets its own embeddings, not the first one's
        out = encode_cached(model, texts[:8], directory=tmp_path, show_progress_bar=False)
        np.testing.assert_allclose(out, model.encode(texts[:8]), atol=1e-5)


def test_non_finite_chunk_is_deleted_and_re_encoded(teacher, texts, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    ref = encode_cached(teacher, texts[:16], directory=tmp_path, show_progress_bar=False)
    (chunk,) = (tmp_path / model_fingerprint(teacher)).glob("*.safetensors")
    tensors = load_file(chunk)
    tensors["embeddings"][3] = torch.nan
    save_file(tensors, chunk)
    out = encode_cached(teacher, texts[:16], directory=tmp_path, show_progress_bar=False)
    assert np.isfinite(out).all() and not chunk.exists()
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_a_teacher_giving_nan_is_refused(teacher, texts, tmp_path, monkeypatch):
    monkeypatch.setattr(teacher, "encode", lambda batch, **kw: np.full((len(batch), 384), np.nan, np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        encode_cached(teacher, texts[:4], directory=tmp_path, show_progress_bar=False)
    assert not list((tmp_path / model_fingerprint(teacher)).glob("*.safetensors"))
