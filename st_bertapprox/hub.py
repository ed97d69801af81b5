"""Model cards and Hub pushes for every model kind we make.

* :func:`save_pretrained`: a self-contained folder (custom module code copied in, see ``export.save_with_code``) or,
  with ``builtin=True``, built-in modules only; plus a model card rendered from ``templates/model_card.md`` with the
  measured numbers, and ``card.json`` (the card's inputs, so a later push re-renders the same card).
* :func:`push_to_hub`: the same folder, uploaded with ``huggingface_hub`` (``create_repo`` + ``upload_folder``).
* :func:`mteb_card_rows` reads MTEB results files (``st-bertapprox mteb``) into ``CardInfo.mteb_results``, and
  :func:`update_card` re-renders a saved folder's card with them: the card's ``model-index`` then carries each task's
  main score, under MTEB's official task name only where the data, split and protocol are the official ones.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from importlib.resources import files
from pathlib import Path

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from sentence_transformers import SentenceTransformer

from .export import export_builtin, save_with_code
from .modules.files import atomic_dir, load_json, save_json

# metric key in results -> (task type, task name, dataset id, dataset name, split, metric)
METRICS = {
    "stsb_dev_spearman": (
        "STS",
        "Semantic Textual Similarity",
        "sentence-transformers/stsb",
        "STS Benchmark",
        "validation",
        "spearman_cosine",
    ),
    "scifact_ndcg_at_10": ("Retrieval", "Retrieval", "mteb/scifact", "SciFact", "test", "ndcg_at_10"),
    "heldout_cosine_to_teacher": (
        "feature-extraction",
        "Distillation",
        "wikipedia",
        "Held-out Wikipedia sentences",
        "heldout",
        "cosine_to_teacher",
    ),
}


@dataclass
class CardInfo:
    """What a model card says beyond what the model itself tells: provenance and measured results."""

    title: str
    description: str
    architecture: str
    training: str
    command: str
    base_model: str | None = None
    datasets: list[str] = field(default_factory=list)
    results: dict[str, float] = field(default_factory=dict)  # keys of METRICS, measured values
    facts: dict[str, str] = field(default_factory=dict)  # shown as a table under "Model"
    tags: list[str] = field(default_factory=list)
    eval_note: str = ""
    heldout_dataset: str = ""  # what the held-out texts came from, when not the default Wikipedia sentences
    mteb_results: list[dict] = field(default_factory=list)  # mteb_card_rows(): read from MTEB results files
    mteb_command: str = ""  # the command that wrote those results files


def mteb_card_rows(results_folder: str | os.PathLike) -> list[dict]:
    """One row per ``{Task}.json`` of an MTEB results folder (``{output}/results/{org}__{name}/{revision}``), read with
    mteb's own loader (``TaskResult.from_disk``): task, type, dataset, split, dataset revision, main metric, value, and
    whether the task is MTEB's official one (same data, split and protocol) or one of our local tasks.

    Raises:
        FileNotFoundError: the folder holds no results file.
    """
    from mteb import TaskResult, get_task

    from .evaluation.mteb_tasks import local_task_classes, official_name

    local = local_task_classes()
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


def _mteb_eval_results(rows: list[dict]) -> list[EvalResult]:
    """model-index entries: MTEB's naming (``MTEB <Task> (default)``) for official tasks, ours for local ones."""
    return [
        EvalResult(
            task_type=row["type"],
            task_name=row["type"],
            dataset_type=row["dataset"],
            dataset_name=f"MTEB {row['task']} (default)"
            if row["official"]
            else f"{row['task']} (st-bertapprox local)",
            dataset_config="default",
            dataset_split=row["split"],
            dataset_revision=row["revision"],
            metric_type=row["metric"],
            metric_name=row["metric"],
            metric_value=round(row["value"], 4),
            source_name="MTEB" if row["official"] else None,
            source_url="https://github.com/embeddings-benchmark/mteb" if row["official"] else None,
        )
        for row in rows
    ]


def render_card(
    model: SentenceTransformer, info: CardInfo, repo_id: str, remote_code: bool, code_files: list[str]
) -> str:
    metrics = dict(METRICS)
    if info.heldout_dataset:  # the held-out texts of a user corpus, not the default Wikipedia sentences
        t_type, t_name, _, _, split, metric = METRICS["heldout_cosine_to_teacher"]
        name = f"Held-out texts of {info.heldout_dataset}"
        metrics["heldout_cosine_to_teacher"] = (t_type, t_name, info.heldout_dataset, name, split, metric)
    eval_results = [
        EvalResult(
            task_type=t_type,
            task_name=t_name,
            dataset_type=d_id,
            dataset_name=d_name,
            dataset_split=split,
            metric_type=metric,
            metric_value=round(float(info.results[key]), 4),
        )
        for key, (t_type, t_name, d_id, d_name, split, metric) in metrics.items()
        if key in info.results
    ] + _mteb_eval_results(info.mteb_results)
    card_data = ModelCardData(
        library_name="sentence-transformers",
        pipeline_tag="sentence-similarity",
        tags=["sentence-transformers", "feature-extraction", "sentence-similarity", "st-bertapprox", *info.tags],
        base_model=info.base_model,
        datasets=info.datasets or None,
        model_name=repo_id,
        eval_results=eval_results or None,
        license="apache-2.0",
        language="en",
    )
    facts = {"embedding dimension": str(model.get_embedding_dimension()), **info.facts}
    rows = [
        {"task": metrics[k][3], "metric": metrics[k][5], "value": v} for k, v in info.results.items() if k in metrics
    ]
    card = ModelCard.from_template(
        card_data,
        template_str=files("st_bertapprox").joinpath("templates/model_card.md").read_text(encoding="utf-8"),
        title=info.title,
        description=info.description,
        repo_id=repo_id,
        remote_code=remote_code,
        code_files=", ".join(f"`{f}`" for f in code_files),
        architecture=info.architecture,
        facts=facts,
        training=info.training,
        command=info.command,
        results=rows,
        eval_note=info.eval_note,
        mteb=info.mteb_results,
        mteb_command=info.mteb_command,
    )
    return str(card)


def save_pretrained(
    model: SentenceTransformer,
    path: str,
    info: CardInfo | None = None,
    repo_id: str | None = None,
    builtin: bool = False,
) -> None:
    """Save a loadable-anywhere folder (+ model card when ``info`` is given), atomically: the folder appears (or
    replaces an earlier one) only once everything is written."""
    with atomic_dir(path) as tmp:
        if builtin:
            export_builtin(model, tmp)
        else:
            save_with_code(model, tmp)
        if info is not None:
            _write_card(model, tmp, info, repo_id)


def _write_card(model: SentenceTransformer, folder: str, info: CardInfo, repo_id: str | None) -> None:
    modules = json.loads(Path(folder, "modules.json").read_text(encoding="utf-8"))
    remote = not all(m["type"].startswith("sentence_transformers.") for m in modules)
    code_files = sorted(p.name for p in Path(folder).glob("*.py"))
    card = render_card(model, info, repo_id or info.title, remote, code_files)
    Path(folder, "README.md").write_text(card, encoding="utf-8")
    save_json(asdict(info), os.path.join(folder, "card.json"))


def update_card(model: SentenceTransformer, path: str, mteb_results: list[dict], command: str = "") -> CardInfo:
    """Re-render the card (``README.md``, ``card.json``) of a folder saved by :func:`save_pretrained` with
    ``mteb_results`` (:func:`mteb_card_rows`) replacing its MTEB results; the weights are not touched.

    Raises:
        FileNotFoundError: the folder has no ``card.json`` (not saved with a card by st-bertapprox).
    """
    info = load_card_info(path)
    if info is None:
        raise FileNotFoundError(
            f"{path} has no card.json: only folders saved with a card by st-bertapprox can be updated."
        )
    info.mteb_results, info.mteb_command = mteb_results, command
    readme = Path(path, "README.md")
    repo_id = ModelCard.load(readme).data.model_name if readme.is_file() else None  # the id the card was made for
    _write_card(model, path, info, repo_id=repo_id)
    return info


def load_card_info(path: str) -> CardInfo | None:
    """The :class:`CardInfo` saved next to a model by :func:`save_pretrained`, or None (fields unknown to this
    version are dropped: a card written by a newer st-bertapprox still loads)."""
    card = Path(path, "card.json")
    if not card.exists():
        return None
    known = {f.name for f in fields(CardInfo)}
    return CardInfo(**{k: v for k, v in load_json(card).items() if k in known})


def push_to_hub(
    model: SentenceTransformer,
    repo_id: str,
    info: CardInfo | None = None,
    builtin: bool = False,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload st-bertapprox model",
) -> str:
    """Save like :func:`save_pretrained` into a temporary folder and upload it; returns the commit URL."""
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, info, repo_id=repo_id, builtin=builtin)
        commit = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
    return str(commit)
