"""The README's other commands, run as a user runs them: the fine-tuning job, the analysis and speed benches, the
vocabulary builder, and the CLI's refusals (bad values, untrusted model code), each checked on what it prints and
writes. Nothing here needs the small main job's run (``test_scripts.py``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from script_helpers import ROOT, bench, cli, main_in_process, numbers_in

from st_bertapprox.config import markdown_defaults


@pytest.mark.slow
def test_bench_bert_speed_small(tmp_path):
    proc = bench("bert_speed.py", "--small", "--results", str(tmp_path))
    md = (tmp_path / "bert_speed.md").read_text()
    assert "| forward |" in md and "transformers (ms/batch)" in md and md.splitlines()[2] in proc.stdout
    assert all(np.isfinite(list(numbers_in(json.loads((tmp_path / "bert_speed.json").read_text())))))


@pytest.mark.slow
def test_cli_build_vocab_small(env, tmp_path):
    proc = cli("build-vocab", "--small", "--max-unigrams", "500", "--output", str(tmp_path / "v"), env=env)
    n = int(re.search(r"vocabulary of (\d+) entries saved", proc.stdout)[1])
    from st_bertapprox.modules.student import VocabSetEncoder

    encoder = VocabSetEncoder.load(str(tmp_path / "v"))
    assert len(encoder.vocab) == n and encoder.vocab.num_ngrams > 500


@pytest.mark.slow
def test_cli_finetune_small_raises_dev_spearman_and_round_trips(tmp_path):
    """The fine-tuning job on real weights and data: 40 steps of the MLP-then-mean model raise STS-B dev; the saved
    model and its built-in export reload with the same dev score; the card carries the measured figure."""
    out = tmp_path / "ft"
    args = ["--poolings", "mlp", "--max-train-pairs", "640", "--batch-size", "16", "--seed", "0"]  # 40 steps
    proc = cli("finetune", "--small", "--output", str(out), *args)
    results = json.loads((out / "results.json").read_text())
    assert "| fine-tuned, MLP-then-mean |" in proc.stdout and results["table"] in proc.stdout
    base, tuned = results["rows"][0], results["rows"][1]
    assert base["dev"] == pytest.approx(0.8672, abs=1e-3)  # the packaged MiniLM's STS-B dev score
    assert tuned["train_pairs"] == 640 and tuned["after"] > tuned["before"] + 0.001, tuned
    assert tuned["reloaded_dev"] == pytest.approx(tuned["after"], abs=1e-4)
    assert tuned["builtin_dev"] == pytest.approx(tuned["after"], abs=1e-4)
    card = (out / "minilm-stsb-mlp" / "README.md").read_text()
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card and f"{tuned['after']:.4f}" in card


def test_cli_mteb_unknown_task_fails_before_loading(capsys):
    code, err = main_in_process("mteb", "/no/such/model", "--tasks", "NoSuchTask", capsys=capsys)
    assert code == 2 and "No local MTEB task ['NoSuchTask']" in err, err


def test_cli_defaults_is_the_readme_table(capsys):
    from st_bertapprox.cli.main import main

    main(["defaults"])
    assert capsys.readouterr().out.strip() == markdown_defaults()
    assert markdown_defaults() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs) must be an integer >= 1, got 0"),
        (["--epochs", "-1"], "--epochs) must be an integer >= 1, got -1"),
        (["--batch-size", "0"], "--batch-size) must be an integer >= 1, got 0"),
        (["--learning-rate", "0"], "--learning-rate) must be > 0, got 0.0"),
        (["--adapter-rank", "-1"], "--adapter-rank) must be an integer >= 0, got -1"),
        (["--heldout", "0"], "--heldout) must be an integer >= 1, got 0"),
        (["--heldout", "-5"], "--heldout) must be an integer >= 1, got -5"),
        (["--vocab", "/no/such/vocab"], "--vocab /no/such/vocab does not exist"),
        (["--num-heads", "0"], "--num-heads) must be an integer >= 1, got 0"),
        (["--dropout", "1.5"], "--dropout) must be in [0, 1), got 1.5"),
    ],
)
def test_cli_bad_values_are_clear_errors_before_any_work(args, message, tmp_path, capsys):
    """Issue #11 cases 14-18: no value silently becomes a default, nothing is loaded or written."""
    code, err = main_in_process("distill", "--output", str(tmp_path / "run"), *args, capsys=capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "run").exists()


RIGGED = """
import pathlib
pathlib.Path({marker!r}).write_text("ran")
from sentence_transformers.sentence_transformer.modules import Pooling as Rigged
"""


@pytest.fixture()
def rigged(tmp_path, minilm_path) -> tuple[Path, Path]:
    """A copy of MiniLM whose modules.json names Python code of its own, which writes a marker file when run."""
    import shutil

    folder, marker = tmp_path / "rigged", tmp_path / "ran.txt"
    shutil.copytree(minilm_path, folder)
    (folder / "rigged_code.py").write_text(RIGGED.format(marker=str(marker)))
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "rigged_code.Rigged"  # the pooling, whose folder 1_Pooling holds its config
    (folder / "modules.json").write_text(json.dumps(modules))
    return folder, marker


@pytest.mark.parametrize(
    "command",
    [
        ["mteb", "{folder}", "--tasks", "STSBenchmarkDev", "--output", "{tmp}"],
        ["push", "{folder}", "user/rigged"],
        ["distill", "--teacher", "{folder}", "--small", "--output", "{tmp}/run"],
    ],
    ids=["mteb", "push", "teacher"],
)
def test_cli_never_runs_model_code_unless_trusted(command, rigged, tmp_path, capsys):
    """Issue #11 case 20: a rigged modules.json is refused by mteb, push and --teacher without --trust-remote-code."""
    folder, marker = rigged
    code, err = main_in_process(*[a.format(folder=folder, tmp=tmp_path) for a in command], capsys=capsys)
    assert code == 2 and "--trust-remote-code" in err and "rigged_code.Rigged" in err, err
    assert not marker.exists()


def test_trust_remote_code_opt_in_runs_it(rigged):
    """The same folder, with the flag: the user asked for the model's code, so it runs (as in transformers)."""
    from st_bertapprox.persistence.loading import load_model

    folder, marker = rigged
    model = load_model(str(folder), trust_remote_code=True)
    assert marker.read_text() == "ran" and model.encode(["a"]).shape == (1, 384)


@pytest.mark.slow
def test_bench_analysis_small_and_its_commands(tmp_path):
    """bench/analysis.py --small: every row, the table and the PNG; ``analyze`` on the model it fine-tuned measures the
    same figures on the same held-out documents; ``finetune-contrastive`` on a few texts saves a built-in model."""
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "models"
    # one loss here (the CLI run below trains the other): every row, not the comparison, is what CI checks
    proc = bench(
        "analysis.py", "--small", "--losses", "batch-all-triplet", "--results", str(tmp_path), "--out", str(out)
    )
    md = (tmp_path / "analysis.md").read_text()
    assert md.splitlines()[0].startswith("`python bench/analysis.py --small") and "Wall time of the whole run" in md
    rows = [
        "BERT input word-embedding table (rows)",
        "BERT last-layer token vectors (sample)",
        "BERT input word embeddings, mean over text",
        "BERT [CLS] vector (last layer)",
        "base sentence model (mean pooling)",
        "fine-tuned, batch-all-triplet",
    ]
    for row in rows:
        assert f"| {row} |" in md and f"| {row} |" in proc.stdout, row
    assert (tmp_path / "analysis_agnews.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    views = json.loads((tmp_path / "analysis.json").read_text())["datasets"]["agnews"]["views"]
    assert all(math.isfinite(v["mean_cosine"]) for v in views.values()) and set(views) == set(rows)

    model = out / "agnews" / "batch-all-triplet"
    proc = cli("analyze", str(model), "--small", "--output", str(tmp_path / "an"))
    again = json.loads((tmp_path / "an" / "results.json").read_text())["views"][str(model)]
    for key in ("knn_accuracy", "v_measure", "nn_confusion", "mean_cosine"):
        assert again[key] == pytest.approx(views["fine-tuned, batch-all-triplet"][key], abs=1e-3), key
    assert f"picture: {tmp_path / 'an' / 'pca.png'}" in proc.stdout

    args = "--train-texts 64 --dev-texts 0 --test-texts 40 --loss mnrl --max-seq-length 32".split()
    proc = cli("finetune-contrastive", "--small", *args, "--output", str(tmp_path / "ft"))
    assert "| fine-tuned, mnrl |" in proc.stdout and "mnrl: 64 training texts" in proc.stdout
    reloaded = SentenceTransformer(str(tmp_path / "ft" / "mnrl"))  # built-in modules: no trust_remote_code
    assert reloaded.encode(["a test"]).shape == (1, 384)
