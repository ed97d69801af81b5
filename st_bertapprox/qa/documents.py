"""Documents -> passages for retrieval: plain text, Markdown or PDF, cut into overlapping windows of sentences.

* :func:`read_document`: the text of a ``.txt`` (any other suffix is read as text too), ``.md``/``.markdown``
  (syntax stripped by :func:`markdown_to_text`) or ``.pdf`` file (``pypdf``'s text extraction, page by page; the
  ``qa`` extra installs it);
* :func:`split_passages`: blocks (paragraphs: text between blank lines; a PDF page is one block), each split into
  sentences by Bling Fire (``data.corpus.split_sentences``) and cut into windows of ``sentences`` sentences
  that overlap by ``overlap`` (an answer near a window's edge keeps its context in the next one). A one-line block
  without final punctuation (a heading) is put in front of the next block instead of being a passage of its own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MARKDOWN_SUFFIXES = (".md", ".markdown")


@dataclass
class Passage:
    """A retrievable piece of a document: ``id`` (``"<file name>#<n>"``), its text, the file it comes from."""

    id: str
    text: str
    source: str


def pdf_text(path: str | os.PathLike) -> str:
    """The text of a PDF, pages separated by a blank line (words split at a line-end hyphen are joined)."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as e:
        raise ImportError("Reading PDF needs pypdf: pip install 'st-bertapprox[qa]'.") from e
    try:
        pages = [page.extract_text() or "" for page in PdfReader(path).pages]
    except PdfReadError as e:
        raise ValueError(f"{path} is not a readable PDF ({e}).") from e
    pages = [re.sub(r"(\w)-\n(\w)", r"\1\2", page) for page in pages]  # "exam-\nple" -> "example"
    return "\n\n".join(" ".join(page.split()) for page in pages if page.strip())


def markdown_to_text(markdown: str) -> str:
    """Markdown as plain text: code blocks, images, HTML tags, tables' rules and emphasis marks dropped, links kept
    as their text, list items as lines of their own, headings as paragraphs of their own; blank lines are kept."""
    text = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.S | re.M)  # fenced code
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # images
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # links -> their text
    text = re.sub(r"<[^>\n]+>", "", text)  # HTML tags
    lines = []
    for line in text.splitlines():
        if re.fullmatch(r"\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*", line):  # table rule
            continue
        if re.match(r"^\s{0,3}#{1,6}\s+", line):  # a heading: a paragraph of its own
            lines += ["", re.sub(r"^\s{0,3}#{1,6}\s+", "", line).strip(), ""]
            continue
        line = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line)  # list markers
        line = re.sub(r"^\s*>\s?", "", line)  # quotes
        line = re.sub(r"(?<!\w)(\*\*|__|\*|_|`)(\S(?:.*?\S)?)\1(?!\w)", r"\2", line)  # emphasis, inline code
        line = " ".join(part.strip() for part in line.strip().strip("|").split("|")) if "|" in line else line
        lines.append(line.strip())
    return "\n".join(lines)


def read_document(path: str | os.PathLike) -> str:
    """The plain text of a text, Markdown or PDF file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unreadable PDF, or a file that is not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No document {path}: give a .txt, .md or .pdf file.")
    if path.suffix.lower() == ".pdf":
        return pdf_text(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text ({e}); give a .txt, .md or .pdf file.") from e
    return markdown_to_text(text) if path.suffix.lower() in MARKDOWN_SUFFIXES else text


def _blocks(text: str) -> list[str]:
    """Paragraphs (blank-line separated, lines joined); a heading (a one-line paragraph without final punctuation)
    is put in front of the next paragraph."""
    blocks, heading = [], ""
    for raw in re.split(r"\n\s*\n", text):
        block = " ".join(line.strip() for line in raw.splitlines() if line.strip())
        if not block:
            continue
        if "\n" not in raw.strip() and _is_heading(block):
            heading = f"{heading} {block}".strip()
            continue
        blocks.append(f"{heading}: {block}" if heading else block)
        heading = ""
    if heading:
        blocks.append(heading)
    return blocks


def _is_heading(line: str) -> bool:
    return len(line) < 80 and not re.search(r"[.!?:;,)\"']$", line)


def split_passages(text: str, sentences: int = 4, overlap: int = 1) -> list[str]:
    """Overlapping windows of ``sentences`` sentences within each block of ``text`` (see the module docstring).

    Raises:
        ValueError: ``sentences < 1`` or ``overlap`` not in ``[0, sentences)``.
    """
    from st_bertapprox.data.corpus import split_sentences

    if sentences < 1 or not 0 <= overlap < sentences:
        raise ValueError(
            f"need sentences >= 1 and 0 <= overlap < sentences, got sentences={sentences}, overlap={overlap}"
        )
    step, out = sentences - overlap, []
    for block in _blocks(text):
        parts = split_sentences(block)
        for i in range(0, max(len(parts) - overlap, 1), step):
            out.append(" ".join(parts[i : i + sentences]))
    return out


def document_passages(paths: list[str | os.PathLike], sentences: int = 4, overlap: int = 1) -> list[Passage]:
    """The passages of every document (:func:`read_document`, then :func:`split_passages`), ids ``"<name>#<n>"``.

    Raises:
        ValueError: a document has no text (e.g. a scanned PDF without a text layer).
    """
    passages = []
    for path in paths:
        texts = split_passages(read_document(path), sentences, overlap)
        if not texts:
            raise ValueError(f"{path} has no text to answer from (a scanned PDF has none: run OCR first).")
        name = Path(path).name
        passages += [Passage(f"{name}#{n}", t, os.fspath(path)) for n, t in enumerate(texts)]
    return passages
