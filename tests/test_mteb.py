"""MTEB 2.x offline: our scratch-BERT MiniLM on the local STS-B task, results in MTEB's layout."""

from __future__ import annotations

import json

import pytest

from st_bertapprox.evaluation import evaluate_stsb
from st_bertapprox.evaluation.mteb import results_path, run_mteb

pytest.importorskip("mteb")


def test_mteb_local_stsb_matches_the_evaluator(scratch_minilm, stsb_dev, tmp_path):
    scores = run_mteb(
        scratch_minilm, ["STSBenchmark"], str(tmp_path), model_name="st-bertapprox/minilm-scratch", revision="v1"
    )
    assert scores["STSBenchmark"] == pytest.approx(evaluate_stsb(scratch_minilm), abs=1e-3)
    assert scores["STSBenchmark"] == pytest.approx(0.8672, abs=1e-3)
    folder = results_path(str(tmp_path), "st-bertapprox/minilm-scratch", "v1")
    result = json.loads((folder / "STSBenchmark.json").read_text())
    assert result["task_name"] == "STSBenchmark"
    assert result["scores"]["test"][0]["main_score"] == pytest.approx(scores["STSBenchmark"], abs=1e-6)
    assert result["dataset_revision"] == "local-dev-as-test"  # local data is marked as such in the results
    assert json.loads((folder / "model_meta.json").read_text())["name"] == "st-bertapprox/minilm-scratch"


def test_mteb_runs_the_student(tmp_path):
    """The student (custom modules, loaded with trust_remote_code) goes through mteb like any SentenceTransformer."""
    from sentence_transformers import SentenceTransformer
    from test_student import tiny_student

    from st_bertapprox.hub import save_pretrained

    save_pretrained(tiny_student(), str(tmp_path / "student"))
    student = SentenceTransformer(str(tmp_path / "student"), trust_remote_code=True, device="cpu")
    scores = run_mteb(student, ["STSBenchmark"], str(tmp_path / "mteb"), model_name="st-bertapprox/tiny-student")
    assert scores["STSBenchmark"] == pytest.approx(evaluate_stsb(student), abs=1e-3)
    assert (results_path(str(tmp_path / "mteb"), "st-bertapprox/tiny-student", "local") / "STSBenchmark.json").exists()
