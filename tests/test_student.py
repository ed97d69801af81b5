"""The student: DeepSets invariants, folding, save/load (with and without st-bertapprox), errors, and a tiny
end-to-end build-vocab -> distill -> encode run on the real MiniLM teacher and real sentences."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize

from st_bertapprox.config import DistillConfig, StudentConfig, VocabConfig
from st_bertapprox.distill.mining import embed_vocab, mine_vocab
from st_bertapprox.distill.student import build_student, distill
from st_bertapprox.evaluation import TeacherAgreementEvaluator
from st_bertapprox.inference.numpy_student import NumpyStudent
from st_bertapprox.modules.student import DeepSetsPooling, VocabSetEncoder, fold_student
from st_bertapprox.modules.vocab import NGramVocab
from st_bertapprox.persistence.saving import save_with_code


def random_pooling(pooling="attention", heads=4, seed=0, context_layers=0) -> DeepSetsPooling:
    torch.manual_seed(seed)
    kw = dict(context_layers=context_layers, context_dim=8, context_heads=2)
    pool = DeepSetsPooling(16, phi_hidden_dim=32, num_heads=heads, rho_hidden_dim=24, pooling=pooling, **kw).eval()
    for p in pool.parameters():  # not the zero-initialised residual branches: every part must be exercised
        torch.nn.init.normal_(p, std=0.3)
    return pool


def features(ids: torch.Tensor, table: torch.Tensor) -> dict:
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_embeddings": table[ids]}


TABLE = torch.randn(12, 16, generator=torch.Generator().manual_seed(1))
IDS = torch.tensor([[3, 5, 7, 0, 0], [2, 2, 9, 11, 4], [6, 0, 0, 0, 0], [0, 0, 0, 0, 0]])


@pytest.mark.parametrize("context_layers", [0, 2])
@pytest.mark.parametrize("pooling, heads", [("attention", 4), ("attention", 1), ("mean", 1)])
def test_permutation_and_padding_invariance(pooling, heads, context_layers):
    pool = random_pooling(pooling, heads, context_layers=context_layers)
    out = pool(features(IDS, TABLE))["sentence_embedding"]
    perm = IDS[:, torch.tensor([4, 2, 0, 3, 1])]  # shuffle entries (and pads) within every row
    assert torch.allclose(out, pool(features(perm, TABLE))["sentence_embedding"], atol=1e-6)
    padded = torch.cat([IDS, torch.zeros(4, 7, dtype=torch.long)], 1)
    f = features(padded, TABLE)
    f["token_embeddings"][:, 5:] = 1e4  # garbage under padding must not leak
    assert torch.allclose(out, pool(f)["sentence_embedding"], atol=1e-6)


@pytest.mark.parametrize("context_layers", [0, 1])
def test_empty_set_is_zero_and_gradients_stay_finite(context_layers):
    pool = random_pooling(context_layers=context_layers).train()
    f = features(IDS, TABLE.clone().requires_grad_())
    out = pool(f)["sentence_embedding"]
    assert torch.equal(out[3], torch.zeros(16))  # the all-padding row
    out.pow(2).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in pool.parameters() if p.grad is not None)


def tiny_student(context_layers=0) -> SentenceTransformer:
    vocab = NGramVocab(["new", "york", "new york", "city", "is", "big"], ["new _ city"], ["c", "##a", "!"])
    torch.manual_seed(0)
    encoder = VocabSetEncoder(vocab, torch.randn(len(vocab), 16))
    pooling = random_pooling(context_layers=context_layers)
    return SentenceTransformer(modules=[encoder, pooling, Normalize()], device="cpu")


TEXTS = ["New York city is big", "ca", "big big city!", "", "!!"]


@pytest.mark.parametrize("context_layers", [0, 2])
def test_folded_equals_unfolded(context_layers):
    student = tiny_student(context_layers)
    folded = fold_student(student)
    extra = 3 * 8 if context_layers else 0  # the first context block's q, k, v (context_dim 8)
    assert folded[0].get_embedding_dimension() == 16 and folded[0].embeddings.embedding_dim == 16 + 4 + extra
    assert not hasattr(folded[1], "phi")
    assert hasattr(folded[1], "attn") == hasattr(folded[1], "context") == bool(context_layers)
    assert np.abs(folded.encode(TEXTS) - student.encode(TEXTS)).max() <= 1e-5
    half = fold_student(student, storage_dtype="float16")
    assert np.abs(half.encode(TEXTS) - student.encode(TEXTS)).max() <= 5e-3


@pytest.mark.parametrize("context_layers", [0, 1])
def test_numpy_student_equals_folded(tmp_path, context_layers):
    folded = fold_student(tiny_student(context_layers))
    save_with_code(folded, str(tmp_path / "folded"))
    fast = NumpyStudent.from_pretrained(str(tmp_path / "folded"))
    ref = folded.encode(TEXTS)
    for batch_size in (1, 2, 64):
        assert np.abs(fast.encode(TEXTS, batch_size=batch_size) - ref).max() <= 1e-5
    assert not fast.encode("").any() and fast.encode("big city").shape == (16,)
    save_with_code(tiny_student(), str(tmp_path / "unfolded"))
    with pytest.raises(ValueError, match="unfolded student: fold it first"):
        NumpyStudent.from_pretrained(str(tmp_path / "unfolded"))
    with pytest.raises(FileNotFoundError, match="no modules.json"):
        NumpyStudent.from_pretrained(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="contextual students of one context block; this one has 2"):
        NumpyStudent.from_model(fold_student(tiny_student(context_layers=2)))
    older = fold_student(tiny_student(context_layers=1))
    older[0].folded_context = 0  # as a model folded by an older version, whose table has no q k v columns
    with pytest.raises(ValueError, match="does not hold the context block's queries"):
        NumpyStudent.from_model(older)


def test_entry_positions_ablation_sees_order_and_still_folds():
    pool = random_pooling(context_layers=1)
    torch.manual_seed(2)
    positioned = DeepSetsPooling(**{**pool.get_config_dict(), "context_positions": 3}).eval()
    positioned.load_state_dict(pool.state_dict(), strict=False)
    f = features(IDS, TABLE)
    assert torch.equal(positioned(dict(f))["sentence_embedding"], pool(dict(f))["sentence_embedding"])  # zero init
    torch.nn.init.normal_(positioned.context[0].positions, std=1.0)
    out = positioned(features(IDS, TABLE))["sentence_embedding"]
    swapped = IDS[:, torch.tensor([1, 0, 2, 3, 4])]
    assert not torch.allclose(out[:2], positioned(features(swapped, TABLE))["sentence_embedding"][:2], atol=1e-3)
    padded = features(torch.cat([IDS, torch.zeros(4, 7, dtype=torch.long)], 1), TABLE)  # beyond the 3 offsets
    assert torch.allclose(out, positioned(padded)["sentence_embedding"], atol=1e-6)
    student = tiny_student(context_layers=1)
    student[1] = positioned
    folded = fold_student(student)
    assert np.abs(folded.encode(TEXTS) - student.encode(TEXTS)).max() <= 1e-5
    with pytest.raises(ValueError, match="order-free contextual students"):
        NumpyStudent.from_model(folded)


# Prologue of code run in a fresh interpreter where importing st_bertapprox fails, as on a machine without it.
WITHOUT_PACKAGE = r"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0].startswith("st_bertapprox"):  # the package and its top-level module names
            raise ImportError("st_bertapprox is not installed here")
sys.meta_path.insert(0, Block())
from sentence_transformers import SentenceTransformer
"""

BLOCKED_LOAD = (
    WITHOUT_PACKAGE
    + r"""
model = SentenceTransformer(sys.argv[1], trust_remote_code=True, device="cpu")
print(json.dumps({"module": type(model[0]).__module__, "emb": model.encode(json.loads(sys.argv[2])).tolist()}))
"""
)


@pytest.mark.slow
@pytest.mark.parametrize("context_layers", [0, 1])
@pytest.mark.parametrize("folded", [False, True])
def test_save_load_round_trip_with_and_without_the_package(tmp_path, folded, context_layers):
    student = tiny_student(context_layers)
    student = fold_student(student) if folded else student
    ref = student.encode(TEXTS)
    save_with_code(student, str(tmp_path))
    again = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    assert np.array_equal(again.encode(TEXTS), ref)
    run = subprocess.run(
        [sys.executable, "-c", BLOCKED_LOAD, str(tmp_path), json.dumps(TEXTS)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["module"].startswith("transformers_modules.")  # the code came from the folder, not our package
    assert np.abs(np.array(out["emb"]) - ref).max() <= 1e-6


def test_encoder_errors(tmp_path):
    vocab = NGramVocab(["a", "b"])
    with pytest.raises(ValueError, match="do not belong together"):
        VocabSetEncoder(vocab, torch.zeros(7, 8))
    with pytest.raises(FileNotFoundError, match="not a VocabSetEncoder folder"):
        VocabSetEncoder.load(str(tmp_path))
    with pytest.raises(TypeError, match="expects strings"):
        VocabSetEncoder(vocab, torch.zeros(len(vocab), 8)).preprocess(["ok", 3])
    VocabSetEncoder(vocab, torch.zeros(len(vocab), 8)).save(str(tmp_path))
    other = NGramVocab(["a", "c"])  # same size, different entries
    other.save(str(tmp_path / "vocab.json"))
    with pytest.raises(ValueError, match="fingerprint mismatch"):
        VocabSetEncoder.load(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 16)
    vocab.save(str(tmp_path / "vocab.json"))
    with pytest.raises(ValueError, match="corrupt"):
        VocabSetEncoder.load(str(tmp_path))


@pytest.mark.slow
def test_tiny_end_to_end_distillation_on_real_teacher(minilm_path, stsb_train, tmp_path, monkeypatch):
    """build-vocab -> distill -> encode with all-MiniLM-L6-v2 as teacher, on real STS-B sentences."""
    monkeypatch.setenv("ST_BERTAPPROX_CACHE", str(tmp_path / "cache"))
    teacher = SentenceTransformer(minilm_path, device="cpu")
    sentences = list(dict.fromkeys(list(stsb_train["sentence1"]) + list(stsb_train["sentence2"])))[:1800]
    train, heldout = sentences[:1500], sentences[1500:]
    config = VocabConfig(max_unigrams=2000, max_ngrams=600, max_skipgrams=200, min_count=2)
    vocab = mine_vocab(train, config, show_progress_bar=False)
    assert vocab.num_skipgrams > 0 and vocab.num_ngrams > 500
    encoder = embed_vocab(vocab, teacher, show_progress_bar=False)
    encoder.save(str(tmp_path / "vocab"))
    encoder = VocabSetEncoder.load(str(tmp_path / "vocab"))
    assert all(encoder.preprocess([t])["attention_mask"].sum() > 0 for t in heldout)  # no held-out text is empty

    heldout_emb = teacher.encode(heldout)
    agreement = TeacherAgreementEvaluator(heldout, heldout_emb)
    arch = StudentConfig(phi_hidden_dim=64, num_heads=4, rho_hidden_dim=64, adapter_rank=0)
    before = agreement(build_student(encoder, arch))
    config = DistillConfig(epochs=3, batch_size=64)
    student, metrics = distill(
        teacher,
        encoder,
        train,
        heldout,
        str(tmp_path / "run"),
        config,
        replace(arch, adapter_rank=32),
        show_progress_bar=False,
    )
    assert metrics["heldout_mse"] < 0.7 * before["heldout_mse"], (before, metrics)
    assert metrics["heldout_cosine"] > before["heldout_cosine"] + 0.05
    emb = student.encode(["A man is playing a guitar.", ""])
    assert emb.shape == (2, 384) and np.isfinite(emb).all() and not emb[1].any()
    # the numpy serving path of the folded student gives the same embeddings on real text
    save_with_code(fold_student(student), str(tmp_path / "folded"))
    fast = NumpyStudent.from_pretrained(str(tmp_path / "folded"))
    assert np.abs(fast.encode(heldout) - student.encode(heldout)).max() <= 1e-5
