"""The student's vocabulary and tokenizer: word n-grams, skip-grams and word-piece fallbacks, matched with a trie.

Pure Python (standard library only) so that it runs inside a pushed model on any machine.

Text -> entries, deterministically:
  1. normalise: lowercase; for non-ASCII text also NFD + drop combining marks (accents), as BERT-uncased does.
  2. words: maximal runs of letters/digits, with inner apostrophes kept (``don't``); ``_`` and punctuation split.
     A text with no word at all falls back to its punctuation characters.
  3. n-grams, longest match: left to right, take the longest vocabulary n-gram starting at the current word
     (a word trie), emit it and jump past it. ``overlapping=True`` instead emits every vocabulary n-gram
     starting at every word.
  4. skip-grams: for every pair of words two apart, ``w[i] _ w[i+2]`` is emitted if it is in the vocabulary.
  5. fallback: a word that starts no vocabulary n-gram is split into word pieces, WordPiece style (greedy longest
     prefix, continuation pieces marked ``##``); characters not covered give ``[UNK]``.
So every text with at least one non-space character maps to a non-empty list of entry ids; the empty text maps to
an empty list. Id 0 is ``[PAD]``, id 1 is ``[UNK]``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable

PAD, UNK, SKIP = "[PAD]", "[UNK]", "_"
WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
NONSPACE_RE = re.compile(r"\S")
FORMAT_VERSION = 1
_END = ""  # trie key marking "an n-gram ends here"; never a word


def normalize(text: str) -> str:
    text = text.lower()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return text


def split_words(text: str) -> list[str]:
    text = normalize(text)
    return WORD_RE.findall(text) or NONSPACE_RE.findall(text)


class NGramVocab:
    """Vocabulary of n-grams (``"new york"``), skip-grams (``"not _ good"``) and word pieces (``"##ing"``).

    Entry ids: ``[PAD]``, ``[UNK]``, then n-grams, skip-grams and pieces in the order given. Word-initial pieces
    that are also unigrams share the unigram's id.

    Args:
        ngrams: n-grams as space-joined words (unigrams included).
        skipgrams: skip-grams as ``"w1 _ w3"``.
        pieces: fallback word pieces; ``"##x"`` continues a word, anything else starts one.
        counts: optional corpus counts of n-grams and skip-grams (for documentation and ablations).
        overlapping: emit every matching n-gram instead of the longest-match segmentation.
        unique: drop repeated entries (a set instead of a multiset).
    """

    def __init__(
        self,
        ngrams: Iterable[str],
        skipgrams: Iterable[str] = (),
        pieces: Iterable[str] = (),
        counts: dict[str, int] | None = None,
        overlapping: bool = False,
        unique: bool = False,
    ) -> None:
        self.entries: list[str] = [PAD, UNK]
        self.index: dict[str, int] = {PAD: 0, UNK: 1}
        self.num_ngrams = self.num_skipgrams = self.num_pieces = 0
        self.overlapping, self.unique = overlapping, unique
        self.counts = dict(counts or {})
        self.trie: dict = {}
        self.skips: dict[tuple[str, str], int] = {}
        self.piece_ids: dict[str, int] = {}
        self.max_piece_len = 1
        for ngram in ngrams:
            words = ngram.split(" ")
            if not ngram or SKIP in words or any(not WORD_RE.fullmatch(w) for w in words):
                raise ValueError(f"Invalid n-gram {ngram!r}: words must be letters/digits joined by single spaces")
            node = self.trie
            for w in words:
                node = node.setdefault(w, {})
            node[_END] = self._add(ngram)
            self.num_ngrams += 1
        for skipgram in skipgrams:
            words = skipgram.split(" ")
            if len(words) != 3 or words[1] != SKIP:
                raise ValueError(f"Invalid skip-gram {skipgram!r}: expected 'w1 _ w3'")
            self.skips[(words[0], words[2])] = self._add(skipgram)
            self.num_skipgrams += 1
        for piece in pieces:
            if not piece or piece == "##":
                raise ValueError(f"Invalid word piece {piece!r}")
            if piece in self.index and piece in self.trie and _END in self.trie[piece]:
                self.piece_ids[piece] = self.index[piece]  # word-initial piece == unigram: share the entry
                continue
            self.piece_ids[piece] = self._add(piece)
            self.num_pieces += 1
            self.max_piece_len = max(self.max_piece_len, len(piece.removeprefix("##")))
        self._piece_cache: dict[str, list[int]] = {}

    def _add(self, entry: str) -> int:
        if entry in self.index:
            raise ValueError(f"Duplicate vocabulary entry {entry!r}")
        self.index[entry] = len(self.entries)
        self.entries.append(entry)
        return self.index[entry]

    def __len__(self) -> int:
        return len(self.entries)

    # --- tokenization -------------------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Entry ids of ``text`` (see the module docstring for the exact rules)."""
        words = split_words(text)
        ids: list[int] = []
        trie, n = self.trie, len(words)
        i = 0
        while i < n:
            node = trie.get(words[i])
            best, best_len, j = None, 1, i + 1
            if node is not None:
                best = node.get(_END)
                while j < n and (node := node.get(words[j])) is not None:
                    j += 1
                    if _END in node:
                        if self.overlapping and best is not None:
                            ids.append(best)
                        best, best_len = node[_END], j - i
            if best is None:
                ids.extend(self.word_pieces(words[i]))
                i += 1
            else:
                ids.append(best)
                i += 1 if self.overlapping else best_len
        if self.skips:
            skips = self.skips
            for a, b in zip(words, words[2:]):
                s = skips.get((a, b))
                if s is not None:
                    ids.append(s)
        return list(dict.fromkeys(ids)) if self.unique else ids

    def word_pieces(self, word: str) -> list[int]:
        """WordPiece-style greedy longest-prefix split of one word into fallback piece ids (cached)."""
        cached = self._piece_cache.get(word)
        if cached is not None:
            return cached
        out, start, pieces = [], 0, self.piece_ids
        while start < len(word):
            for end in range(min(len(word), start + self.max_piece_len), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in pieces:
                    out.append(pieces[piece])
                    start = end
                    break
            else:  # no piece covers this character
                out.append(1)
                start += 1
        if len(self._piece_cache) < 200_000:
            self._piece_cache[word] = out
        return out

    def teacher_text(self, entry_id: int) -> str:
        """The text the teacher embeds for an entry: n-gram words, the two ends of a skip-gram, a piece sans ``##``."""
        entry = self.entries[entry_id]
        if entry in (PAD, UNK):
            return entry
        return entry.replace(f" {SKIP} ", " ").removeprefix("##")

    # --- storage -----------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        ngram_end, skip_end = 2 + self.num_ngrams, 2 + self.num_ngrams + self.num_skipgrams
        return {
            "format_version": FORMAT_VERSION,
            "ngrams": self.entries[2:ngram_end],
            "skipgrams": self.entries[ngram_end:skip_end],
            "pieces": [p for p in self.piece_ids],
            "counts": self.counts,
            "overlapping": self.overlapping,
            "unique": self.unique,
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "vocab.json") -> NGramVocab:
        if not isinstance(d, dict) or d.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{source} is not an st-bertapprox vocabulary (format_version {FORMAT_VERSION} expected, got "
                f"{d.get('format_version') if isinstance(d, dict) else type(d).__name__}); rebuild it with "
                "`st-bertapprox build-vocab`."
            )
        for key in ("ngrams", "skipgrams", "pieces"):
            if not isinstance(d.get(key), list) or not all(isinstance(x, str) for x in d[key]):
                raise ValueError(f"{source} is corrupt: {key!r} must be a list of strings.")
        try:
            return cls(
                d["ngrams"],
                d["skipgrams"],
                d["pieces"],
                counts=d.get("counts"),
                overlapping=bool(d.get("overlapping", False)),
                unique=bool(d.get("unique", False)),
            )
        except ValueError as e:
            raise ValueError(f"{source} is corrupt: {e}") from e

    def fingerprint(self) -> str:
        """sha256 of the entry list: ties an embedding table to exactly this vocabulary."""
        return hashlib.sha256("\n".join(self.entries).encode("utf-8")).hexdigest()

    def save(self, path: str) -> None:
        from .files import save_json  # local import keeps this file free of torch at import time

        save_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str) -> NGramVocab:
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}): the vocabulary file is corrupt; rebuild it.") from e
        return cls.from_dict(d, source=path)
