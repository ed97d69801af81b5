"""The tiny transformer baseline (``st_bertapprox.distill.tiny``, ``st-bertapprox distill-tiny``): the PCA-projected
initialisation, shapes, save -> load (also where st-bertapprox is not installed), bad options, and the small job."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer
from test_student import WITHOUT_PACKAGE

from st_bertapprox.config import TinyConfig
from st_bertapprox.distill.tiny import build_tiny_student, pca_basis, teacher_embeddings
from st_bertapprox.persistence.cards import CardInfo
from st_bertapprox.persistence.loading import load_model
from st_bertapprox.persistence.saving import save_pretrained

TEXTS = ["A man is playing a guitar.", "New York city is big", "", "naïve café", "the " * 300]

BLOCKED_LOAD = (
    WITHOUT_PACKAGE
    + r"""
model = SentenceTransformer(sys.argv[1], trust_remote_code=True, device="cpu")
print(json.dumps({"module": type(model[0]).__module__, "emb": model.encode(json.loads(sys.argv[2])).tolist()}))
"""
)


@pytest.fixture(scope="module")
def teacher(minilm_path) -> SentenceTransformer:
    return SentenceTransformer(minilm_path, device="cpu")


@pytest.fixture(scope="module")
def tiny(teacher) -> SentenceTransformer:
    torch.manual_seed(0)
    return build_tiny_student(teacher).eval()  # the defaults: 2 layers x 128


def test_embeddings_are_the_teachers_projected_by_pca(teacher, tiny):
    table, _ = teacher_embeddings(teacher)
    word = table.word_embeddings.weight.detach()
    basis = pca_basis(word, 128)
    assert basis.shape == (384, 128)
    assert torch.allclose(basis.T @ basis, torch.eye(128), atol=1e-5)  # orthonormal directions
    ours = tiny[0].bert.embeddings
    assert ours.word_embeddings.weight.shape == (30522, 128)
    assert ours.position_embeddings.weight.shape == (512, 128)
    assert ours.token_type_embeddings.weight.shape == (2, 128)
    assert torch.allclose(ours.word_embeddings.weight, word @ basis, atol=1e-6)
    for name in ("position_embeddings", "token_type_embeddings"):  # the same directions as the word table
        assert torch.allclose(getattr(ours, name).weight, getattr(table, name).weight @ basis, atol=1e-6), name
    config = tiny[0].config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (2, 128, 2)
    assert config.intermediate_size == 512 and tiny[0].bert.pooler is None
    assert tiny[0].max_seq_length == 256 and len(tiny[0].tokenizer) == 30522


def _pairwise_cosines(x: torch.Tensor) -> np.ndarray:
    x = torch.nn.functional.normalize(x.double(), dim=1)
    i, j = torch.triu_indices(len(x), len(x), 1)
    return (x @ x.T)[i, j].numpy()


def test_pca_keeps_the_teachers_word_piece_cosines(teacher, tiny):
    """Measured on all-MiniLM-L6-v2, 500 random word pieces (ids >= 1996: past [unused], specials, characters):
    correlation of pairwise cosines 0.952 after PCA to 128 dims, 0.730 after a random orthogonal projection."""
    word = teacher_embeddings(teacher)[0].word_embeddings.weight.detach()
    ids = 1996 + torch.randperm(30522 - 1996, generator=torch.Generator().manual_seed(0))[:500]
    ref = _pairwise_cosines(word[ids])
    pca = np.corrcoef(ref, _pairwise_cosines(tiny[0].bert.embeddings.word_embeddings.weight.detach()[ids]))[0, 1]
    q, _ = torch.linalg.qr(torch.randn(384, 128, generator=torch.Generator().manual_seed(1)))
    random = np.corrcoef(ref, _pairwise_cosines(word[ids] @ q))[0, 1]
    assert pca > 0.9 and pca > random + 0.1, (pca, random)
    torch.manual_seed(0)
    fresh = build_tiny_student(teacher, TinyConfig(embedding_init="random"))[0].bert.embeddings.word_embeddings.weight
    fresh = fresh.detach()
    assert abs(np.corrcoef(ref, _pairwise_cosines(fresh[ids]))[0, 1]) < 0.1  # the ablation really is random


def test_forward_and_encode_shapes(tiny):
    features = tiny[0].preprocess(TEXTS)
    out = tiny(features)
    B, T = features["input_ids"].shape
    assert B == 5 and T == 256  # the long text is truncated to max_seq_length
    assert out["token_embeddings"].shape == (5, 256, 128)
    assert out["sentence_embedding"].shape == (5, 384)
    emb = tiny.encode(TEXTS)
    assert emb.shape == (5, 384) and np.isfinite(emb).all()
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert tiny.get_embedding_dimension() == 384


@pytest.mark.slow
def test_save_load_round_trip_with_and_without_the_package(tiny, tmp_path):
    ref = tiny.encode(TEXTS)
    info = CardInfo(title="tiny", description="d", architecture="a", training="t", command="pytest")
    save_pretrained(tiny, str(tmp_path), info)
    types = [m["type"] for m in json.loads((tmp_path / "modules.json").read_text())]
    assert types[0] == "st_bertapprox_bert.BertTransformer" and all(
        t.startswith("sentence_transformers.") for t in types[1:]
    )
    for again in (SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu"), load_model(str(tmp_path))):
        assert np.abs(again.encode(TEXTS) - ref).max() <= 1e-6
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_LOAD, str(tmp_path), json.dumps(TEXTS)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["module"].startswith("transformers_modules.")  # the code came from the folder, not our package
    assert np.abs(np.array(out["emb"]) - ref).max() <= 1e-6


def test_bad_sizes_are_clear_errors(teacher):
    with pytest.raises(ValueError, match=r"TinyConfig.hidden \(--hidden\) must be divisible by --heads \(3\)"):
        TinyConfig(hidden=128, heads=3)
    with pytest.raises(ValueError, match=r"--layers\) must be an integer >= 1, got 0"):
        TinyConfig(layers=0)
    with pytest.raises(ValueError, match="384-dimensional table onto 512 principal directions"):
        build_tiny_student(teacher, TinyConfig(hidden=512, heads=8))


def _main(*args: str, capsys) -> tuple[int, str, str]:
    """``st-bertapprox ARGS`` in this process: (exit status, stdout, stderr)."""
    from st_bertapprox.cli.main import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--heads", "3"], "--hidden) must be divisible by --heads (3)"),
        (["--embedding-init", "zeros"], "invalid choice: 'zeros'"),
        (["--entry-loss-weight", "1"], "--entry-loss-weight applies to the vocabulary student"),
        (["--epochs", "0"], "--epochs) must be an integer >= 1, got 0"),
    ],
)
def test_cli_bad_values_fail_before_any_work(args, message, tmp_path, capsys):
    code, _, err = _main("distill-tiny", "--output", str(tmp_path / "run"), *args, capsys=capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_distill_tiny_small(tmp_path, monkeypatch, capsys):
    """``st-bertapprox distill-tiny --small``, with a fresh teacher cache, as a user runs it."""
    from st_bertapprox.data.corpus import load_corpus

    monkeypatch.setenv("ST_BERTAPPROX_CACHE", str(tmp_path / "teacher-cache"))
    out = tmp_path / "run"
    code, stdout, _ = _main("distill-tiny", "--small", "--output", str(out), capsys=capsys)
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert json.loads(stdout[stdout.index("{\n") :]) == results  # it prints what it writes
    assert all(math.isfinite(v) for v in results["metrics"].values()), results["metrics"]
    assert -1 <= results["metrics"]["heldout_cosine"] <= 1
    assert results["train_sentences"] == 2000 and results["heldout_sentences"] == 200
    assert results["tiny"] == asdict(TinyConfig.small()) and results["config"]["epochs"] == 1
    corpus = load_corpus(**results["corpus"])  # as bench/student.py rebuilds a run's texts
    assert (len(corpus.train), len(corpus.heldout)) == (2000, 200)
    assert not (out / "checkpoints").exists()
    model = load_model(str(out / "student"))
    assert model.encode(TEXTS).shape == (5, 384)
    assert results["trainable_parameters"] == sum(p.numel() for p in model.parameters())
    card = (out / "student" / "README.md").read_text()
    assert "st-bertapprox distill-tiny --small" in card and "trust_remote_code=True" in card
