"""The texts of a recipe: a distillation's corpus (:func:`load_corpus`: mining, training and held-out texts from a
:class:`CorpusConfig`; documents split into sentences and passages) and the seeded, subject-stratified split of
labelled documents (:func:`load_splits`) that contrastive fine-tuning and the analysis share.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from st_bertapprox.config import CorpusConfig, LabelledDataConfig
from st_bertapprox.data.records import read_documents
from st_bertapprox.data.shared import load_labelled, load_sentences, load_stsb


class Corpus(NamedTuple):
    """The texts of a distillation: ``mine`` (vocabulary mining), ``train`` (distillation), ``heldout`` (metrics)."""

    mine: list[str]
    train: list[str]
    heldout: list[str]


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

    With ``files`` (any layout of :func:`read_documents`: BEIR folders, JSONL, JSON, CSV/TSV with a header, text files
    with one document per line; ``text_column`` names the text field): every document is split into sentences and
    passages (:func:`document_texts`); the last documents are held out (the first ``heldout`` of their
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


Texts = tuple[list[str], list[str]]  # (texts, subject labels)


@dataclass
class Splits:
    """Train / dev / test (texts, labels) of distinct documents."""

    train: Texts
    dev: Texts
    test: Texts


def split_documents(texts: list[str], labels: list[str], config: LabelledDataConfig) -> Splits:
    """Seeded, subject-stratified split into disjoint test, dev and train documents (duplicates dropped first)."""
    from sklearn.model_selection import train_test_split

    first = dict(zip(reversed(texts), reversed(labels)))  # text -> label of its first occurrence
    rest = list(dict.fromkeys(texts))
    rest_labels = [first[t] for t in rest]
    parts = []
    for size in (config.test_texts, config.dev_texts, config.train_texts):
        if size == 0:
            parts.append(([], []))
            continue
        if size > len(rest):
            raise ValueError(
                f"{config.data}: {len(set(texts))} distinct documents cannot give test_texts={config.test_texts}, "
                f"dev_texts={config.dev_texts} and train_texts={config.train_texts}."
            )
        if size == len(rest):
            taken, taken_labels, rest, rest_labels = rest, rest_labels, [], []
        else:
            taken, rest, taken_labels, rest_labels = train_test_split(
                rest, rest_labels, train_size=size, stratify=rest_labels, random_state=config.split_seed
            )
        parts.append((list(taken), list(taken_labels)))
    test, dev, train = parts
    return Splits(train=train, dev=dev, test=test)


def load_splits(config: LabelledDataConfig) -> Splits:
    """The document split of ``config.data`` (see :func:`split_documents`)."""
    return split_documents(*load_labelled(config.data, config.text_column, config.label_column), config)
