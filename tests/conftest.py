"""Shared fixtures: the real MiniLM checkpoint, STS-B, tiny random BERT configs.

Datasets come from the shared data folder (``st_bertapprox.data``). Locally a missing dataset skips the test; in CI
(``CI=true``) it fails, so a broken data mount can never turn into a green run.
"""

from __future__ import annotations

import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any HF import: tests never reach the real Hub
# pytest-xdist workers (pyproject: -n 2) share the cores: each worker, and every command it runs in a subprocess (the
# CLI, bench scripts: tests/script_helpers.py), gets its share of threads. Two workers of two OpenMP threads each on
# two cores spin against each other and run far slower than one thread each.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:  # set by xdist in a worker, before conftest is imported
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ["MKL_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"]

import pytest
import torch

from st_bertapprox.data.shared import dataset_path, load_stsb, teacher_path

torch.set_num_threads(min(2, int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))))

# The longest files first: xdist (--dist loadfile --no-loadscope-reorder) hands files to workers in this order, so no
# worker is left with a long file at the end. The order of per-file times measured in a CI run (2 cores): scripts
# ~380 s, commands ~260 s, then hub, save, tiny, student and mteb ~40-60 s each; the rest follow.
LONGEST_FIRST = (
    "test_scripts.py",
    "test_commands.py",
    "test_hub.py",
    "test_save.py",
    "test_tiny.py",
    "test_student.py",
    "test_mteb.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file keeps its own order


def require_dataset(name: str):
    try:
        return dataset_path(name)
    except FileNotFoundError as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and a dataset is missing: {e}")
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """The environment of a README command run in a subprocess, with a fresh teacher cache for this module (CI
    starts from an empty one too)."""
    cache = tmp_path_factory.mktemp("teacher-cache")
    return {**os.environ, "ST_BERTAPPROX_CACHE": str(cache), "TOKENIZERS_PARALLELISM": "false"}


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
