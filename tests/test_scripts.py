"""The README's commands, run as a user runs them: the main job in its small mode, every benchmark script in its small
mode, and every ``st-bertapprox`` subcommand on tiny inputs, each checked on what it prints and writes.

The small main job (``st-bertapprox distill --small``) and ``bench/student.py --small`` exercise every step and every
row of the full job (~2,000 training sentences, one epoch, 200 held-out texts), with a fresh teacher cache.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hub_server import HubServer
from test_hub import hub_env

from st_bertapprox.config import markdown_defaults

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict | None = None, ok: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*args], capture_output=True, text=True, cwd=ROOT, env=env or os.environ.copy(), timeout=timeout
    )
    if ok and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "st_bertapprox.cli", *args, **kw)


def bench(script: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(sys.executable, str(ROOT / "bench" / script), *args, **kw)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """A fresh teacher cache for this module (CI starts from an empty one too)."""
    cache = tmp_path_factory.mktemp("teacher-cache")
    return {**os.environ, "ST_BERTAPPROX_CACHE": str(cache), "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, env) -> tuple[Path, dict, str]:
    """``st-bertapprox distill --small``: (run folder, results.json, stdout)."""
    out = tmp_path_factory.mktemp("small") / "run"
    proc = cli("distill", "--small", "--output", str(out), env=env)
    return out, json.loads((out / "results.json").read_text()), proc.stdout


def test_small_main_job_writes_a_working_student(small_run):
    out, results, stdout = small_run
    printed = stdout[re.search(r"^\{$", stdout, re.M).start() :]  # the indented JSON after the trainer's log lines
    assert json.loads(printed) == results  # it prints what it writes
    for folder in ("vocab", "student", "student-folded"):
        assert (out / folder).is_dir(), folder
    assert not (out / "checkpoints").exists()
    assert results["train_sentences"] == 2000 and results["heldout_sentences"] == 200
    assert results["config"]["epochs"] == 1 and results["corpus"]["mine_sentences"] == 5000
    assert results["teacher"] == "sentence-transformers/all-MiniLM-L6-v2"
    m = results["metrics"]
    # one epoch on 2,000 sentences: far from the full job, far above an untrained student (cosine ~0.1-0.3)
    assert 0.5 < m["heldout_cosine"] < 1 and 0.4 < m["sts-dev_spearman_cosine"] < 1, m
    card = (out / "student" / "README.md").read_text()
    assert "st-bertapprox distill --small" in card and "all-MiniLM-L6-v2" in card


def test_bench_student_small_prints_every_row(small_run, env, tmp_path):
    out, _, _ = small_run
    args = [
        "--student",
        str(out),
        "--small",
        "--results",
        str(tmp_path),
        "--out",
        str(tmp_path),
        "--general",
        str(out),
    ]
    proc = bench("student.py", *args)
    md = (tmp_path / "student.md").read_text()
    assert md.splitlines()[0].startswith("`python bench/student.py --student")
    rows = json.loads((tmp_path / "student.json").read_text())
    names = [
        "teacher: all-MiniLM-L6-v2",
        "model2vec distill (same teacher)",
        "model2vec + tokenlearn (same corpus)",
        "model2vec + tokenlearn (same corpus), via SentenceTransformer",
        "ours: student (unfolded)",
        "ours: student (folded)",
        "ours: student (folded), NumpyStudent",
        "ours: student (folded, fp16 table)",
    ]
    assert set(names) <= set(rows), sorted(rows)
    for name in names:
        assert f"| {name} |" in md and f"| {name} |" in proc.stdout
        for key in ("stsb", "top10", "ndcg", "sps32", "sps1"):
            assert math.isfinite(rows[name][key]), (name, key)
    ours, teacher = rows["ours: student (folded)"], rows["teacher: all-MiniLM-L6-v2"]
    assert teacher["ndcg"] > 0.5  # averaged over the kept queries only (the full set gives 0.645)
    assert rows["general student (folded, default corpus)"]["ndcg"] == pytest.approx(ours["ndcg"], abs=1e-4)
    assert ours["sps32"] > 5 * teacher["sps32"]  # the whole point of the student, even in a smoke run
    # folded, unfolded and numpy compute the same function: their quality columns agree
    for key in ("stsb", "cosine", "top10", "ndcg"):
        assert ours[key] == pytest.approx(rows["ours: student (unfolded)"][key], abs=2e-3)
        assert ours[key] == pytest.approx(rows["ours: student (folded), NumpyStudent"][key], abs=2e-3)
    assert "Asymmetric retrieval" in md


def test_bench_ablations_small(small_run, env, tmp_path):
    out, _, _ = small_run
    bench("student_ablations.py", "--vocab", str(out / "vocab"), "--small", "--results", str(tmp_path), env=env)
    results = json.loads((tmp_path / "student_ablations.json").read_text())
    assert set(results) == {"default", "no skip-grams"}
    assert results["no skip-grams"]["vocab"] < results["default"]["vocab"]
    assert all(0 < r["cosine"] < 1 and r["epochs"] == 1 for r in results.values())
    assert "| no skip-grams |" in (tmp_path / "student_ablations.md").read_text()


def test_bench_tokenizer_speed_small(small_run, env, tmp_path):
    out, _, _ = small_run
    vocab, folded = str(out / "vocab"), str(out / "student-folded")
    proc = bench("tokenizer_speed.py", "--vocab", vocab, "--student", folded, "--small", "--results", str(tmp_path))
    md = (tmp_path / "tokenizer_speed.md").read_text()
    assert md.splitlines()[0].startswith("`python bench/tokenizer_speed.py") and "|" in proc.stdout
    data = json.loads((tmp_path / "tokenizer_speed.json").read_text())
    assert data and all(np.isfinite(list(_numbers(data))))


def test_bench_bert_speed_small(tmp_path):
    proc = bench("bert_speed.py", "--small", "--results", str(tmp_path))
    md = (tmp_path / "bert_speed.md").read_text()
    assert "| forward |" in md and "transformers (ms/batch)" in md and md.splitlines()[2] in proc.stdout
    assert all(np.isfinite(list(_numbers(json.loads((tmp_path / "bert_speed.json").read_text())))))


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def test_cards_and_results_name_the_real_teacher_and_corpus(small_run, env, tmp_path, minilm_path, stsb_train):
    """Issue #10: a run on a user corpus with a user teacher says so in results.json and in both model cards."""
    corpus = tmp_path / "my-corpus.txt"
    corpus.write_text("\n".join(list(dict.fromkeys(stsb_train["sentence1"]))[:700]) + "\n")
    out = tmp_path / "run"
    args = ["--corpus", str(corpus), "--teacher", minilm_path, "--heldout", "100", "--epochs", "1"]
    args += ["--max-unigrams", "800", "--max-ngrams", "200", "--max-skipgrams", "20", "--min-count", "2"]
    cli("distill", "--output", str(out), *args, env=env)
    results = json.loads((out / "results.json").read_text())
    assert results["teacher"] == minilm_path and results["datasets"] == ["my-corpus.txt"]
    assert results["corpus"]["files"] == [str(corpus)] and results["train_sentences"] == 600
    import yaml

    for model in ("student", "student-folded"):
        card = (out / model / "README.md").read_text()
        meta = yaml.safe_load(card.split("---")[1])
        assert meta["base_model"] == minilm_path and meta["datasets"] == ["my-corpus.txt"], meta
        assert "wikipedia" not in card.lower() and "sentence-transformers/stsb" not in meta["datasets"]


def test_cli_distill_fitted_to_a_beir_folder(small_run, env, tmp_path):
    """Issue #16 item 1: a student fitted to a user's documents (a tiny BEIR folder of real SciFact documents), its
    vocabulary merged into the general one, general texts mixed in."""
    from st_bertapprox.data import dataset_path

    beir = tmp_path / "my-docs"
    beir.mkdir()
    lines = (dataset_path("scifact") / "corpus.jsonl").read_text().splitlines()[:40]
    (beir / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    out, general_vocab = tmp_path / "run", small_run[0] / "vocab"
    args = ["--corpus", str(beir), "--merge-vocab", str(general_vocab), "--general-sentences", "300"]
    args += ["--heldout", "40", "--epochs", "1", "--batch-size", "16", "--max-unigrams", "1500", "--min-count", "2"]
    cli("distill", "--output", str(out), *args, env=env)
    results = json.loads((out / "results.json").read_text())
    assert results["datasets"] == ["my-docs", "sentence-transformers/stsb", "wikipedia"]
    assert results["vocab"]["merge_with"] == str(general_vocab) and results["heldout_sentences"] == 40
    from st_bertapprox.modules.student import VocabSetEncoder

    general, fitted = VocabSetEncoder.load(str(general_vocab)), VocabSetEncoder.load(str(out / "vocab"))
    assert set(general.vocab.entries) < set(fitted.vocab.entries)
    from st_bertapprox.loading import load_model

    emb = load_model(str(out / "student-folded")).encode(["Aspirin lowers the risk of heart attack."])
    assert emb.shape == (1, 384) and np.isfinite(emb).all()


def test_cli_distill_contextual_student_with_entry_targets(small_run, env, tmp_path):
    """Issue #16 item 2 through the CLI: a contextual student (entries attend to each other) distilled with
    entry-level targets on the small run's vocabulary and corpus; saved unfolded, folded and run in numpy (equal)."""
    out = tmp_path / "run"
    args = ["--small", "--vocab", str(small_run[0] / "vocab"), "--num-sentences", "600", "--heldout", "100"]
    args += ["--context-layers", "1", "--context-dim", "64", "--entry-loss-weight", "1"]
    cli("distill", "--output", str(out), *args, env=env)
    results = json.loads((out / "results.json").read_text())
    assert results["student"]["context_layers"] == 1 and results["config"]["entry_loss_weight"] == 1
    assert 0.3 < results["metrics"]["heldout_cosine"] < 1, results["metrics"]
    assert "entry-level targets" in (out / "student" / "README.md").read_text()
    from st_bertapprox.loading import load_model

    texts = ["A man is playing a guitar.", "Aspirin lowers the risk of heart attack.", ""]
    unfolded, folded = load_model(str(out / "student")), load_model(str(out / "student-folded"))
    assert unfolded[1].context_layers == folded[1].context_layers == 1
    ref = unfolded.encode(texts)
    assert np.abs(folded.encode(texts) - ref).max() <= 1e-5
    from st_bertapprox.numpy_student import NumpyStudent

    assert np.abs(NumpyStudent.from_pretrained(str(out / "student-folded")).encode(texts) - ref).max() <= 1e-5


def test_cli_build_vocab_small(env, tmp_path):
    proc = cli("build-vocab", "--small", "--max-unigrams", "500", "--output", str(tmp_path / "v"), env=env)
    n = int(re.search(r"vocabulary of (\d+) entries saved", proc.stdout)[1])
    from st_bertapprox.modules.student import VocabSetEncoder

    encoder = VocabSetEncoder.load(str(tmp_path / "v"))
    assert len(encoder.vocab) == n and encoder.vocab.num_ngrams > 500


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


def test_cli_mteb_on_the_small_student(small_run, env, tmp_path):
    out, results, _ = small_run
    proc = cli("mteb", str(out / "student-folded"), "--tasks", "STSBenchmarkDev", "--output", str(tmp_path), env=env)
    score = float(re.search(r"STSBenchmarkDev: ([0-9.]+)", proc.stdout)[1])
    # the local STSBenchmarkDev task is STS-B dev: the same score the distillation reported
    assert score == pytest.approx(results["metrics"]["sts-dev_spearman_cosine"], abs=2e-3)


def test_cli_mteb_unknown_task_fails_before_loading(capsys):
    code, err = main_in_process("mteb", "/no/such/model", "--tasks", "NoSuchTask", capsys=capsys)
    assert code == 2 and "No local MTEB task ['NoSuchTask']" in err, err


def test_cli_push_to_a_local_hub_and_offline(small_run, tmp_path):
    out, _, _ = small_run
    with HubServer(tmp_path / "hub") as hub:
        env = hub_env(tmp_path, "push", HF_ENDPOINT=hub.url)
        proc = cli("push", str(out / "student-folded"), "user/small-student", env=env)
        assert "pushed" in proc.stdout
        repo = tmp_path / "hub" / "models--user--small-student"
        snapshot = repo / "snapshots" / (repo / "refs" / "main").read_text().strip()
        assert {"modules.json", "README.md", "st_bertapprox_student.py"} <= {p.name for p in snapshot.iterdir()}


def test_cli_push_offline_is_a_clear_error(small_run, capsys):
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # conftest: this process never reaches the Hub
    code, err = main_in_process("push", str(small_run[0] / "student-folded"), "user/x", capsys=capsys)
    assert code == 2 and "cannot push while offline" in err, err


def test_cli_defaults_is_the_readme_table(capsys):
    from st_bertapprox.cli import main

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


def main_in_process(*args: str, capsys) -> tuple[int, str]:
    """``st-bertapprox ARGS`` in this process (no interpreter start-up): (exit status, stderr)."""
    from st_bertapprox.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code, capsys.readouterr().err


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
    from st_bertapprox.loading import load_model

    folder, marker = rigged
    model = load_model(str(folder), trust_remote_code=True)
    assert marker.read_text() == "ran" and model.encode(["a"]).shape == (1, 384)


def test_bench_frontier_small(small_run, env, tmp_path):
    """bench/frontier.py --small: every row and column, the plot, and it prints the JSON it writes. The model2vec
    distill is a stand-in (the teacher's word embeddings as a StaticModel: instant) and tokenlearn is off: the real
    ones take minutes, and bench/student.py's test runs them."""
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    from st_bertapprox.data import teacher_path

    out, peers = small_run[0], tmp_path / "peers"
    words = SentenceTransformer(teacher_path(), device="cpu")[0].auto_model.embeddings.word_embeddings.weight
    tokenizer = Tokenizer.from_file(str(Path(teacher_path()) / "tokenizer.json"))
    StaticModel(words.detach().numpy(), tokenizer, normalize=True).save_pretrained(str(peers / "model2vec"))
    args = ["--small", "--model", f"student={out}", "--fitted", f"fitted={out}", "--no-tokenlearn"]
    proc = bench("frontier.py", *args, "--out", str(peers), "--results", str(tmp_path), env=env)
    results = json.loads((tmp_path / "frontier.json").read_text())
    assert json.loads(proc.stdout[re.search(r"^\{$", proc.stdout, re.M).start() :]) == results
    md = (tmp_path / "frontier.md").read_text()
    assert md.splitlines()[0].startswith("`python bench/frontier.py --small") and "Wall time of the whole run" in md
    assert (tmp_path / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = results["rows"]
    assert list(rows) == ["teacher: all-MiniLM-L6-v2", "model2vec distill (same teacher)", "student", "fitted"]
    for name, row in rows.items():
        assert f"| {name} |" in md and f"| {name} |" in proc.stdout
        keys = ["stsb", "top10", "ndcg", "agnews", "bbc", "quality", "sps32", "sps1", "params", "size_mb"]
        keys += ["cosine"] * (name != "model2vec distill (same teacher)")
        keys += ["ndcg_teacher_docs"] * (name in ("student", "fitted"))
        keys += ["fast_sps32", "fast_sps1"] * (name != "teacher: all-MiniLM-L6-v2")
        assert all(math.isfinite(row[k]) for k in keys), (name, row)
        assert 0 <= row["agnews"] <= 1 and 0 <= row["bbc"] <= 1
    teacher = rows["teacher: all-MiniLM-L6-v2"]
    assert teacher["quality"] == 1 and teacher["fast_sps32"] is None and teacher["ndcg_teacher_docs"] is None
    assert teacher["agnews"] > 0.2 and teacher["bbc"] > 0.2  # topics the teacher separates, even on a small sample
    assert rows["fitted"]["ndcg"] == pytest.approx(rows["student"]["ndcg"], abs=1e-6)  # the same run, twice


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


def test_bench_retrieval_small(small_run, env, tmp_path):
    """bench/retrieval.py --small: every row (torch, NumpyStudent, ONNX, int8, asymmetric) and every column, the
    scale and cache tables; exports agree with their source on SciFact (fp32: the same nDCG@10)."""
    proc = bench(
        "retrieval.py", "--small", "--student", str(small_run[0]), "--results", str(tmp_path), "--out", str(tmp_path)
    )
    results = json.loads((tmp_path / "retrieval.json").read_text())
    md = (tmp_path / "retrieval.md").read_text()
    assert md.splitlines()[0].startswith("`python bench/retrieval.py --small") and "Wall time of the whole run" in md
    rows = results["rows"]
    names = ["teacher", "scratch BERT", "student", "student, NumpyStudent"]
    names += [f"{m}, {f}" for m in ("teacher", "scratch BERT", "student") for f in ("onnx", "onnx-int8")]
    assert list(rows) == [*names, "asymmetric: teacher docs, NumpyStudent queries"]
    for name, row in rows.items():
        assert f"| {name} |" in proc.stdout
        assert all(math.isfinite(v) for v in row.values()), (name, row)
        assert 0 <= row["flat_ndcg10"] <= 1 and 0 <= row["hnsw_agreement10"] <= 1 and row["p95_ms"] >= row["p50_ms"]
    for name in ("teacher", "scratch BERT", "student"):
        assert rows[f"{name}, onnx"]["flat_ndcg10"] == pytest.approx(rows[name]["flat_ndcg10"], abs=1e-3)
        assert rows[f"{name}, onnx"]["cos_min"] > 0.999 and abs(rows[f"{name}, onnx"]["stsb_drop"]) < 1e-4
        assert rows[f"{name}, onnx-int8"]["stsb_drop"] <= 0.02 and rows[f"{name}, onnx-int8"]["cos_mean"] > 0.98
    assert rows["scratch BERT"]["flat_ndcg10"] == pytest.approx(rows["teacher"]["flat_ndcg10"], abs=1e-4)
    assert rows["teacher"]["flat_ndcg10"] > 0.5  # a few relevant documents among 30: the teacher finds them
    scale = results["scale"]
    assert scale["flat"]["recall10_vs_exact"] == 1.0 and scale["ivfpq"]["index_mb"] < scale["flat"]["index_mb"]
    assert 0 < results["cache"]["NumpyStudent"]["hit_rate"] < 1
