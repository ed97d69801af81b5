"""Shared fixtures: the real MiniLM checkpoint, STS-B, tiny random BERT configs.

Datasets come from the shared data folder (``st_bertapprox.data``). Locally a missing dataset skips the test; in CI
(``CI=true``) it fails, so a broken data mount can never turn into a green run.
"""

from __future__ import annotations

import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any HF import: tests never reach the real Hub

import pytest
import torch

from st_bertapprox.data import dataset_path, load_stsb, teacher_path

torch.set_num_threads(min(2, os.cpu_count() or 1))


def require_dataset(name: str):
    try:
        return dataset_path(name)
    except FileNotFoundError as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and a dataset is missing: {e}")
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def minilm_path() -> str:
    return teacher_path()


@pytest.fixture(scope="session")
def stsb_dev():
    require_dataset("stsb")
    return load_stsb("dev")


@pytest.fixture(scope="session")
def stsb_train():
    require_dataset("stsb")
    return load_stsb("train")


@pytest.fixture(scope="session")
def real_sentences(stsb_dev) -> list[str]:
    """A varied batch of real STS-B dev sentences (short and long, so padding is exercised)."""
    sents = list(dict.fromkeys(stsb_dev["sentence1"]))
    return sorted(sents[:200], key=len)[::12]


@pytest.fixture(scope="session")
def _packaged_minilm(minilm_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_path, device="cpu")


@pytest.fixture()
def packaged_minilm(_packaged_minilm):
    return _packaged_minilm


@pytest.fixture(scope="session")
def _scratch_minilm(minilm_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    from st_bertapprox import BertTransformer

    bert = BertTransformer(minilm_path)
    return SentenceTransformer(modules=[bert, Pooling(384, "mean"), Normalize()], device="cpu")


@pytest.fixture()
def scratch_minilm(_scratch_minilm):
    """SentenceTransformer([BertTransformer(MiniLM), Pooling(mean), Normalize()]) -- a fresh copy per test."""
    return copy.deepcopy(_scratch_minilm)


def tiny_bert_config(**overrides) -> dict:
    """HF BertModelTester sizes."""
    cfg = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=64,
        type_vocab_size=2,
    )
    cfg.update(overrides)
    return cfg
