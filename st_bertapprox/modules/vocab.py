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
So every text with at least one non-space character after normalisation maps to a non-empty list of entry ids; the
empty text (and a text of whitespace or lone combining marks, which normalisation removes) maps to an empty list.
Id 0 is ``[PAD]``, id 1 is ``[UNK]``.

Cost: a word piece is at most ``MAX_PIECE_CHARS`` characters and an entry at most ``MAX_ENTRY_CHARS`` (longer ones are
refused when a vocabulary is built or loaded), so splitting a word costs O(len(word) * MAX_PIECE_CHARS) whatever the
vocabulary; ``tokenize(text, max_entries=T)`` stops as soon as the first ``T`` entries are known (it returns exactly
``tokenize(text)[:T]``), so beyond the linear normalisation and word split the work is bounded by ``T``.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

PAD, UNK, SKIP = "[PAD]", "[UNK]", "_"
WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
NONSPACE_RE = re.compile(r"\S")
FORMAT_VERSION = 1
MAX_PIECE_CHARS = 100  # as BERT's WordPiece ``max_input_chars_per_word``; real pieces are < 30 characters
MAX_ENTRY_CHARS = 1000  # an n-gram / skip-gram longer than this is not a vocabulary entry but a broken file
_END = ""  # trie key marking "an n-gram ends here"; never a word
_NO_LIMIT = 1 << 62
_CACHED_WORD_CHARS = 64  # only short words go to the piece cache: a hostile text cannot fill memory with it


def normalize(text: str) -> str:
    """Lowercase; for non-ASCII text also NFD and drop combining marks (accents), as BERT-uncased does."""
    text = text.lower()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    return text


def split_words(text: str) -> list[str]:
    """The words of the normalised text (steps 1-2 of the module docstring); none: its non-space characters."""
    text = normalize(text)
    return WORD_RE.findall(text) or NONSPACE_RE.findall(text)


def _original_offsets(text: str, norm: str) -> list[int] | None:
    """``offsets[k]``: the position in ``text`` of normalised character ``k`` (``offsets[len(norm)] == len(text)``),
    or None when ``normalize`` does not act character by character on this text."""
    if text.isascii():
        return list(range(len(text) + 1))
    parts = [normalize(c) for c in text]
    if "".join(parts) != norm:
        return None
    offsets = [k for k, part in enumerate(parts) for _ in part]
    return offsets + [len(text)]


def check_texts(texts: Any, owner: str) -> list[str]:
    """``texts`` as a list of strings, or a TypeError naming the first element that is not a string (and where)."""
    if isinstance(texts, (str, bytes, bytearray)) or not isinstance(texts, Iterable):
        is_bytes = isinstance(texts, (bytes, bytearray))
        hint = " Decode bytes first (text.decode('utf-8'))." if is_bytes else ""
        raise TypeError(
            f"{owner} expects a list of strings, got {'a single bytes object' if is_bytes else type(texts).__name__}: "
            f"{_short(texts)}.{hint}"
        )
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            hint = " Decode bytes first (text.decode('utf-8'))." if isinstance(text, (bytes, bytearray)) else ""
            raise TypeError(
                f"{owner} expects strings, got {type(text).__name__} at position {i}: {_short(text)}.{hint} "
                "Replace missing texts (None) by '' or drop them."
            )
    return texts


def _short(obj: Any) -> str:
    """``repr`` cut for error messages (an entry or a text can be megabytes long)."""
    text = repr(obj[:80] if isinstance(obj, (str, bytes, bytearray)) else obj)
    return text if len(text) <= 80 else text[:80] + "..."


def _check_entry_size(entry: str, kind: str) -> None:
    if len(entry) > MAX_ENTRY_CHARS:
        raise ValueError(
            f"Invalid {kind} {_short(entry)} of {len(entry)} characters: entries are at most {MAX_ENTRY_CHARS} "
            "characters (the vocabulary is corrupt or not built by st-bertapprox)."
        )


def _check_piece_size(piece: str) -> None:
    if len(piece.removeprefix("##")) > MAX_PIECE_CHARS:
        raise ValueError(
            f"Invalid word piece {_short(piece)} of {len(piece)} characters: pieces are at most {MAX_PIECE_CHARS} "
            "characters (the vocabulary is corrupt or not built by st-bertapprox)."
        )


def entries_fingerprint(entries: Iterable[str]) -> str:
    """sha256 of an entry list (``[PAD]``, ``[UNK]``, then the entries in id order)."""
    return hashlib.sha256("\n".join(entries).encode("utf-8")).hexdigest()


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
            _check_entry_size(ngram, "n-gram")
            words = ngram.split(" ")
            if not ngram or SKIP in words or any(not WORD_RE.fullmatch(w) for w in words):
                raise ValueError(f"Invalid n-gram {ngram!r}: words must be letters/digits joined by single spaces")
            node = self.trie
            for w in words:
                node = node.setdefault(w, {})
            node[_END] = self._add(ngram)
            self.num_ngrams += 1
        for skipgram in skipgrams:
            _check_entry_size(skipgram, "skip-gram")
            words = skipgram.split(" ")
            if len(words) != 3 or words[1] != SKIP:
                raise ValueError(f"Invalid skip-gram {skipgram!r}: expected 'w1 _ w3'")
            self.skips[(words[0], words[2])] = self._add(skipgram)
            self.num_skipgrams += 1
        for piece in pieces:
            if not piece or piece == "##":
                raise ValueError(f"Invalid word piece {piece!r}")
            _check_piece_size(piece)
            if piece in self.index and piece in self.trie and _END in self.trie[piece]:
                self.piece_ids[piece] = self.index[piece]  # word-initial piece == unigram: share the entry
                continue
            self.piece_ids[piece] = self._add(piece)
            self.num_pieces += 1
        # character tries of the word-initial pieces and of the continuation pieces (sans "##"): the greedy longest
        # prefix at a position is one walk down a trie, as deep as the longest piece there (<= MAX_PIECE_CHARS)
        self._piece_tries: tuple[dict, dict] = ({}, {})
        for piece, entry_id in self.piece_ids.items():
            body = piece.removeprefix("##")
            node = self._piece_tries[body != piece]
            for char in body:
                node = node.setdefault(char, {})
            node[_END] = entry_id
            self.max_piece_len = max(self.max_piece_len, len(body))
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

    def tokenize(self, text: str, max_entries: int | None = None) -> list[int]:
        """Entry ids of ``text`` (see the module docstring for the exact rules).

        Args:
            text: The text.
            max_entries: Stop once this many entries are known: the result is exactly ``tokenize(text)[:max_entries]``,
                at a cost bounded by ``max_entries`` (plus the linear normalisation and word split).
        """
        return self._tokenize(split_words(text), max_entries, None)

    def entry_spans(self, text: str, max_entries: int | None = None) -> tuple[list[int], list[list[tuple[int, int]]]]:
        """``tokenize(text, max_entries)`` and, for each entry, the character spans of ``text`` it covers.

        An n-gram covers its words (one span), a skip-gram its two end words (two spans), a word piece its characters
        of the word. A repeated entry of a ``unique`` vocabulary covers the spans of all its occurrences. Spans are
        ``(start, end)`` offsets into the original ``text`` (normalisation is mapped back); when normalisation changed
        the text in a way that cannot be mapped character by character, every entry gets an empty span list.
        Used to teach every entry the teacher's token vectors over the word pieces it covers.
        """
        norm = normalize(text)
        matches = list(WORD_RE.finditer(norm)) or list(NONSPACE_RE.finditer(norm))
        bounds = [(m.start(), m.end()) for m in matches]
        spans: list[list[tuple[int, int]]] = []
        ids = self._tokenize([m.group() for m in matches], max_entries, (bounds, spans))
        to_original = _original_offsets(text, norm)
        if to_original is None:
            return ids, [[] for _ in ids]
        return ids, [[(to_original[a], to_original[b]) for a, b in entry] for entry in spans]

    def _tokenize(
        self, words: list[str], max_entries: int | None, track: tuple[list[tuple[int, int]], list] | None
    ) -> list[int]:
        """The tokenizer proper; with ``track = (word bounds, out)``, ``out`` gets each entry's spans (see
        :meth:`entry_spans`), in the normalised text."""
        if max_entries is not None and max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        limit = _NO_LIMIT if max_entries is None else max_entries
        ids: list[int] = []
        seen: set[int] = set()
        counted = 0
        if track is not None:
            bounds, spans = track

            def cover(first: int, last: int) -> None:  # one entry covering words first..last (inclusive)
                spans.append([(bounds[first][0], bounds[last][1])])

        def enough() -> bool:  # only called once len(ids) >= limit: in unique mode, count distinct entries
            nonlocal counted
            if not self.unique:
                return True
            seen.update(ids[counted:])
            counted = len(ids)
            return len(seen) >= limit

        # a repeated entry does not count in unique mode, so no piece budget there (still linear in the word)
        budget = None if self.unique or max_entries is None else limit
        trie, n = self.trie, len(words)
        i = 0
        while i < n and not (len(ids) >= limit and enough()):
            node = trie.get(words[i])
            best, best_len, j = None, 1, i + 1
            if node is not None:
                best = node.get(_END)
                while j < n and (node := node.get(words[j])) is not None:
                    j += 1
                    if _END in node:
                        if self.overlapping and best is not None:
                            ids.append(best)
                            if track is not None:
                                cover(i, i + best_len - 1)
                        best, best_len = node[_END], j - i
            if best is None:
                pieces = self.word_pieces(words[i], None if budget is None else budget - len(ids))
                ids.extend(pieces)
                if track is not None:
                    start = bounds[i][0]
                    for piece in pieces:  # [UNK] covers one character, any other piece its body
                        end = start + (1 if piece == 1 else len(self.entries[piece].removeprefix("##")))
                        spans.append([(start, end)])
                        start = end
                i += 1
            else:
                ids.append(best)
                if track is not None:
                    cover(i, i + best_len - 1)
                i += 1 if self.overlapping else best_len
        if self.skips and not (len(ids) >= limit and enough()):
            skips = self.skips
            for k, (a, b) in enumerate(zip(words, words[2:])):
                s = skips.get((a, b))
                if s is not None:
                    ids.append(s)
                    if track is not None:
                        spans.append([bounds[k], bounds[k + 2]])
                    if len(ids) >= limit and enough():
                        break
        if self.unique:
            out = list(dict.fromkeys(ids))
            if track is not None:
                merged: dict[int, list[tuple[int, int]]] = {}
                for entry, entry_spans in zip(ids, spans):
                    merged.setdefault(entry, []).extend(entry_spans)
                spans[:] = [merged[entry] for entry in out]
        else:
            out = ids
        if max_entries is not None:
            out = out[:max_entries]
            if track is not None:
                del spans[max_entries:]
        return out

    def word_pieces(self, word: str, max_pieces: int | None = None) -> list[int]:
        """WordPiece-style greedy longest-prefix split of one word into fallback piece ids (cached).

        Every step walks a character trie as deep as the longest piece matching there (at most ``max_piece_len``
        <= ``MAX_PIECE_CHARS`` characters), so the cost is O(len(word) * max_piece_len) at worst and about
        O(len(word)) in practice; ``max_pieces`` stops after that many pieces (a prefix of the full split).
        """
        cached = self._piece_cache.get(word)
        if cached is not None:
            return cached
        out, start, n = [], 0, len(word)
        initial, continuation = self._piece_tries
        limit = _NO_LIMIT if max_pieces is None else max_pieces
        while start < n and len(out) < limit:
            node, best, end, k = initial if start == 0 else continuation, 1, start + 1, start
            while k < n and (node := node.get(word[k])) is not None:
                k += 1
                if _END in node:
                    best, end = node[_END], k
            out.append(best)  # [UNK] (1) when no piece covers this character
            start = end
        if start < n:  # cut short by max_pieces: not the word's split, do not cache it
            return out
        if len(word) <= _CACHED_WORD_CHARS and len(self._piece_cache) < 200_000:
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
        """The content of ``vocab.json``: format version, n-grams, skip-grams, pieces, counts, tokenizer flags."""
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
    def from_dict(cls, d: dict, source: str = "vocab.json", expected_fingerprint: str | None = None) -> NGramVocab:
        """Build from :meth:`to_dict` output, validating it first.

        The cheap checks (types, entry sizes, and ``expected_fingerprint`` when given) run before any trie is built, so
        a huge or foreign file is refused in time linear in its size.

        Raises:
            ValueError: the dict is not a valid vocabulary, or its entries do not have ``expected_fingerprint``.
        """
        if not isinstance(d, dict) or d.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{source} is not an st-bertapprox vocabulary (format_version {FORMAT_VERSION} expected, got "
                f"{d.get('format_version') if isinstance(d, dict) else type(d).__name__}); rebuild it with "
                "`st-bertapprox build-vocab`."
            )
        for key in ("ngrams", "skipgrams", "pieces"):
            if not isinstance(d.get(key), list) or not all(isinstance(x, str) for x in d[key]):
                raise ValueError(f"{source} is corrupt: {key!r} must be a list of strings.")
        counts = d.get("counts")
        if counts is not None and not (
            isinstance(counts, dict) and all(type(c) is int for c in counts.values())  # keys: JSON object keys are str
        ):
            raise ValueError(f"{source} is corrupt: 'counts' must be an object mapping entries to integer counts.")
        for key in ("overlapping", "unique"):
            if not isinstance(d.get(key, False), bool):
                raise ValueError(f"{source} is corrupt: {key!r} must be true or false, got {d[key]!r}.")
        try:
            for entry in d["ngrams"]:
                _check_entry_size(entry, "n-gram")
            for entry in d["skipgrams"]:
                _check_entry_size(entry, "skip-gram")
            for entry in d["pieces"]:
                _check_piece_size(entry)
        except ValueError as e:
            raise ValueError(f"{source} is corrupt: {e}") from e
        if expected_fingerprint is not None:
            unigrams = {g for g in d["ngrams"] if " " not in g}  # a word-initial piece == a unigram shares its id
            pieces = [p for p in d["pieces"] if p not in unigrams]
            if entries_fingerprint([PAD, UNK, *d["ngrams"], *d["skipgrams"], *pieces]) != expected_fingerprint:
                raise ValueError(
                    f"{source} does not match the embedding table it was saved with (fingerprint mismatch): the "
                    "vocabulary file was modified or mixed up with another build; re-save or re-download the model."
                )
        try:
            return cls(
                d["ngrams"],
                d["skipgrams"],
                d["pieces"],
                counts=counts,
                overlapping=d.get("overlapping", False),
                unique=d.get("unique", False),
            )
        except ValueError as e:
            raise ValueError(f"{source} is corrupt: {e}") from e

    def fingerprint(self) -> str:
        """sha256 of the entry list: ties an embedding table to exactly this vocabulary."""
        return entries_fingerprint(self.entries)

    def save(self, path: str) -> None:
        """Write :meth:`to_dict` to ``path`` as JSON, atomically."""
        from .io import save_json  # local import keeps this file free of torch at import time

        save_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str, expected_fingerprint: str | None = None) -> NGramVocab:
        """Read ``vocab.json``; with ``expected_fingerprint``, a foreign or edited file is refused before any trie is
        built (see :meth:`from_dict`)."""
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}): the vocabulary file is corrupt; rebuild it.") from e
        except RecursionError as e:
            raise ValueError(f"{path} is nested too deeply to be a vocabulary: it is corrupt; rebuild it.") from e
        except UnicodeDecodeError as e:
            raise ValueError(f"{path} is not UTF-8 text ({e}): the vocabulary file is corrupt; rebuild it.") from e
        return cls.from_dict(d, source=path, expected_fingerprint=expected_fingerprint)
