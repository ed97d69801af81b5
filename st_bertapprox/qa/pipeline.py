"""Retrieve, then read: answer questions over documents with a sentence model (retriever) and the reader.

Passages are embedded once by any SentenceTransformer (the teacher, a student: the reader never sees its vectors)
into a ``st_bertapprox.inference.index.SearchIndex`` (exact inner product); a question retrieves its top ``k``
passages, the reader reads each, and the answers compete on the reader's score (``passage_score``: the span's margin
over the passage's own "no answer here" score by default, see ``st_bertapprox.qa.reader.ReaderAnswer``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from st_bertapprox.inference.index import SearchIndex

from .documents import Passage, document_passages
from .reader import PassageScore, Reader


@dataclass
class Answer:
    """The answer to a question over a passage collection.

    Attributes:
        question: The question.
        text: The answer span (a substring of ``passage``).
        score: The reader's score that chose it (``passage_score``'s rule).
        reasoning: The question's reasoning type; ``reasoning_probs`` all of them.
        passage_id, passage: The passage the span comes from, and its text.
        start_char, end_char: The span's characters in ``passage``.
        retrieval_score: The passage's cosine to the question; ``retrieved``: the ids of all passages read, best
            retrieved first.
    """

    question: str
    text: str
    score: float
    reasoning: str
    reasoning_probs: dict[str, float]
    passage_id: str
    passage: str
    start_char: int
    end_char: int
    retrieval_score: float
    retrieved: list[str] = field(default_factory=list)


class DocumentQA:
    """Question answering over a collection of passages: retrieve with a sentence model, read with a :class:`Reader`.

    Args:
        reader: A :class:`Reader` (or the folder of a saved reader).
        retriever: Any SentenceTransformer-like model with ``encode`` (the teacher, a student).
        passage_score: How answers from different passages are ranked: ``margin`` or ``span``.

    Example::

        qa = DocumentQA(Reader("runs/qa/reader"), SentenceTransformer(teacher_path()))
        qa.add_documents(["manual.pdf", "notes.md"])  # passages embedded once
        answer = qa.ask("When was the warranty extended?", k=3)
        print(answer.text, answer.reasoning, answer.passage_id)
    """

    def __init__(
        self, reader: Reader | str | os.PathLike, retriever: Any, passage_score: PassageScore = "margin"
    ) -> None:
        if passage_score not in ("margin", "span"):
            raise ValueError(f"passage_score must be 'margin' or 'span', got {passage_score!r}")
        self.reader = reader if isinstance(reader, Reader) else Reader(reader)
        self.retriever = retriever
        self.passage_score = passage_score
        self.index: SearchIndex | None = None
        self.passages: dict[str, str] = {}

    def add_passages(self, passages: dict[str, str] | list[Passage]) -> DocumentQA:
        """Embed ``passages`` (``{id: text}`` or :class:`Passage` objects) and index them (replacing any earlier)."""
        if isinstance(passages, list):
            passages = {p.id: p.text for p in passages}
        if not passages:
            raise ValueError("No passages to index.")
        self.passages = dict(passages)
        self.index = SearchIndex.build(self.retriever, list(self.passages.values()), ids=list(self.passages))
        return self

    def add_documents(self, paths: list[str | os.PathLike], sentences: int = 4, overlap: int = 1) -> DocumentQA:
        """Read text / Markdown / PDF files, cut them into sentence windows and index those."""
        return self.add_passages(document_passages(paths, sentences, overlap))

    def retrieve(self, questions: list[str], k: int) -> list[list[tuple[str, float]]]:
        """The top-``k`` ``(passage id, cosine)`` of every question, best first."""
        if self.index is None:
            raise ValueError("No passages indexed: call add_passages or add_documents first.")
        return [[(hit.id, hit.score) for hit in hits] for hits in self.index.search(list(questions), k=k)]

    def ask_many(self, questions: list[str], k: int = 3) -> list[Answer]:
        """Answer every question from its top-``k`` passages (all (question, passage) pairs read in one batch)."""
        retrieved = self.retrieve(questions, k)
        pairs = [(i, pid, score) for i, hits in enumerate(retrieved) for pid, score in hits]
        read = self.reader.read([questions[i] for i, _, _ in pairs], [self.passages[pid] for _, pid, _ in pairs])
        best: dict[int, tuple[Any, str, float]] = {}
        for (i, pid, score), answer in zip(pairs, read):
            if i not in best or answer.rank_score(self.passage_score) > best[i][0].rank_score(self.passage_score):
                best[i] = (answer, pid, score)
        out = []
        for i, question in enumerate(questions):
            answer, pid, score = best[i]
            out.append(
                Answer(
                    question=question,
                    text=answer.text,
                    score=answer.rank_score(self.passage_score),
                    reasoning=answer.reasoning,
                    reasoning_probs=answer.reasoning_probs,
                    passage_id=pid,
                    passage=self.passages[pid],
                    start_char=answer.start_char,
                    end_char=answer.end_char,
                    retrieval_score=score,
                    retrieved=[p for p, _ in retrieved[i]],
                )
            )
        return out

    def ask(self, question: str, k: int = 3) -> Answer:
        """The best answer span to ``question`` from its top-``k`` passages."""
        return self.ask_many([question], k)[0]
