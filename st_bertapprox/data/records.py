"""The one reader of each record format, and the one join of a title and a text.

:func:`iter_records` reads a BEIR folder (``corpus.jsonl``), JSONL, a JSON array (or JSON Lines named ``.json``),
CSV/TSV with a header, or plain text / Markdown (one record per non-empty line), lazily, with errors that name the
file and line; :func:`join_title` is how every reader joins a title and a text (BEIR's and MTEB's join). The views:
:func:`read_documents` (``--corpus``) and :func:`read_collection` ((id, text) for ``st-bertapprox index``).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple


class Record(NamedTuple):
    """One record of a collection file, as :func:`iter_records` yields it.

    Attributes:
        id: The ``id_field`` value, else ``_id`` or ``id``, else the line number (plain text: always the line number).
        title: The ``title`` field when it is a string, else ``""``.
        text: The text field (plain text: the line, stripped); ``""`` when no text field was asked for.
        fields: All the fields of the record (plain text: ``{text_field: line}``; CSV/TSV: strings by header name).
        path: The file it comes from.
        line: The line of ``path`` it starts on, from 1.
    """

    id: str
    title: str
    text: str
    fields: dict[str, Any]
    path: Path
    line: int

    @property
    def joined(self) -> str:
        """Title and text as one document: :func:`join_title`."""
        return join_title(self.title, self.text)

    def field(self, name: str) -> Any:
        """The field ``name``.

        Raises:
            ValueError: the record has no such field (or it is null); the message names the file and the line.
        """
        value = self.fields.get(name)
        if value is None:
            raise ValueError(f"{self.path}, line {self.line}: no {name!r} field (fields: {sorted(self.fields)}).")
        return value


def join_title(title: str, text: str) -> str:
    """A document's title and text as one string, the join of every reader: ``(title + " " + text).strip()``.

    Whitespace between the two is kept as it is (a title ending in a space gives two spaces): these are the strings
    the published SciFact figures embedded (:func:`load_beir`); stripping each part first, as ``read_documents`` once
    did, changes 15 of SciFact's 5,183 documents.
    """
    return (title + " " + text).strip()


def iter_records(
    path: str | os.PathLike,
    text_field: str | None = "text",
    id_field: str | None = None,
    option: str = "--text-column",
) -> Iterator[Record]:
    """The records of a collection, lazily: the one reader of every record format the package reads.

    Layouts, by suffix (case-insensitive):

    * a folder: a BEIR folder, its ``corpus.jsonl`` (``_id``, ``title``, ``text``);
    * ``.jsonl``: JSON Lines, one object per non-empty line;
    * ``.json``: a JSON array of objects when the file starts with ``[``, else JSON Lines;
    * ``.csv`` / ``.tsv``: a header row naming the fields, then one record per row (quoted values may hold the
      delimiter and line breaks);
    * anything else (``.txt``, ``.md``, ...): one record per non-empty line, stripped, as its text.

    The path is checked when this is called; the records are read as they are iterated.

    Args:
        path: The file or BEIR folder.
        text_field: The field every record must have as a string (``Record.text``); ``None``: none required.
        id_field: The field every record must have as its id; ``None``: ``_id`` or ``id``, else the line number.
        option: How the user names ``text_field`` (the command-line option), for the error messages.

    Returns:
        An iterator of :class:`Record`.

    Raises:
        FileNotFoundError: ``path`` does not exist, or is a folder without ``corpus.jsonl``.
        ValueError: while iterating, a line that is not JSON or not a JSON object, a record without a string
            ``text_field`` (or without ``id_field``), a CSV/TSV row whose field count is not the header's; the message
            names the file and the line.

    Example::

        >>> docs = [record.joined for record in iter_records("../shared/data/scifact")]
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "corpus.jsonl").is_file():
            raise FileNotFoundError(
                f"{path} is a folder without corpus.jsonl: give a BEIR folder (with corpus.jsonl), a .jsonl, .json, "
                ".csv or .tsv file, or a text file (one record per line)."
            )
        path = path / "corpus.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"No collection file {path}: give a BEIR folder (with corpus.jsonl), a .jsonl, .json, .csv or .tsv file, "
            "or a text file (one record per line)."
        )
    suffix = path.suffix.lower()
    if suffix == ".json" and _starts_with(path, "["):
        rows = _json_array_rows(path)
    elif suffix == ".json":
        rows = _json_lines_rows(path, " A .json collection is a JSON array of objects, or JSON Lines.")
    elif suffix == ".jsonl":
        rows = _json_lines_rows(path)
    elif suffix in (".csv", ".tsv"):
        rows = _table_rows(path, "\t" if suffix == ".tsv" else ",")
    else:
        return _text_records(path, text_field or "text")
    return _records(rows, path, text_field, id_field, option)


def _records(
    rows: Iterator[tuple[int, dict]], path: Path, text_field: str | None, id_field: str | None, option: str
) -> Iterator[Record]:
    for line, fields in rows:
        text = fields.get(text_field) if text_field else ""
        if text is None:
            raise ValueError(
                f"{path}, line {line}: no {text_field!r} text field (fields: {sorted(fields)}); name the text field "
                f"with {option}."
            )
        if not isinstance(text, str):
            raise ValueError(
                f"{path}, line {line}: the {text_field!r} field is a {type(text).__name__}, not a text; name the "
                f"text field with {option}."
            )
        doc_id = fields.get(id_field) if id_field else fields.get("_id", fields.get("id"))
        if id_field and doc_id is None:
            raise ValueError(f"{path}, line {line}: no {id_field!r} field (fields: {sorted(fields)}).")
        title = fields.get("title")
        title = title if isinstance(title, str) else ""
        yield Record(str(line if doc_id is None else doc_id), title, text, fields, path, line)


def _text_records(path: Path, text_field: str) -> Iterator[Record]:
    with open(path, encoding="utf-8-sig") as f:
        for line, raw in enumerate(f, 1):
            if text := raw.strip():
                yield Record(str(line), "", text, {text_field: text}, path, line)


def _starts_with(path: Path, char: str) -> bool:
    """Whether the first character of ``path`` that is not whitespace is ``char``."""
    with open(path, encoding="utf-8-sig") as f:
        while chunk := f.read(4096):
            if chunk.strip():
                return chunk.lstrip()[0] == char
    return False


def _json_lines_rows(path: Path, hint: str = "") -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8-sig") as f:
        for line, raw in enumerate(f, 1):
            if raw.strip():
                yield line, _json_line(raw, path, line, hint)


def _json_line(line: str, path: Path, number: int, hint: str = "") -> dict:
    """One JSON Lines line as an object; ValueError naming ``path`` and the line otherwise (``hint`` appended)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}, line {number}: not JSON ({e.msg}, column {e.colno}).{hint}") from e
    if not isinstance(row, dict):
        raise ValueError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.{hint}")
    return row


def _json_array_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line, object) of the elements of a JSON array, element by element (so each gets the line it starts on)."""
    text = path.read_text(encoding="utf-8-sig")
    decoder, blank = json.JSONDecoder(), re.compile(r"\s*")
    pos, line, counted = blank.match(text, text.index("[") + 1).end(), 1, 0
    while not text.startswith("]", pos):
        try:
            row, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}, line {e.lineno}: not JSON ({e.msg}, column {e.colno}).") from e
        line, counted = line + text.count("\n", counted, pos), pos
        if not isinstance(row, dict):
            raise ValueError(f"{path}, line {line}: expected a JSON object, got {type(row).__name__}.")
        yield line, row
        pos = blank.match(text, end).end()
        if text.startswith(",", pos):
            pos = blank.match(text, pos + 1).end()
        elif not text.startswith("]", pos):
            where = line + text.count("\n", counted, pos)
            raise ValueError(f"{path}, line {where}: expected ',' or ']' after an element of the JSON array.")
    if text[pos + 1 :].strip():
        where = line + text.count("\n", counted, pos)
        raise ValueError(f"{path}, line {where}: data after the end of the JSON array.")


def _table_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict]]:
    """(line, {header name: value}) of the rows of a CSV/TSV file with a header; blank lines are skipped."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header, header_line, last = None, 0, 0
        for row in reader:
            line, last = last + 1, reader.line_num  # the row spans the lines after the previous one, up to line_num
            if not row:
                continue
            if header is None:
                header, header_line = row, line
            elif len(row) != len(header):
                name = "tab" if delimiter == "\t" else "comma"
                raise ValueError(
                    f"{path}, line {line}: {len(row)} fields where the header (line {header_line}) names "
                    f"{len(header)}; quote a value that holds a {name} or a line break."
                )
            else:
                yield line, dict(zip(header, row))


def read_documents(path: str | os.PathLike, text_field: str = "text") -> list[str]:
    """The documents of a collection, any layout of :func:`iter_records`: each record's title and text joined
    (:func:`join_title`); records without text are skipped.

    Args:
        path: A BEIR folder, a ``.jsonl``, ``.json``, ``.csv`` or ``.tsv`` file, or a text file (one per line).
        text_field: The text field of the records (``--text-column``).

    Raises:
        FileNotFoundError: ``path`` does not exist, or is a folder without ``corpus.jsonl``.
        ValueError: a record is malformed or has no string ``text_field`` (the message names the file and line).
    """
    return list(_documents(iter_records(path, text_field)))


def _documents(records: Iterator[Record]) -> Iterator[str]:
    return (document for record in records if (document := record.joined))


def read_collection(
    path: str | os.PathLike, text_field: str = "text", id_field: str | None = None
) -> Iterator[tuple[str, str]]:
    """``(id, text)`` for every document of a collection, lazily (``st-bertapprox index``).

    Any layout of :func:`iter_records`; the text is the record's title and text joined (:func:`join_title`), the id
    ``id_field``'s value, else ``_id`` or ``id``, else the line number (plain text: always the line number). The path
    is checked at once, the documents as they are read.

    Raises:
        FileNotFoundError: no such file, or a folder without ``corpus.jsonl``.
        ValueError: a line is not JSON, a document has no text field, no ``id_field`` or an empty text (the message
            names the file and the line).
    """
    return _with_ids(iter_records(path, text_field, id_field, option="--text-field"), text_field)


def _with_ids(records: Iterator[Record], text_field: str) -> Iterator[tuple[str, str]]:
    for record in records:
        if not (text := record.joined):
            raise ValueError(f"{record.path}, line {record.line}: empty {text_field!r} text and no title.")
        yield record.id, text
