"""MTEB (2.x) on any of our models, offline: the local suite, results in MTEB's layout, a leaderboard-style table.

* :func:`get_tasks`: the local tasks of :mod:`.tasks` (``local=True``; ``LOCAL_SUITE`` lists them, one or more per
  task type), or the official tasks from the Hub (``local=False``, any MTEB task name).
* :func:`run_mteb`: ``mteb.evaluate`` one model; results go to
  ``{output}/results/{org}__{name}/{revision}/{Task}.json`` with ``model_meta.json``, MTEB's own layout.
* :func:`load_scores`: the main scores back from such a folder, read by mteb's own loader
  (``ResultCache.load_results``).
* :func:`leaderboard`: those scores as a markdown table, one row per model: mean over tasks, mean over task types,
  each task-type average and each task (scores x 100, as the MTEB leaderboard shows them).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import mteb

from st_bertapprox.evaluation.mteb.tasks import LOCAL_TASKS

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# The STS-B task was called "STSBenchmark" before the suite (it is STS-B dev, the official task is STS-B test).
RENAMED = {"STSBenchmark": "STSBenchmarkDev"}


def get_tasks(task_names: list[str], local: bool = True, limit: int | None = None) -> list:
    """Task objects: the local tasks (``local=True``), else the official ones (Hub data, any MTEB task name).

    Args:
        task_names: Task names (see ``LOCAL_SUITE``).
        local: Local tasks on the shared data, offline; ``False``: the official tasks, unchanged.
        limit: Local tasks only, for tests: a seeded sample of that many rows per split (the results record it).

    Raises:
        ValueError: an unknown task name (before any model is loaded).
    """
    if not local:
        try:
            return [mteb.get_task(name) for name in task_names]
        except KeyError as e:
            raise ValueError(f"mteb has no such task: {e.args[0]} (see `mteb.get_tasks()` for the names)") from e
    classes = LOCAL_TASKS
    unknown = [name for name in task_names if name not in classes]
    if unknown:
        renamed = [
            f"{old} is {RENAMED[old]} here (STS-B dev; the official {old} is STS-B test)"
            for old in unknown
            if old in RENAMED
        ]
        hint = f" {'; '.join(renamed)}." if renamed else ""
        raise ValueError(
            f"No local MTEB task {unknown}: the local tasks are {list(classes)}; other tasks need the Hub "
            f"(--official).{hint}"
        )
    return [classes[name](limit=limit) for name in task_names]


def task_types(task_names: list[str], local: bool = True) -> dict[str, str]:
    """``{task: MTEB task type}`` (STS, Retrieval, Reranking, Classification, Clustering, PairClassification, ...)."""
    return {task.metadata.name: task.metadata.type for task in get_tasks(task_names, local=local)}


def run_mteb(
    model: SentenceTransformer,
    task_names: list[str],
    output_folder: str,
    model_name: str | None = None,
    revision: str | None = None,
    local: bool = True,
    batch_size: int = 64,
    limit: int | None = None,
    show_progress_bar: bool = True,
) -> dict[str, float]:
    """Evaluate a SentenceTransformer with ``mteb.evaluate``; returns ``{task: main_score}`` and writes MTEB's layout.

    mteb names the results folder after ``model.model_card_data.model_name`` and ``base_model_revision``; both are
    set from ``model_name``/``revision`` for the duration of the call. ``show_progress_bar``: mteb's bar over the
    tasks and the encoding bars.
    """
    tasks = get_tasks(task_names, local=local, limit=limit)
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
                tasks,
                cache=mteb.ResultCache(cache_path=output_folder),
                overwrite_strategy="always",  # the default "only-missing" returns stale scores after retraining
                encode_kwargs={"batch_size": batch_size, "show_progress_bar": show_progress_bar},
                co2_tracker=False,
                show_progress_bar=show_progress_bar,
            )
    finally:
        card.model_name, card.base_model_revision = saved
    return {tr.task_name: float(tr.get_score()) for tr in result.task_results}


def results_path(output_folder: str, model_name: str, revision: str) -> Path:
    """The folder where :func:`run_mteb` writes ``model_name``'s results at ``revision`` (MTEB's layout)."""
    return Path(output_folder) / "results" / model_name.replace("/", "__").replace(" ", "_") / revision


def load_scores(output_folder: str, models: list[str] | None = None) -> dict[str, dict[str, float]]:
    """``{model name: {task: main score}}`` of a results folder, read by mteb's own loader.

    Args:
        output_folder: What :func:`run_mteb` wrote to (``{output}/results/...``).
        models: Model names to read (default: every model with a ``model_meta.json`` there).
    """
    results = mteb.ResultCache(cache_path=output_folder).load_results(
        models=models, require_model_meta=True, include_remote=False
    )
    scores: dict[str, dict[str, float]] = {}
    for model_result in results.model_results:
        for task_result in model_result.task_results:
            scores.setdefault(model_result.model_name, {})[task_result.task_name] = float(task_result.get_score())
    return scores


def leaderboard(scores: dict[str, dict[str, float]], types: dict[str, str]) -> str:
    """A markdown table like MTEB's leaderboard: per model, mean over tasks, mean over task types, each task type's
    average and each task's main score (x 100). A model missing a task gets no mean (``n/a``), as on the leaderboard.

    Args:
        scores: ``{model: {task: main score}}`` (:func:`load_scores`, :func:`run_mteb`), rows in this order.
        types: ``{task: task type}`` (:func:`task_types`): the task columns, in this order.
    """
    kinds = list(dict.fromkeys(types.values()))

    def cell(values: list[float | None]) -> str:
        return "n/a" if not values or None in values else f"{100 * sum(values) / len(values):.2f}"

    header = ["model", "mean (task)", "mean (type)", *(f"**{k}**" for k in kinds), *types]
    rows = []
    for model, got in scores.items():
        per_kind = {k: [got.get(t) for t, kind in types.items() if kind == k] for k in kinds}
        kind_means = [None if None in v else sum(v) / len(v) for v in per_kind.values()]
        rows.append(
            [
                model,
                cell([got.get(t) for t in types]),
                cell(kind_means),
                *(cell(v) for v in per_kind.values()),
                *(cell([got.get(t)]) for t in types),
            ]
        )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])
