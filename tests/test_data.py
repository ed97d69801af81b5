"""One reader per format (``st_bertapprox.data.iter_records``): one collection of real SciFact documents written as a
BEIR folder, JSONL, a JSON array, JSON Lines named .json, CSV, TSV and plain text reads as the same texts through
every reader; the title and text are joined one way (the strings of the published SciFact figures); malformed files
fail with the file and the line in the message."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import require_dataset

from st_bertapprox.data.corpus import load_corpus
from st_bertapprox.data.records import iter_records, join_title, read_collection, read_documents
from st_bertapprox.data.shared import load_beir, load_labelled, load_sentences

SEAM = "735130"  # its title ends with a space: a join that strips each part first would give another string
FIELDS = ("_id", "title", "text", "label")


@pytest.fixture(scope="module")
def documents() -> list[dict]:
    """Six real SciFact documents (the first five and SEAM), each with a made-up subject label."""
    records = list(iter_records(require_dataset("scifact")))
    chosen = records[:5] + [r for r in records if r.id == SEAM]
    docs = [{"_id": r.id, "title": r.title, "text": r.text, "label": "ab"[i % 2]} for i, r in enumerate(chosen)]
    assert len(docs) == 6 and docs[-1]["title"].endswith(" ")
    assert not any("\n" in d["title"] + d["text"] for d in docs)  # the text variant holds one document per line
    return docs


def _write_table(path: Path, docs: list[dict], delimiter: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(FIELDS)
        writer.writerows([d[k] for k in FIELDS] for d in docs)


@pytest.fixture(scope="module")
def layouts(documents, tmp_path_factory) -> dict[str, Path]:
    """The same collection in every layout (name -> path); ``txt`` holds the joined texts, one per line."""
    root = tmp_path_factory.mktemp("layouts")
    (root / "beir").mkdir()
    lines = "".join(json.dumps(d) + "\n" for d in documents)
    (root / "beir" / "corpus.jsonl").write_text(lines, encoding="utf-8")
    (root / "docs.jsonl").write_text(lines.replace("\n", "\n\n"), encoding="utf-8")  # blank lines are skipped
    (root / "array.json").write_text(json.dumps(documents, indent=2), encoding="utf-8")  # an element spans lines
    (root / "lines.json").write_text(lines, encoding="utf-8")
    _write_table(root / "docs.csv", documents, ",")
    _write_table(root / "docs.tsv", documents, "\t")
    (root / "docs.txt").write_text("".join(join_title(d["title"], d["text"]) + "\n" for d in documents))
    return {path.name: path for path in sorted(root.iterdir())}


def test_every_reader_gives_the_same_texts_in_every_layout(documents, layouts):
    joined = [(d["title"] + " " + d["text"]).strip() for d in documents]
    assert "Drosophila  The Drosophila" in joined[-1]  # the seam kept as it is
    ids = [d["_id"] for d in documents]
    for name, path in layouts.items():
        assert read_documents(path) == joined, name
        assert load_sentences(path) == joined and load_sentences(path, limit=2, skip=3) == joined[3:5], name
        assert [text for _, text in read_collection(path)] == joined, name
        assert [r.joined for r in iter_records(path)] == joined, name
        if name == "docs.txt":
            assert [doc_id for doc_id, _ in read_collection(path)] == [str(i) for i in range(1, 7)]  # line numbers
            continue
        assert [doc_id for doc_id, _ in read_collection(path)] == ids, name
        assert [(r.title, r.text) for r in iter_records(path)] == [(d["title"], d["text"]) for d in documents], name
        if name != "beir":
            texts, labels = load_labelled(str(path))  # the text field alone, no title
            assert texts == [d["text"] for d in documents] and labels == [d["label"] for d in documents], name
    corpora = {name: load_corpus(files=[str(path)], heldout=2, num_sentences=50) for name, path in layouts.items()}
    assert all(corpus == corpora["beir"] for corpus in corpora.values())
    assert corpora["beir"].mine == joined[:-1]  # the last document is held out


def test_a_json_file_is_parsed_not_read_as_lines(layouts):
    source = layouts["array.json"].read_text(encoding="utf-8").splitlines()
    docs = read_documents(layouts["array.json"])
    assert len(source) > 30 and len(docs) == 6 and not any(doc.startswith(("[", "{", '"')) for doc in docs)
    assert [r.line for r in iter_records(layouts["array.json"])] == [2, 8, 14, 20, 26, 32]  # each element's first


def test_the_join_is_the_one_of_the_published_scifact_figures():
    folder = require_dataset("scifact")
    corpus, _, _ = load_beir("scifact")
    assert read_documents(folder) == list(corpus.values())  # the same 5,183 strings, in the same order
    assert [doc_id for doc_id, _ in read_collection(folder)] == list(corpus)
    assert join_title(" A ", " b ") == "A   b" and join_title("", " b ") == "b" and join_title("", "") == ""


def test_malformed_files_name_the_file_and_the_line(tmp_path):
    def fails(name: str, content: str, match: str, error: type[Exception] = ValueError, **kwargs) -> None:
        (tmp_path / name).write_text(content, encoding="utf-8")
        with pytest.raises(error, match=match):
            list(iter_records(tmp_path / name, **kwargs))

    fails("a.jsonl", '{"text": "ok"}\n\n{"text": oops}\n', r"a\.jsonl, line 3: not JSON \(Expecting value, column 10")
    fails("b.jsonl", '{"text": "ok"}\n["text"]\n', r"b\.jsonl, line 2: expected a JSON object, got list")
    missing = r"c\.jsonl, line 2: no 'text' text field \(fields: \['body'\]\); name the text field with --text-column"
    fails("c.jsonl", '{"text": "ok"}\n{"body": "x"}\n', missing)
    fails("d.jsonl", '{"text": 3}\n', r"d\.jsonl, line 1: the 'text' field is a int, not a text")
    fails("e.json", '[\n  {"text": "ok"},\n  {"text": "x",}\n]\n', r"e\.json, line 3: not JSON")
    fails("f.json", '[\n  {"text": "ok"}\n  {"text": "x"}\n]\n', r"f\.json, line 3: expected ',' or '\]'")
    fails("g.json", '[{"text": "ok"}]\n[]\n', r"g\.json, line 1: data after the end of the JSON array")
    fails("h.json", '{\n  "data": []\n}\n', r"h\.json, line 1: not JSON .* a JSON array of objects, or JSON Lines")
    fails("i.csv", 'id,body\n1,"a, b"\n', r"i\.csv, line 2: no 'text' text field \(fields: \['body', 'id'\]\)")
    fails("j.csv", 'id,text\n1,"two\nlines"\n2,x,extra\n', r"j\.csv, line 4: 3 fields where the header \(line 1\)")
    fails("k.jsonl", '{"text": "x"}\n', r"k\.jsonl, line 1: no 'doc' field", id_field="doc")
    with pytest.raises(FileNotFoundError, match=r"No collection file .*missing\.jsonl"):
        iter_records(tmp_path / "missing.jsonl")  # at the call, before anything is read (the CLI loads no model)
    (tmp_path / "folder").mkdir()
    with pytest.raises(FileNotFoundError, match=r"folder is a folder without corpus\.jsonl"):
        read_collection(tmp_path / "folder")
    with pytest.raises(ValueError, match=r"c\.jsonl, line 2: no 'text' text field .* --text-field"):
        list(read_collection(tmp_path / "c.jsonl"))  # the option of `st-bertapprox index`
    (tmp_path / "empty.jsonl").write_text('{"_id": "1", "title": " ", "text": ""}\n')
    with pytest.raises(ValueError, match=r"empty\.jsonl, line 1: empty 'text' text and no title"):
        list(read_collection(tmp_path / "empty.jsonl"))
    assert read_documents(tmp_path / "empty.jsonl") == []  # a corpus skips a document without text
    with pytest.raises(ValueError, match=r"line 1: no 'label' field"):
        next(iter_records(tmp_path / "empty.jsonl")).field("label")


def test_labelled_files_name_the_line_and_the_options(tmp_path):
    (tmp_path / "l.csv").write_text("text,label\nfirst,a\nsecond,\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"l\.csv, line 3: no 'text' text or no 'label' label .* --label-column"):
        load_labelled(str(tmp_path / "l.csv"))
    (tmp_path / "l.txt").write_text("first\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"expected a \.csv / \.tsv \(with a header\), \.jsonl or \.json file"):
        load_labelled(str(tmp_path / "l.txt"))
    with pytest.raises(FileNotFoundError, match="neither agnews, bbc nor an existing"):
        load_labelled(str(tmp_path / "none.csv"))
