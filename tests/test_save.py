"""sentence-transformers' own publishing calls write self-contained repositories for every model kind we make:
``model.save()``, ``model.push_to_hub()`` and the trainer's ``push_to_hub=True`` carry the module code, and the
result loads with ``trust_remote_code=True`` in a Python where st-bertapprox cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from hub_server import HubServer
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
from test_hub import LOAD_WITHOUT_PACKAGE, hub_env, run
from test_student import WITHOUT_PACKAGE, tiny_student

from st_bertapprox import BertTransformer, MLPMeanPooling, fold_student

pytestmark = pytest.mark.slow  # every test here runs real weights end to end

TEXTS = ["A man is playing a guitar.", "New York city is big", "", "naïve café"]

# load, re-save from the loaded (remote-code) copy, load that again: both must equal the original
LOAD_AND_RESAVE = (
    WITHOUT_PACKAGE
    + r"""
path, texts = sys.argv[1], json.loads(sys.argv[2])
model = SentenceTransformer(path, trust_remote_code=True, device="cpu")
model.save(path + "-resaved")
again = SentenceTransformer(path + "-resaved", trust_remote_code=True, device="cpu")
print(json.dumps({"modules": [type(m).__module__ for m in model], "emb": model.encode(texts).tolist(),
                  "resaved": again.encode(texts).tolist()}))
"""
)

ST_PUSH = r"""
import sys
from sentence_transformers import SentenceTransformer
SentenceTransformer(sys.argv[1], trust_remote_code=True, device="cpu").push_to_hub(sys.argv[2])
print("pushed")
"""

TRAINER_PUSH = r"""
import sys
sys.path.insert(0, sys.argv[2])
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MSELoss
from test_student import tiny_student
model = tiny_student()
data = Dataset.from_dict({"sentence": ["new york", "big city"] * 4, "label": [[0.1] * 16, [0.2] * 16] * 4})
args = SentenceTransformerTrainingArguments(output_dir=sys.argv[1], max_steps=1, per_device_train_batch_size=4,
    report_to="none", push_to_hub=True, hub_model_id="user/trained-student", save_strategy="no", disable_tqdm=True)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=MSELoss(model))
trainer.train()
trainer.push_to_hub()
model.save(sys.argv[1] + "/final")
print("pushed")
"""


@pytest.fixture(scope="module")
def models(minilm_path) -> dict[str, SentenceTransformer]:
    bert = BertTransformer(minilm_path)
    torch.manual_seed(0)
    mlp = MLPMeanPooling(384, hidden_dims=[384], residual=True)
    for layer in mlp.layers:
        torch.nn.init.normal_(layer.linear.weight, std=0.02)  # not the identity: the MLP's weights must travel
    student = tiny_student()
    return {
        "bert": SentenceTransformer(modules=[bert, Pooling(384, "mean"), Normalize()], device="cpu"),
        "bert-mlp": SentenceTransformer(modules=[bert, mlp, Normalize()], device="cpu"),
        "student": student,
        "folded-student": fold_student(student),
    }


@pytest.mark.parametrize("kind", ["bert", "bert-mlp", "student", "folded-student"])
def test_plain_model_save_loads_without_the_package(models, kind, tmp_path):
    model, path = models[kind], tmp_path / kind
    model.save(str(path))
    types = [m["type"] for m in json.loads((path / "modules.json").read_text())]
    custom = [t for t in types if not t.startswith("sentence_transformers.")]
    assert custom and all(t.count(".") == 1 and (path / f"{t.split('.')[0]}.py").is_file() for t in custom), types
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_AND_RESAVE, str(path), json.dumps(TEXTS)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(m.startswith(("transformers_modules.", "sentence_transformers.")) for m in out["modules"])
    ref = model.encode(TEXTS)
    assert np.abs(np.array(out["emb"]) - ref).max() <= 1e-6
    assert np.abs(np.array(out["resaved"]) - ref).max() <= 1e-6


def test_st_push_to_hub_and_trainer_push_load_without_the_package(models, tmp_path):
    models["bert-mlp"].save(str(tmp_path / "bert-mlp"))
    with HubServer(tmp_path / "hub") as hub:
        env = hub_env(tmp_path, "push", HF_ENDPOINT=hub.url)
        assert run(ST_PUSH, str(tmp_path / "bert-mlp"), "user/bert-mlp", env=env) == "pushed"
        tests_dir = str(__import__("pathlib").Path(__file__).parent)
        assert run(TRAINER_PUSH, str(tmp_path / "trained"), tests_dir, env=env) == "pushed"
        pulled = json.loads(
            run(
                LOAD_WITHOUT_PACKAGE,
                json.dumps(TEXTS),
                "trust",
                "user/bert-mlp",
                "user/trained-student",
                env=hub_env(tmp_path, "pull", HF_ENDPOINT=hub.url),
            )
        )
    assert np.abs(np.array(pulled["user/bert-mlp"]) - models["bert-mlp"].encode(TEXTS)).max() <= 1e-6
    trained = SentenceTransformer(str(tmp_path / "trained" / "final"), trust_remote_code=True, device="cpu")
    assert np.abs(np.array(pulled["user/trained-student"]) - trained.encode(TEXTS)).max() <= 1e-6
