"""MTEB (2.x) on any of our models, offline-capable.

Local tasks subclass the official task classes, so the task name, main score, splits and result file names are the
official ones; only ``load_data`` reads the shared data folder instead of the Hub:
  * ``STSBenchmark``: our STS-B *dev* CSV exposed under mteb's split name ``test`` (the shared data has no test
    split), so its score equals ``EmbeddingSimilarityEvaluator`` on dev and is not comparable with official
    STSBenchmark (test) results; its dataset revision is recorded as ``local-dev-as-test``.
  * ``SciFact``: the BEIR files (corpus, queries, qrels/test.tsv), i.e. the same data as the official task.
Online, ``local=False`` (or ``--official`` on the command line) runs the official tasks unchanged, any task name.
Results are written in the standard layout ``{output}/results/{org}__{name}/{revision}/{Task}.json`` with
``model_meta.json``, ready to copy into a leaderboard submission.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..data import load_beir, load_stsb


def _local_task_classes() -> dict[str, type]:
    import mteb
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    official_stsb = type(mteb.get_task("STSBenchmark"))
    official_scifact = type(mteb.get_task("SciFact"))

    class LocalSTSBenchmark(official_stsb):
        metadata = official_stsb.metadata.model_copy(
            update={
                "dataset": {"path": "st-bertapprox/stsb-dev", "revision": "local-dev-as-test"},
                "superseded_by": None,
            }
        )

        def load_data(self, num_proc: int | None = None, **kwargs) -> None:
            if self.data_loaded:
                return
            dev = load_stsb("dev")  # scores scaled to 0-1; the task expects STS-B's 0-5
            self.dataset = DatasetDict({"test": dev.map(lambda row: {"score": row["score"] * 5})})
            self.data_loaded = True

    class LocalSciFact(official_scifact):
        metadata = official_scifact.metadata.model_copy(
            update={"dataset": {"path": "st-bertapprox/scifact", "revision": "local-beir"}}
        )

        def load_data(self, num_proc: int | None = None, **kwargs) -> None:
            if self.data_loaded:
                return
            self.dataset = {"default": {}}
            for split in self.eval_splits:
                corpus, queries, qrels = load_beir("scifact", split, join=False)
                self.dataset["default"][split] = RetrievalSplitData(
                    corpus=Dataset.from_dict(
                        {
                            "id": list(corpus),
                            "title": [d["title"] for d in corpus.values()],
                            "text": [d["text"] for d in corpus.values()],
                        }
                    ),
                    queries=Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
                    relevant_docs=qrels,
                    top_ranked=None,
                )
            self.data_loaded = True

    return {"STSBenchmark": LocalSTSBenchmark, "SciFact": LocalSciFact}


def get_tasks(task_names: list[str], local: bool = True) -> list:
    """Task objects: our local versions where we have the data (``local=True``), the official tasks otherwise."""
    import mteb

    local_tasks = _local_task_classes() if local else {}
    unknown = [name for name in task_names if name not in local_tasks] if local else []
    if unknown:
        raise ValueError(
            f"No local MTEB task {unknown}: the local tasks are {sorted(local_tasks)}; other tasks need the Hub "
            "(--official)."
        )
    if local:
        return [local_tasks[name]() for name in task_names]
    try:
        return [mteb.get_task(name) for name in task_names]
    except KeyError as e:
        raise ValueError(f"mteb has no such task: {e.args[0]} (see `mteb.get_tasks()` for the names)") from e


def run_mteb(
    model,
    task_names: list[str],
    output_folder: str,
    model_name: str | None = None,
    revision: str | None = None,
    local: bool = True,
    batch_size: int = 64,
) -> dict[str, float]:
    """Evaluate a SentenceTransformer with ``mteb.evaluate``; returns ``{task: main_score}`` and writes MTEB's layout.

    mteb names the results folder after ``model.model_card_data.model_name`` and ``base_model_revision``; both are
    set from ``model_name``/``revision`` for the duration of the call.
    """
    try:
        import mteb
    except ImportError as e:
        raise ImportError("MTEB evaluation needs mteb: pip install 'st-bertapprox[eval]'") from e
    card = model.model_card_data
    saved = (card.model_name, card.base_model_revision)
    card.model_name = model_name or card.model_name or "st-bertapprox/unnamed-model"
    card.base_model_revision = revision or card.base_model_revision or "local"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The fill_missing parameter is deprecated")  # mteb 2.26 noise
            warnings.filterwarnings("ignore", message="The `get_sentence_embedding_dimension` method")
            result = mteb.evaluate(
                model,
                get_tasks(task_names, local=local),
                cache=mteb.ResultCache(cache_path=output_folder),
                overwrite_strategy="always",  # the default "only-missing" returns stale scores after retraining
                encode_kwargs={"batch_size": batch_size},
                co2_tracker=False,
            )
    finally:
        card.model_name, card.base_model_revision = saved
    return {tr.task_name: float(tr.get_score()) for tr in result.task_results}


def results_path(output_folder: str, model_name: str, revision: str) -> Path:
    return Path(output_folder) / "results" / model_name.replace("/", "__").replace(" ", "_") / revision
