"""Hub round trips over real HTTP (a Hub-compatible server on 127.0.0.1, the real huggingface_hub client), the
offline HF-cache path, trust_remote_code behaviour, and model cards with measured numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from hub_server import HubServer
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize
from test_student import WITHOUT_PACKAGE, tiny_student

from st_bertapprox import MLPMeanPooling
from st_bertapprox.modules.student import fold_student
from st_bertapprox.persistence.cards import CardInfo
from st_bertapprox.persistence.saving import save_pretrained

TEXTS = ["A man is playing a guitar.", "Three dogs run through the snow!", "", "naïve café"]

# The models must load from the repos' own code.
LOAD_WITHOUT_PACKAGE = (
    WITHOUT_PACKAGE
    + r"""
texts, trust, out = json.loads(sys.argv[1]), sys.argv[2] == "trust", {}
for repo in sys.argv[3:]:
    try:
        out[repo] = SentenceTransformer(repo, trust_remote_code=trust, device="cpu").encode(texts).tolist()
    except ValueError as e:
        out[repo] = str(e)
print(json.dumps(out))
"""
)

PUSH = r"""
import json, sys
from sentence_transformers import SentenceTransformer
from st_bertapprox.persistence.cards import load_card_info
from st_bertapprox.persistence.saving import push_to_hub
builtin, urls = sys.argv[1] == "builtin", []
for folder, repo in zip(sys.argv[2::2], sys.argv[3::2]):
    model = SentenceTransformer(folder, trust_remote_code=True, device="cpu")
    urls.append(push_to_hub(model, repo, load_card_info(folder), builtin=builtin))
print(json.dumps(urls))
"""


def run(code: str, *args: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed:\n{proc.stderr[-4000:]}")
    return proc.stdout.strip().splitlines()[-1]


def hub_env(tmp_path, name: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    home = tmp_path / f"hf-home-{name}"
    home.mkdir()
    return {**env, "HF_HOME": str(home), "HF_TOKEN": "hf_dummy", "HF_HUB_DISABLE_TELEMETRY": "1", **extra}


def card(results: dict) -> CardInfo:
    return CardInfo(
        title="bert-approx test model",
        description="A test model.",
        architecture="test architecture",
        training="trained in a test",
        command="pytest tests/test_hub.py",
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        results=results,
    )


@pytest.fixture(scope="module")
def bert_mlp_model(minilm_path):
    from st_bertapprox import BertTransformer

    torch.manual_seed(0)
    pool = MLPMeanPooling(384, hidden_dims=[384], residual=True)
    for layer in pool.layers:
        torch.nn.init.normal_(layer.linear.weight, std=0.02)
    return SentenceTransformer(modules=[BertTransformer(minilm_path), pool, Normalize()], device="cpu")


@pytest.mark.slow
def test_push_then_load_by_repo_id_without_the_package(tmp_path, bert_mlp_model):
    """Every custom model kind: pushed over HTTP, loaded by repo id where st_bertapprox cannot be imported."""
    models = {
        "student": tiny_student(),
        "folded-student": fold_student(tiny_student()),
        "contextual-student": fold_student(tiny_student(context_layers=1)),
        "bert-mlp": bert_mlp_model,
    }
    refs, args = {}, []
    for kind, model in models.items():
        refs[f"user/bert-approx-{kind}"] = model.encode(TEXTS)
        save_pretrained(model, str(tmp_path / kind), card({"stsb_dev_spearman": 0.1234}))
        args += [str(tmp_path / kind), f"user/bert-approx-{kind}"]
    with HubServer(tmp_path / "hub") as hub:
        urls = json.loads(run(PUSH, "custom", *args, env=hub_env(tmp_path, "push", HF_ENDPOINT=hub.url)))
        assert all(repo in url for repo, url in zip(refs, urls))
        pulled = json.loads(
            run(
                LOAD_WITHOUT_PACKAGE,
                json.dumps(TEXTS),
                "trust",
                *refs,
                env=hub_env(tmp_path, "pull", HF_ENDPOINT=hub.url),
            )
        )
        assert all(f"GET /api/models/{repo}" in hub.requests for repo in refs)
    # offline: the same repo ids resolved from an HF cache laid out as the Hub would (the server's storage is one)
    offline_env = hub_env(tmp_path, "offline", HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(tmp_path / "hub"))
    offline = json.loads(run(LOAD_WITHOUT_PACKAGE, json.dumps(TEXTS), "trust", *refs, env=offline_env))
    untrusted = json.loads(run(LOAD_WITHOUT_PACKAGE, json.dumps(TEXTS), "no-trust", *refs, env=offline_env))
    for repo, ref in refs.items():
        assert np.abs(np.array(pulled[repo]) - ref).max() <= 1e-6, repo
        assert np.abs(np.array(offline[repo]) - ref).max() <= 1e-6, repo
        # without trust_remote_code, sentence-transformers refuses our code with its own message
        assert isinstance(untrusted[repo], str) and "trust_remote_code=True" in untrusted[repo]


@pytest.mark.slow
def test_builtin_export_pushes_and_loads_without_trust_remote_code(tmp_path, scratch_minilm):
    ref = scratch_minilm.encode(TEXTS)
    folder = tmp_path / "saved"
    save_pretrained(scratch_minilm, str(folder), card({"stsb_dev_spearman": 0.8672}))
    with HubServer(tmp_path / "hub") as hub:
        run(PUSH, "builtin", str(folder), "user/minilm-scratch", env=hub_env(tmp_path, "push", HF_ENDPOINT=hub.url))
        env = hub_env(tmp_path, "pull", HF_ENDPOINT=hub.url)
        out = json.loads(run(LOAD_WITHOUT_PACKAGE, json.dumps(TEXTS), "no-trust", "user/minilm-scratch", env=env))
    assert np.abs(np.array(out["user/minilm-scratch"]) - ref).max() <= 1e-5


def test_model_card_has_measured_numbers_and_metadata(tmp_path):
    save_pretrained(
        tiny_student(),
        str(tmp_path),
        card({"stsb_dev_spearman": 0.81234, "scifact_ndcg_at_10": 0.54321}),
        repo_id="user/bert-approx",
    )
    text = (tmp_path / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["library_name"] == "sentence-transformers" and "st-bertapprox" in meta["tags"]
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    values = {r["dataset"]["name"]: r["metrics"][0]["value"] for r in meta["model-index"][0]["results"]}
    assert values == {"STS Benchmark": 0.8123, "SciFact": 0.5432}
    assert 'SentenceTransformer("user/bert-approx", trust_remote_code=True)' in text
    assert "| STS Benchmark | spearman_cosine | 0.8123 |" in text and "pytest tests/test_hub.py" in text
    assert "{{" not in text and "}}" not in text
    assert json.loads((tmp_path / "card.json").read_text())["results"]["scifact_ndcg_at_10"] == 0.54321
