"""The README's main job and what builds on its run: ``st-bertapprox distill --small`` (every step and every row of the
full job: ~2,000 training sentences, one epoch, 200 held-out texts, a fresh teacher cache), then every benchmark
script and subcommand that reads the student it wrote, each checked on what it prints and writes.

The commands that need no small run are in ``test_commands.py`` (a file each, so two test workers share the work).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hub_server import HubServer
from script_helpers import bench, cli, main_in_process, numbers_in
from test_hub import hub_env


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, env) -> tuple[Path, dict, str]:
    """``st-bertapprox distill --small``: (run folder, results.json, stdout)."""
    out = tmp_path_factory.mktemp("small") / "run"
    proc = cli("distill", "--small", "--output", str(out), env=env)
    return out, json.loads((out / "results.json").read_text()), proc.stdout


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_bench_ablations_small(small_run, env, tmp_path):
    out, _, _ = small_run
    bench("student_ablations.py", "--vocab", str(out / "vocab"), "--small", "--results", str(tmp_path), env=env)
    results = json.loads((tmp_path / "student_ablations.json").read_text())
    assert set(results) == {"default", "no skip-grams"}
    assert results["no skip-grams"]["vocab"] < results["default"]["vocab"]
    assert all(0 < r["cosine"] < 1 and r["epochs"] == 1 for r in results.values())
    assert "| no skip-grams |" in (tmp_path / "student_ablations.md").read_text()


@pytest.mark.slow
def test_bench_tokenizer_speed_small(small_run, env, tmp_path):
    out, _, _ = small_run
    vocab, folded = str(out / "vocab"), str(out / "student-folded")
    proc = bench("tokenizer_speed.py", "--vocab", vocab, "--student", folded, "--small", "--results", str(tmp_path))
    md = (tmp_path / "tokenizer_speed.md").read_text()
    assert md.splitlines()[0].startswith("`python bench/tokenizer_speed.py") and "|" in proc.stdout
    data = json.loads((tmp_path / "tokenizer_speed.json").read_text())
    assert data and all(np.isfinite(list(numbers_in(data))))


@pytest.mark.slow
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


@pytest.mark.slow
def test_cli_distill_fitted_to_a_beir_folder(small_run, env, tmp_path):
    """Issue #16 item 1: a student fitted to a user's documents (a tiny BEIR folder of real SciFact documents), its
    vocabulary merged into the general one, general texts mixed in."""
    from st_bertapprox.data.shared import dataset_path

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
    from st_bertapprox.persistence.loading import load_model

    emb = load_model(str(out / "student-folded")).encode(["Aspirin lowers the risk of heart attack."])
    assert emb.shape == (1, 384) and np.isfinite(emb).all()


@pytest.mark.slow
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
    from st_bertapprox.persistence.loading import load_model

    texts = ["A man is playing a guitar.", "Aspirin lowers the risk of heart attack.", ""]
    unfolded, folded = load_model(str(out / "student")), load_model(str(out / "student-folded"))
    assert unfolded[1].context_layers == folded[1].context_layers == 1
    ref = unfolded.encode(texts)
    assert np.abs(folded.encode(texts) - ref).max() <= 1e-5
    from st_bertapprox.inference.numpy_student import NumpyStudent

    assert np.abs(NumpyStudent.from_pretrained(str(out / "student-folded")).encode(texts) - ref).max() <= 1e-5


@pytest.mark.slow
def test_cli_mteb_on_the_small_student(small_run, env, tmp_path):
    out, results, _ = small_run
    proc = cli("mteb", str(out / "student-folded"), "--tasks", "STSBenchmarkDev", "--output", str(tmp_path), env=env)
    score = float(re.search(r"STSBenchmarkDev: ([0-9.]+)", proc.stdout)[1])
    # the local STSBenchmarkDev task is STS-B dev: the same score the distillation reported
    assert score == pytest.approx(results["metrics"]["sts-dev_spearman_cosine"], abs=2e-3)


@pytest.mark.slow
def test_cli_push_to_a_local_hub_and_offline(small_run, tmp_path):
    out, _, _ = small_run
    with HubServer(tmp_path / "hub") as hub:
        env = hub_env(tmp_path, "push", HF_ENDPOINT=hub.url)
        proc = cli("push", str(out / "student-folded"), "user/small-student", env=env)
        assert "pushed" in proc.stdout
        repo = tmp_path / "hub" / "models--user--small-student"
        snapshot = repo / "snapshots" / (repo / "refs" / "main").read_text().strip()
        assert {"modules.json", "README.md", "st_bertapprox_student.py"} <= {p.name for p in snapshot.iterdir()}


@pytest.mark.slow
def test_cli_push_offline_is_a_clear_error(small_run, capsys):
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # conftest: this process never reaches the Hub
    code, err = main_in_process("push", str(small_run[0] / "student-folded"), "user/x", capsys=capsys)
    assert code == 2 and "cannot push while offline" in err, err


@pytest.mark.slow
def test_bench_frontier_small(small_run, env, tmp_path):
    """bench/frontier.py --small: every row and column, the plot, and it prints the JSON it writes. The model2vec
    distill is a stand-in (the teacher's word embeddings as a StaticModel: instant) and tokenlearn is off: the real
    ones take minutes, and bench/student.py's test runs them."""
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    from st_bertapprox.data.shared import teacher_path

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


@pytest.mark.slow
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


@pytest.mark.slow
def test_bench_qa_small(small_run, tmp_path):
    """bench/qa.py --small: trains a reader on 16 questions, then every row (reader only, teacher and student
    retrievers at k 1 and 3) with finite EM/F1/hit@k, and the reasoning line."""
    args = ["--small", "--student", str(small_run[0] / "student-folded"), "--out", str(tmp_path / "reader")]
    proc = bench("qa.py", *args, "--results", str(tmp_path))
    md = (tmp_path / "qa.md").read_text()
    assert md.splitlines()[0].startswith("`python bench/qa.py --small") and "Wall time of the whole run" in md
    results = json.loads((tmp_path / "qa.json").read_text())
    assert results["reader"]["questions"] == 16 and 0 <= results["reader"]["f1"] <= 100
    assert set(results["end_to_end"]) == {"teacher (all-MiniLM-L6-v2)", "student (folded)"}
    for name, runs in results["end_to_end"].items():
        for k in ("k=1", "k=3"):
            assert all(math.isfinite(v) and v >= 0 for v in runs[k].values()), (name, k, runs[k])
            assert 0 <= runs[k]["exact_match"] <= runs[k]["f1"] <= 100 and 0 <= runs[k]["hit"] <= 100
        assert f"| {name} retrieves, reader reads | 1 |" in proc.stdout
    assert "| reader only (gold paragraph) |" in md and "Reasoning type" in md
