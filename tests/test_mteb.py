"""MTEB 2.x offline: the local suite (one task per type), results in MTEB's layout read back by mteb's own loader, the
leaderboard table, the command line, and model cards whose model-index is rendered from the results files."""

from __future__ import annotations

import json
import math

import pytest
import yaml

pytest.importorskip("mteb")

from conftest import require_dataset  # noqa: E402

from st_bertapprox.evaluation.mteb.run import (  # noqa: E402
    get_tasks,
    leaderboard,
    load_scores,
    results_path,
    run_mteb,
    task_types,
)
from st_bertapprox.evaluation.mteb.tasks import LOCAL_SUITE  # noqa: E402

DATASETS = ("stsb", "scifact", "banking77", "agnews", "bbc-news", "snli")
LIMIT = 200  # rows per split: every task runs in about a second on a static model
TYPES = {"STS", "Retrieval", "Reranking", "Classification", "Clustering", "PairClassification"}
MODEL = "test/static-minilm"
# Floors well above what each task gives when its texts and labels are misaligned (chance: STS 0, retrieval and
# reranking ~0 (few relevant documents among the candidates), Banking77 1/77, AG News 1/4, V-measure ~0, AP ~0.5),
# and below what the static model scores (measured at LIMIT: 0.65, 0.62, 0.58, 0.60+, 0.70, 0.25, 0.48, 0.73).
FLOORS = {
    "STSBenchmarkDev": 0.4,
    "SciFact": 0.4,
    "SciFactRerankingLocal": 0.4,
    "Banking77Classification": 0.3,
    "AGNewsClassificationLocal": 0.5,
    "AGNewsClusteringLocal": 0.1,
    "BBCNewsClusteringLocal": 0.25,
    "SNLIPairClassificationLocal": 0.6,
}


def static_model(minilm_path: str):
    """A tiny-to-run model: the teacher's input (word-piece) embeddings, averaged (StaticEmbedding)."""
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    weights = load_file(f"{minilm_path}/model.safetensors")
    table = next(v for k, v in weights.items() if k.endswith("word_embeddings.weight"))
    tokenizer = Tokenizer.from_file(f"{minilm_path}/tokenizer.json")
    return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=table)], device="cpu")


@pytest.fixture(scope="module")
def suite_run(minilm_path, tmp_path_factory):
    """The static model through every local task (LIMIT rows per split): (output folder, {task: score})."""
    for name in DATASETS:
        require_dataset(name)
    from threadpoolctl import threadpool_limits

    out = str(tmp_path_factory.mktemp("mteb"))
    with threadpool_limits(1):  # k-means' OpenMP threads: 80x slower when they oversubscribe a busy CI machine
        scores = run_mteb(static_model(minilm_path), list(LOCAL_SUITE), out, model_name=MODEL, limit=LIMIT)
    return out, scores


def test_the_local_suite_covers_every_task_type_and_keeps_official_names_only_for_official_protocols():
    import mteb

    from st_bertapprox.evaluation.mteb.tasks import LOCAL_TASKS, official_name

    assert list(LOCAL_TASKS) == list(LOCAL_SUITE)
    assert set(task_types(list(LOCAL_SUITE)).values()) == TYPES
    for task in get_tasks(list(LOCAL_SUITE)):
        name = task.metadata.name
        if official_name(name):  # same data, split and protocol: the official metadata, data marked local
            official = mteb.get_task(name).metadata
            assert (task.metadata.main_score, task.metadata.eval_splits) == (official.main_score, official.eval_splits)
            assert isinstance(task, type(mteb.get_task(name)))  # the official class: its protocol
        else:  # a name of our own, which no official task has
            with pytest.raises(KeyError):
                mteb.get_task(name)
        assert task.metadata.dataset["revision"].startswith("local")
    with pytest.raises(ValueError, match="STSBenchmarkDev"):  # the old local name says where it went
        get_tasks(["STSBenchmark"])


@pytest.mark.parametrize("task", LOCAL_SUITE)
def test_each_local_task_scores_a_tiny_model(suite_run, task):
    """Every task loads its data and scores the static model well above chance (misaligned data would not)."""
    _, scores = suite_run
    assert math.isfinite(scores[task]) and FLOORS[task] < scores[task] <= 1, (task, scores[task])


def test_reranking_is_cosine_over_the_bm25_candidates(suite_run, minilm_path):
    """SciFactRerankingLocal, recomputed by hand: each query's 10 BM25 candidates ranked by cosine, nDCG@10 against
    the test qrels (relevant documents BM25 missed included), averaged over the queries: mteb's score."""
    import numpy as np
    import pytrec_eval

    from st_bertapprox.data.shared import load_beir
    from st_bertapprox.evaluation.mteb.tasks import RERANK_CANDIDATES, bm25_top_k

    task = get_tasks(["SciFactRerankingLocal"], limit=LIMIT)[0]
    task.load_data()
    queries = dict(zip(*task.dataset["default"]["test"]["queries"][:].values()))
    corpus, _, qrels = load_beir("scifact", "test")
    top = bm25_top_k(corpus, queries, RERANK_CANDIDATES)
    model = static_model(minilm_path)
    run = {}
    for qid, text in queries.items():
        q = model.encode(text, normalize_embeddings=True)
        docs = model.encode([corpus[d] for d in top[qid]], normalize_embeddings=True)
        run[qid] = {d: float(s) for d, s in zip(top[qid], docs @ q)}
    ndcg = pytrec_eval.RelevanceEvaluator({q: qrels[q] for q in queries}, {"ndcg_cut.10"}).evaluate(run)
    expected = np.mean([v["ndcg_cut_10"] for v in ndcg.values()])
    assert suite_run[1]["SciFactRerankingLocal"] == pytest.approx(expected, abs=1e-4)


def test_results_files_parse_with_mtebs_own_loader(suite_run):
    from mteb import TaskResult

    out, scores = suite_run
    loaded = load_scores(out)
    assert list(loaded) == [MODEL] and loaded[MODEL] == pytest.approx(scores, abs=1e-6)  # the files keep 6 digits
    folder = results_path(out, MODEL, "local")
    for task in LOCAL_SUITE:
        result = TaskResult.from_disk(folder / f"{task}.json")
        assert result.task_name == task
        assert result.dataset_revision.endswith(f"-limit{LIMIT}")  # a subsampled run says so in its results
    assert json.loads((folder / "model_meta.json").read_text())["name"] == MODEL
    table = leaderboard(loaded, task_types(list(LOCAL_SUITE))).splitlines()
    assert len(table) == 3 and all(t in table[0] for t in LOCAL_SUITE) and "mean (type)" in table[0]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    for line in table[2:]:
        row = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
        assert row["SciFact"] == f"{100 * loaded[row['model']]['SciFact']:.2f}"
        types = task_types(list(LOCAL_SUITE))
        clustering = [loaded[row["model"]][t] for t, kind in types.items() if kind == "Clustering"]
        assert row["**Clustering**"] == f"{100 * sum(clustering) / len(clustering):.2f}"


def test_model_card_model_index_is_rendered_from_the_results_files(suite_run, tmp_path):
    import shutil

    from test_hub import card
    from test_student import tiny_student

    from st_bertapprox.evaluation.mteb.cards import mteb_card_rows
    from st_bertapprox.persistence.cards import load_card_info, update_card
    from st_bertapprox.persistence.saving import save_pretrained

    out, scores = suite_run
    save_pretrained(tiny_student(), str(tmp_path / "model"), card({"stsb_dev_spearman": 0.5}), repo_id="user/m")
    sampled = mteb_card_rows(results_path(out, MODEL, "local"))
    assert [r["task"] for r in sampled] == list(LOCAL_SUITE) and not any(r["official"] for r in sampled)
    full = shutil.copytree(results_path(out, MODEL, "local"), tmp_path / "full")  # as a full run would write them
    for path in full.glob("*.json"):
        path.write_text(path.read_text().replace(f"-limit{LIMIT}", ""))
    rows = mteb_card_rows(full)
    update_card(tiny_student(), str(tmp_path / "model"), rows, command="st-bertapprox mteb m --suite local")
    text = (tmp_path / "model" / "README.md").read_text()
    meta = yaml.safe_load(text.split("---")[1])
    entries = {r["dataset"]["name"]: r for r in meta["model-index"][0]["results"]}
    assert "STS Benchmark" in entries  # the card's own results stay
    for task in LOCAL_SUITE:
        official = task in ("SciFact", "Banking77Classification")  # official data, split and protocol
        entry = entries[f"MTEB {task} (default)" if official else f"{task} (st-bertapprox local)"]
        assert entry["metrics"][0]["value"] == round(scores[task], 4)
        assert entry["dataset"]["revision"].startswith("local") and ("source" in entry) == official
    assert "st-bertapprox mteb m --suite local" in text and "### MTEB" in text and "user/m" in text
    assert load_card_info(str(tmp_path / "model")).mteb_results == rows  # a later push renders the same card


@pytest.mark.slow
def test_mteb_local_stsb_matches_the_evaluator(scratch_minilm, stsb_dev, tmp_path):
    scores = run_mteb(
        scratch_minilm, ["STSBenchmarkDev"], str(tmp_path), model_name="st-bertapprox/minilm-scratch", revision="v1"
    )
    # the EmbeddingSimilarityEvaluator's figure for this model (tests/test_bert.py checks the evaluator gives it)
    assert scores["STSBenchmarkDev"] == pytest.approx(0.8672, abs=1e-3)
    folder = results_path(str(tmp_path), "st-bertapprox/minilm-scratch", "v1")
    result = json.loads((folder / "STSBenchmarkDev.json").read_text())
    assert result["task_name"] == "STSBenchmarkDev"
    assert result["scores"]["validation"][0]["main_score"] == pytest.approx(scores["STSBenchmarkDev"], abs=1e-6)
    assert result["dataset_revision"] == "local-dev"  # local data is marked as such in the results
    assert json.loads((folder / "model_meta.json").read_text())["name"] == "st-bertapprox/minilm-scratch"


def test_cli_runs_several_models_prints_the_table_and_updates_cards(stsb_dev, tmp_path, capsys):
    """The student (custom modules) through the command line, twice under two names; --card renders its card."""
    from test_hub import card
    from test_student import tiny_student

    from st_bertapprox.cli.main import main
    from st_bertapprox.persistence.saving import save_pretrained

    save_pretrained(tiny_student(), str(tmp_path / "student"), card({}))
    folder = str(tmp_path / "student")
    main(["mteb", f"a/one={folder}", f"b/two={folder}", "--output", str(tmp_path / "mteb"), "--card"])
    printed = capsys.readouterr().out
    score = load_scores(str(tmp_path / "mteb"))["a/one"]["STSBenchmarkDev"]
    assert f"STSBenchmarkDev: {score:.4f}" in printed and "| a/one |" in printed and "| b/two |" in printed
    assert "STSBenchmarkDev (st-bertapprox local)" in (tmp_path / "student" / "README.md").read_text()
    with pytest.raises(SystemExit):  # two models, one results folder: refused before anything runs
        main(["mteb", folder, folder, "--output", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_bench_mteb_suite_small(tmp_path):
    """bench/mteb_suite.py --small (CI): the static model through the whole suite, the table in its report."""
    import subprocess
    import sys
    from pathlib import Path

    for name in DATASETS:
        require_dataset(name)
    root = Path(__file__).resolve().parents[1]
    args = ["--small", "--threads", "1", "--results", str(tmp_path), "--output", str(tmp_path / "mteb")]
    proc = subprocess.run(
        [sys.executable, str(root / "bench" / "mteb_suite.py"), *args], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "mteb.md").read_text()
    assert md.startswith("`python bench/mteb_suite.py --small") and "| static input embeddings of the teacher |" in md
    data = json.loads((tmp_path / "mteb.json").read_text())
    assert set(data["scores"]["static input embeddings of the teacher"]) == set(LOCAL_SUITE)
    assert data["scores"] == load_scores(str(tmp_path / "mteb"))
