"""MTEB results -> model-card rows (:func:`mteb_card_rows`): what ``st-bertapprox mteb --update-card`` hands to
``persistence.cards.update_card``, each task under MTEB's official name only where data, split and protocol are the
official ones."""

from __future__ import annotations

import os
from pathlib import Path

from st_bertapprox.evaluation.mteb.tasks import LOCAL_TASKS, official_name


def mteb_card_rows(results_folder: str | os.PathLike) -> list[dict]:
    """One row per ``{Task}.json`` of an MTEB results folder (``{output}/results/{org}__{name}/{revision}``), read with
    mteb's own loader (``TaskResult.from_disk``): task, type, dataset, split, dataset revision, main metric, value, and
    whether the task is MTEB's official one (same data, split and protocol) or one of our local tasks.

    Raises:
        FileNotFoundError: the folder holds no results file.
    """
    from mteb import TaskResult, get_task

    local = LOCAL_TASKS
    order = {name: i for i, name in enumerate(local)}  # the suite's order, then other tasks by name
    paths = sorted(
        (p for p in Path(results_folder).glob("*.json") if p.name != "model_meta.json"),
        key=lambda p: (order.get(p.stem, len(order)), p.stem),
    )
    if not paths:
        raise FileNotFoundError(f"No MTEB results files in {results_folder}: run `st-bertapprox mteb` first.")
    rows = []
    for path in paths:
        result = TaskResult.from_disk(path)
        local_run = result.dataset_revision.startswith("local")  # our tasks mark their data's revision local-...
        sampled = "-limit" in result.dataset_revision  # a test run on a sample: never the official protocol
        meta = (local[result.task_name] if local_run else type(get_task(result.task_name))).metadata
        for split in result.scores:
            rows.append(
                {
                    "task": result.task_name,
                    "type": meta.type,
                    "dataset": meta.dataset["path"],
                    "split": split,
                    "revision": result.dataset_revision,
                    "metric": meta.main_score,
                    "value": float(result.get_score(splits=[split])),
                    "official": not sampled and (official_name(result.task_name) or not local_run),
                    "mteb_version": result.mteb_version,
                }
            )
    return rows
