"""Model cards for every model kind we make.

* :class:`CardInfo`: what a card says (base model, datasets, the measured numbers, the command that made it);
  :func:`render_card` renders ``templates/model_card.md`` with it, :func:`write_card` writes ``README.md`` and
  ``card.json`` (the card's inputs, so a later push re-renders the same card) into a model folder.
* :func:`update_card` re-renders a saved folder's card with MTEB rows (``evaluation.mteb.cards.mteb_card_rows``): the
  card's ``model-index`` then carries each task's main score, under MTEB's official task name only where the data,
  split and protocol are the official ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from importlib.resources import files
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from sentence_transformers import SentenceTransformer

from st_bertapprox.modules.io import load_json, save_json


@dataclass(frozen=True)
class MetricSpec:
    """Where a measured number comes from, as a card's ``model-index`` entry and results table name it."""

    task_type: str  # model-index task type ("STS", "Retrieval", ...)
    task_name: str
    dataset_id: str  # model-index dataset type: a Hub dataset id, or what the texts came from
    dataset_name: str  # the name in the card's results table
    split: str
    metric: str


# metric key in results -> where it comes from
METRICS = {
    "stsb_dev_spearman": MetricSpec(
        task_type="STS",
        task_name="Semantic Textual Similarity",
        dataset_id="sentence-transformers/stsb",
        dataset_name="STS Benchmark",
        split="validation",
        metric="spearman_cosine",
    ),
    "scifact_ndcg_at_10": MetricSpec(
        task_type="Retrieval",
        task_name="Retrieval",
        dataset_id="mteb/scifact",
        dataset_name="SciFact",
        split="test",
        metric="ndcg_at_10",
    ),
    "heldout_cosine_to_teacher": MetricSpec(
        task_type="feature-extraction",
        task_name="Distillation",
        dataset_id="wikipedia",
        dataset_name="Held-out Wikipedia sentences",
        split="heldout",
        metric="cosine_to_teacher",
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
    """The model card (``README.md`` text) of ``model``: ``templates/model_card.md`` rendered with ``info``.

    Args:
        model: the model the card describes (its embedding dimension is one of the card's facts).
        info: what the card says: provenance and the measured results (keys of :data:`METRICS`).
        repo_id: the Hub id the card names and shows in its load snippet.
        remote_code: whether the model loads only with ``trust_remote_code=True``.
        code_files: the module code files the folder carries, named in the card.

    Returns:
        The card's text: YAML metadata (with a ``model-index`` of the results) and the rendered template.
    """
    metrics = dict(METRICS)
    if info.heldout_dataset:  # the held-out texts of a user corpus, not the default Wikipedia sentences
        metrics["heldout_cosine_to_teacher"] = replace(
            METRICS["heldout_cosine_to_teacher"],
            dataset_id=info.heldout_dataset,
            dataset_name=f"Held-out texts of {info.heldout_dataset}",
        )
    eval_results = [
        EvalResult(
            task_type=spec.task_type,
            task_name=spec.task_name,
            dataset_type=spec.dataset_id,
            dataset_name=spec.dataset_name,
            dataset_split=spec.split,
            metric_type=spec.metric,
            metric_value=round(float(info.results[key]), 4),
        )
        for key, spec in metrics.items()
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
        {"task": metrics[k].dataset_name, "metric": metrics[k].metric, "value": v}
        for k, v in info.results.items()
        if k in metrics
    ]
    card = ModelCard.from_template(
        card_data,
        template_str=files("st_bertapprox.persistence")
        .joinpath("templates/model_card.md")
        .read_text(encoding="utf-8"),
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
    write_card(model, path, info, repo_id=repo_id)
    return info


def load_card_info(path: str) -> CardInfo | None:
    """The :class:`CardInfo` saved next to a model by :func:`save_pretrained`, or None (fields unknown to this
    version are dropped: a card written by a newer st-bertapprox still loads)."""
    card = Path(path, "card.json")
    if not card.exists():
        return None
    known = {f.name for f in fields(CardInfo)}
    return CardInfo(**{k: v for k, v in load_json(card).items() if k in known})


def write_card(model: SentenceTransformer, folder: str, info: CardInfo, repo_id: str | None) -> None:
    """Write the card of the model saved in ``folder``: ``README.md`` (:func:`render_card`) and ``card.json``.

    Args:
        model: the model saved in ``folder``.
        folder: a saved model folder (its ``modules.json`` says whether it needs remote code).
        info: what the card says; saved as ``card.json`` so a later push re-renders the same card.
        repo_id: the Hub id the card names (default: ``info.title``).
    """
    modules = json.loads(Path(folder, "modules.json").read_text(encoding="utf-8"))
    remote = not all(m["type"].startswith("sentence_transformers.") for m in modules)
    code_files = sorted(p.name for p in Path(folder).glob("*.py"))
    card = render_card(model, info, repo_id or info.title, remote, code_files)
    Path(folder, "README.md").write_text(card, encoding="utf-8")
    save_json(asdict(info), os.path.join(folder, "card.json"))
