"""Typed configs: the one source of the defaults of the vocabulary, the student, the corpus and the two recipes.

The command line (``st_bertapprox.cli``) builds one option per field from these dataclasses (``--field-name``, the
type from the annotation, the help from ``metadata["help"]``), and :func:`markdown_defaults` renders the same fields
as the README's table, so a default is written exactly once: here. Every config validates itself in
``__post_init__`` and raises a ``ValueError`` naming the field, its command-line flag and the allowed values.

Configs are plain data: no I/O and no torch (``tests/test_defaults.py`` checks the imports). Components take a config
object; the modules that travel with a saved model keep their own defaults, pinned to these by the same tests.
``st_bertapprox.finetune.common.training_arguments`` turns a recipe into ``SentenceTransformerTrainingArguments``.

Example::

    >>> from st_bertapprox.config import DistillConfig, StudentConfig
    >>> DistillConfig(epochs=2).batch_size
    128
    >>> StudentConfig(adapter_rank=-1)
    Traceback (most recent call last):
    ...
    ValueError: StudentConfig.adapter_rank (--adapter-rank) must be an integer >= 0, got -1.
"""

from __future__ import annotations

import os
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

DEFAULT_TEACHER = "sentence-transformers/all-MiniLM-L6-v2"


DEFAULT_DATASETS = ["sentence-transformers/stsb", "wikipedia"]  # what the default corpus is made of


def _field(default: Any, help: str, **metadata: Any) -> Any:  # noqa: A002  (argparse's own word)
    """A dataclass field with its help text (shown by ``--help`` and in the README table)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **metadata})
    return field(default=default, metadata={"help": help, **metadata})


def flag(name: str) -> str:
    """The command-line flag of a field: ``max_unigrams`` -> ``--max-unigrams``."""
    return "--" + name.replace("_", "-")


class _Validated:
    """``_require(ok, name, rule)``: the ValueError every config raises, naming the field, its flag and the rule."""

    def _require(self, ok: bool, name: str, rule: str) -> None:
        if not ok:
            cli = next((f.metadata.get("flag", flag(f.name)) for f in fields(self) if f.name == name), flag(name))
            raise ValueError(f"{type(self).__name__}.{name} ({cli}) must be {rule}, got {getattr(self, name)!r}.")

    def _require_int(self, name: str, minimum: int) -> None:
        value = getattr(self, name)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        self._require(ok, name, f"an integer >= {minimum}")


@dataclass
class VocabConfig(_Validated):
    """Vocabulary mining and embedding (``st_bertapprox.distill.mining``); the selection rules are in its docstring."""

    max_ngram: int = _field(3, "longest n-gram order mined (2..max_ngram; 1: unigrams only)")
    max_unigrams: int = _field(40_000, "most frequent words kept")
    max_ngrams: int = _field(30_000, "n-grams (n >= 2) kept in all, split evenly between the orders")
    max_skipgrams: int = _field(5_000, "skip-grams 'w1 _ w3' kept (0: none)")
    min_count: int = _field(3, "an entry must occur at least this often in the mining texts")
    stop_top_k: int = _field(100, "this many most frequent words are stop words: no n-gram starts or ends with one")
    embed_batch_size: int = _field(256, "teacher batch size when embedding the entries")
    merge_with: str | None = _field(
        None,
        "a vocabulary folder (e.g. a general run's vocab/, same teacher) to add the mined entries to: its entries and "
        "table rows are kept, only new entries are embedded",
        flag="--merge-vocab",
    )

    def __post_init__(self) -> None:
        for name in ("max_ngram", "min_count", "embed_batch_size"):
            self._require_int(name, 1)
        for name in ("max_unigrams", "max_ngrams", "max_skipgrams", "stop_top_k"):
            self._require_int(name, 0)
        # merge_with is checked (a vocabulary folder?) where it is loaded: distill.mining.merge_encoder (no I/O here)

    @classmethod
    def small(cls) -> VocabConfig:
        """The ``--small`` preset: a vocabulary mined from a few thousand sentences."""
        return cls(max_unigrams=5_000, max_ngrams=2_000, max_skipgrams=500, min_count=2)


@dataclass
class StudentConfig(_Validated):
    """The student's architecture: ``VocabSetEncoder`` (+ adapter) -> ``DeepSetsPooling`` -> ``Normalize``."""

    # phi is folded away at export, so its width costs nothing online; rho runs once per text, so it stays narrow
    phi_hidden_dim: int = _field(1024, "hidden width of phi, the per-entry MLP (0: phi is the identity)")
    num_heads: int = _field(4, "attention-pooling heads (the embedding width must be divisible by it)")
    rho_hidden_dim: int = _field(512, "hidden width of rho, the MLP on the pooled vector")
    pooling: Literal["attention", "mean"] = _field("attention", "set pooling: attention, or a masked mean (ablation)")
    dropout: float = _field(0.1, "dropout inside phi and rho (training only)")
    adapter_rank: int = _field(32, "rank of the trainable low-rank correction of the frozen teacher table (0: none)")
    max_seq_length: int = _field(256, "at most this many vocabulary entries per text (the first ones)")
    context_layers: int = _field(
        0, "contextual student: narrow self-attention blocks over the entries of a text, before pooling (0: none)"
    )
    context_dim: int = _field(128, "attention width of the context blocks")
    context_heads: int = _field(4, "attention heads of the context blocks (--context-dim must be divisible by it)")
    context_positions: int = _field(
        0, "ablation: learned position offsets for the first N entries in the context blocks (0: order-free)"
    )

    def __post_init__(self) -> None:
        for name, minimum in (("phi_hidden_dim", 0), ("num_heads", 1), ("rho_hidden_dim", 1)):
            self._require_int(name, minimum)
        context = (("context_layers", 0), ("context_dim", 1), ("context_heads", 1), ("context_positions", 0))
        for name, minimum in context:
            self._require_int(name, minimum)
        self._require(self.context_dim % self.context_heads == 0, "context_dim", "divisible by --context-heads")
        self._require_int("adapter_rank", 0)
        self._require_int("max_seq_length", 1)
        self._require(self.pooling in ("attention", "mean"), "pooling", "'attention' or 'mean'")
        self._require(0 <= self.dropout < 1, "dropout", "in [0, 1)")

    def pooling_kwargs(self) -> dict[str, Any]:
        """The ``DeepSetsPooling`` keyword arguments."""
        names = ("phi_hidden_dim", "num_heads", "rho_hidden_dim", "pooling", "dropout")
        names += ("context_layers", "context_dim", "context_heads", "context_positions")
        return {name: getattr(self, name) for name in names}


class _Recipe(_Validated):
    """Checks shared by the two training recipes."""

    def _check_recipe(self) -> None:
        self._require_int("epochs", 1)
        self._require_int("batch_size", 1)
        self._require_int("seed", 0)
        self._require(self.learning_rate > 0, "learning_rate", "> 0")
        self._require(self.weight_decay >= 0, "weight_decay", ">= 0")
        self._require(0 <= self.warmup_ratio < 1, "warmup_ratio", "in [0, 1) (a fraction of the training steps)")


@dataclass
class DistillConfig(_Recipe):
    """The distillation recipe; the defaults are the ones behind the README table."""

    # measured: held-out cosine 0.827 at 5 epochs vs 0.821 at 10 (the adapter likely overfits)
    epochs: int = _field(5, "training epochs")
    batch_size: int = _field(128, "training (and evaluation) batch size")
    learning_rate: float = _field(1e-3, "peak learning rate (warm-up, then cosine decay)")
    weight_decay: float = _field(0.01, "AdamW weight decay")
    warmup_ratio: float = _field(0.05, "fraction of the steps spent warming the learning rate up")
    max_grad_norm: float = _field(1.0, "gradient-norm clipping")
    seed: int = _field(42, "seed of the student's initialisation and of the data order")
    eval_stsb: bool = _field(True, "report STS-B dev every epoch (monitoring only: selection uses held-out cosine)")
    logging_steps: int = _field(50, "log the training loss every this many steps")
    dataloader_num_workers: int = _field(0, "data-loading worker processes")
    teacher_batch_size: int = _field(64, "teacher batch size when encoding the training and held-out sentences")
    entry_loss_weight: float = _field(
        0.0,
        "entry-level distillation: weight of the loss teaching every entry the teacher's token vectors over the word "
        "pieces it covers, next to the sentence MSE (0: sentence targets only)",
    )

    def __post_init__(self) -> None:
        self._check_recipe()
        self._require(self.entry_loss_weight >= 0, "entry_loss_weight", ">= 0")
        self._require(self.max_grad_norm > 0, "max_grad_norm", "> 0")
        self._require_int("logging_steps", 1)
        self._require_int("dataloader_num_workers", 0)
        self._require_int("teacher_batch_size", 1)

    @classmethod
    def small(cls) -> DistillConfig:
        """The ``--small`` preset: one epoch of batch 16 (125 steps on 2,000 sentences: held-out cosine ~0.68)."""
        return cls(epochs=1, batch_size=16, logging_steps=25)


@dataclass
class FinetuneConfig(_Recipe):
    """The STS-B fine-tuning recipe; the defaults are the ones behind the README table."""

    # on the command line `finetune --poolings mean mlp` trains one model per pooling instead
    pooling: Literal["mean", "mlp"] = _field(
        "mean", "mean (ST Pooling) or mlp (MLPMeanPooling: per-token MLP, mean)", cli=False
    )
    mlp_hidden_dims: list[int] = _field([384], "hidden widths of the MLP of mlp pooling")
    epochs: int = _field(4, "training epochs")
    batch_size: int = _field(16, "training batch size")
    learning_rate: float = _field(2e-5, "peak learning rate of the encoder (warm-up, then linear decay)")
    # the freshly initialised MLP learns faster than the pretrained encoder
    mlp_learning_rate: float = _field(1e-3, "learning rate of the MLP of mlp pooling")
    warmup_ratio: float = _field(0.1, "fraction of the steps spent warming the learning rate up")
    weight_decay: float = _field(0.01, "AdamW weight decay")
    seed: int = _field(42, "seed of the initialisation, the subset and the data order")
    max_train_pairs: int | None = _field(None, "train on a random subset of this many STS-B pairs (quick runs)")

    @classmethod
    def small(cls) -> FinetuneConfig:
        """The ``--small`` preset: one epoch on 256 pairs (a smoke run of the whole job)."""
        return cls(epochs=1, max_train_pairs=256)

    def __post_init__(self) -> None:
        self._check_recipe()
        self._require(self.pooling in ("mean", "mlp"), "pooling", "'mean' or 'mlp'")
        self._require(self.mlp_learning_rate > 0, "mlp_learning_rate", "> 0")
        self._require(all(isinstance(d, int) and d >= 1 for d in self.mlp_hidden_dims), "mlp_hidden_dims", "ints >= 1")
        if self.max_train_pairs is not None:
            self._require_int("max_train_pairs", 1)


@dataclass
class CorpusConfig(_Validated):
    """Where the mining, training and held-out texts come from (``st_bertapprox.data.corpus.load_corpus``).

    ``dataclasses.asdict`` of it is stored in ``results.json`` under ``"corpus"``: ``load_corpus(**that)`` rebuilds
    the same texts.
    """

    files: list[str] | None = _field(
        None,
        "your documents: text files (one per line), JSONL files or BEIR folders, split into sentences and passages "
        "(default: the shared Wikipedia sentences + STS-B train)",
        flag="--corpus",
    )
    hf_dataset: str | None = _field(None, "a Hugging Face dataset to use as the corpus instead")
    text_column: str = _field("text", "the text field of --hf-dataset or of JSONL --corpus files")
    split: str = _field("train", "the split of --hf-dataset")
    num_sentences: int = _field(40_000, "training sentences taken from the corpus (besides STS-B train)")
    heldout: int = _field(2000, "last texts of the corpus held out from mining and training, for held-out metrics")
    # STS-B train is in-domain for the STS-B score we report
    add_stsb: bool = _field(True, "default corpus and --general-sentences: include STS-B train's unique sentences")
    general_sentences: int = _field(
        0, "--corpus: also train on this many general texts (STS-B train, then Wikipedia) to keep general quality"
    )
    passage_sentences: int = _field(3, "--corpus: sentences per passage when documents are split")
    mine_sentences: int | None = _field(None, "mine the vocabulary from at most this many texts (default: all)")

    def __post_init__(self) -> None:
        self._require_int("num_sentences", 1)
        self._require_int("heldout", 1)
        self._require_int("general_sentences", 0)
        self._require_int("passage_sentences", 1)
        if self.mine_sentences is not None:
            self._require_int("mine_sentences", 1)
        if self.files is not None:
            self._require(len(self.files) > 0, "files", "at least one file (or leave --corpus out)")
        self._require(not (self.files and self.hf_dataset), "hf_dataset", "left out when --corpus is given")

    def datasets(self) -> list[str]:
        """The datasets a model trained on this corpus names in its card: file names, the HF dataset, or default."""
        if self.files:
            general = list(DEFAULT_DATASETS) if self.general_sentences else []
            return [_basename(path) for path in self.files] + general
        if self.hf_dataset:
            return [self.hf_dataset]
        return list(DEFAULT_DATASETS) if self.add_stsb else ["wikipedia"]

    def heldout_source(self) -> str:
        """Where the held-out texts come from when not the default Wikipedia sentences ("" for the default)."""
        if self.files:
            return ", ".join(_basename(path) for path in self.files)
        return self.hf_dataset or ""

    @classmethod
    def small(cls) -> CorpusConfig:
        """The ``--small`` preset: ~2,000 training and 200 held-out sentences, mining over 5,000 texts."""
        return cls(num_sentences=2000, heldout=200, add_stsb=False, mine_sentences=5000)


def _basename(path: str) -> str:
    return os.path.basename(os.path.normpath(path))


def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a config class (they are strings under ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def field_default(f: Any) -> Any:
    """The default value of a dataclass field (``default`` or ``default_factory()``)."""
    return f.default_factory() if f.default is MISSING else f.default


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "-"
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_defaults(configs: tuple[type, ...] | None = None) -> str:
    """The defaults of every config as a markdown table (flag, default, ``--small`` preset, meaning) for the README."""
    configs = configs or (
        CorpusConfig, VocabConfig, StudentConfig, DistillConfig, FinetuneConfig, TinyConfig, QAConfig, IndexConfig,
        SearchConfig, AskConfig,
    )  # fmt: skip
    lines = ["| config | option | default | `--small` | meaning |", "|---|---|---|---|---|"]
    for cls in configs:
        small = cls.small() if hasattr(cls, "small") else None
        for f in fields(cls):
            if not f.metadata.get("cli", True):
                continue
            default = field_default(f)
            preset = getattr(small, f.name) if small is not None else default
            shown = _show(preset) if preset != default else ""
            cli = f.metadata.get("flag", flag(f.name))
            help_text = f.metadata["help"].replace("|", "\\|")
            lines.append(f"| {cls.__name__} | `{cli}` | {_show(default)} | {shown} | {help_text} |")
    return "\n".join(lines)


@dataclass
class TinyConfig(_Validated):
    """The tiny BERT of ``distill-tiny`` (the teacher's word pieces) -> mean -> Dense -> Normalize.

    The default is the smallest size considered (2-4 layers, 128-256 wide): at batch 32 on CPU it encoded 15-19x
    faster than the teacher, larger ones clearly less (measurements in ``st_bertapprox.distill.tiny``).
    """

    layers: int = _field(2, "transformer layers of the tiny student")
    hidden: int = _field(128, "hidden width (the teacher's embedding tables are PCA-projected to it)")
    heads: int = _field(2, "attention heads (--hidden must be divisible by it)")
    intermediate: int = _field(512, "feed-forward width of every layer")
    max_seq_length: int = _field(256, "texts are truncated to this many word pieces (the teacher's limit)")
    dropout: float = _field(0.1, "dropout on hidden states and attention weights (training only)")
    embedding_init: Literal["pca", "random"] = _field(
        "pca", "pca: the teacher's word/position/type embeddings projected by PCA; random: HF-style random (ablation)"
    )

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "intermediate", "max_seq_length"):
            self._require_int(name, 1)
        self._require(self.hidden % self.heads == 0, "hidden", f"divisible by --heads ({self.heads})")
        self._require(0 <= self.dropout < 1, "dropout", "in [0, 1)")
        self._require(self.embedding_init in ("pca", "random"), "embedding_init", "'pca' or 'random'")

    @classmethod
    def small(cls) -> TinyConfig:
        """The ``--small`` preset: one layer, 64 wide (a quick end-to-end run)."""
        return cls(layers=1, hidden=64, intermediate=256)


@dataclass
class LabelledDataConfig(_Validated):
    """Subject-labelled texts split by document (``st_bertapprox.finetune.contrastive.load_splits``): train, dev,
    held-out test.

    The split is stratified by subject and seeded, so ``analyze`` and ``finetune-contrastive`` with the same values
    see the same held-out documents.
    """

    data: str = _field("agnews", "agnews (4 topics), bbc (5 topics), or a labelled .csv / .jsonl file")
    text_column: str = _field("text", "the text field of a --data file")
    label_column: str = _field("label", "the subject field of a --data file")
    train_texts: int = _field(1000, "training documents (0: none, analysis only)")
    dev_texts: int = _field(200, "dev documents (monitoring and choosing the loss; never the reported test)")
    test_texts: int = _field(600, "held-out test documents: every reported figure is measured on them")
    split_seed: int = _field(42, "seed of the stratified document split")

    def __post_init__(self) -> None:
        self._require_int("train_texts", 0)
        self._require_int("dev_texts", 0)
        self._require_int("test_texts", 10)
        self._require_int("split_seed", 0)

    @classmethod
    def small(cls) -> LabelledDataConfig:
        """The ``--small`` preset: 96 training, 32 dev and 96 test documents (a smoke run)."""
        return cls(train_texts=96, dev_texts=32, test_texts=96)


@dataclass
class ContrastiveConfig(_Recipe):
    """The contrastive fine-tuning recipe on subject-labelled texts (``st_bertapprox.finetune.contrastive``)."""

    loss: Literal["batch-all-triplet", "mnrl", "online-contrastive"] = _field(
        "batch-all-triplet",
        "batch-all-triplet (texts + subject, batches grouped by subject), mnrl (same-subject pairs, in-batch "
        "negatives) or online-contrastive (same / different-subject pairs)",
    )
    margin: float = _field(0.5, "triplet and contrastive margin, in cosine distance (OnlineContrastiveLoss's default)")
    epochs: int = _field(1, "training epochs")
    batch_size: int = _field(32, "training batch size (texts for the triplet loss, pairs for the pair losses)")
    learning_rate: float = _field(2e-5, "peak learning rate (warm-up, then linear decay)")
    warmup_ratio: float = _field(0.1, "fraction of the steps spent warming the learning rate up")
    weight_decay: float = _field(0.01, "AdamW weight decay")
    max_seq_length: int = _field(128, "training texts are cut to this many word pieces (evaluation: the model's own)")
    seed: int = _field(42, "seed of the pairs and of the data order")

    def __post_init__(self) -> None:
        self._check_recipe()
        self._require(self.loss in ("batch-all-triplet", "mnrl", "online-contrastive"), "loss", "a known loss")
        self._require(self.margin > 0, "margin", "> 0")
        self._require_int("max_seq_length", 8)
        # GroupByLabelBatchSampler (triplet loss) needs an even batch of at least 4
        self._require(self.batch_size >= 4 and self.batch_size % 2 == 0, "batch_size", "an even integer >= 4")

    @classmethod
    def small(cls) -> ContrastiveConfig:
        """The ``--small`` preset: training texts truncated to 64 word pieces (most AG News texts fit)."""
        return cls(max_seq_length=64)


@dataclass
class IndexConfig(_Validated):
    """A Faiss index over a document collection (``st_bertapprox.inference.index``): its kind and parameters."""

    kind: Literal["flat", "hnsw", "ivfpq", "binary"] = _field(
        "flat",
        "flat: exact inner product on unit vectors; hnsw: graph, approximate, in memory; ivfpq: inverted lists of "
        "product-quantised codes (approximate, dim/pq_m times smaller); binary: 1 bit per dimension, exact Hamming "
        "search, then float rescoring",
    )
    hnsw_m: int = _field(32, "HNSW: links per node (more: better recall, bigger index)")
    ef_construction: int = _field(200, "HNSW: candidate list while building")
    ef_search: int = _field(128, "HNSW: candidate list while searching (more: better recall, slower)")
    nlist: int | None = _field(None, "IVF-PQ: inverted lists (default: 4 sqrt(training vectors))")
    nprobe: int = _field(16, "IVF-PQ: lists visited per query")
    pq_m: int | None = _field(None, "IVF-PQ: sub-quantizers (bytes per vector); must divide the dim (default dim/8)")
    pq_bits: int = _field(8, "IVF-PQ: bits per sub-quantizer code")
    train_size: int = _field(65_536, "IVF-PQ: the first this many vectors train the quantizers")
    rescore_multiplier: int = _field(4, "binary: candidates per wanted hit, rescored with float queries")
    batch_size: int = _field(64, "encoding batch size")
    chunk_size: int = _field(16_384, "texts encoded and added at a time (bounds the memory for vectors)")
    store_texts: bool = _field(True, "keep the documents' texts, so hits carry them (else only ids)", flag="--texts")

    def __post_init__(self) -> None:
        self._require(self.kind in ("flat", "hnsw", "ivfpq", "binary"), "kind", "flat, hnsw, ivfpq or binary")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe", "rescore_multiplier", "batch_size"):
            self._require_int(name, 1)
        self._require_int("chunk_size", 1)
        self._require_int("train_size", 1)
        self._require(isinstance(self.pq_bits, int) and 1 <= self.pq_bits <= 16, "pq_bits", "an integer in 1..16")
        for name in ("nlist", "pq_m"):
            if getattr(self, name) is not None:
                self._require_int(name, 1)


@dataclass
class QAConfig(_Recipe):
    """The extractive QA reader (``st_bertapprox.qa``): XQuAD-en split by article, span and reasoning-type heads."""

    eval_articles: int = _field(12, "whole articles held out for evaluation (of XQuAD-en's 48; seeded)")
    dev_articles: int = _field(0, "training articles set aside as a dev split, for tuning only (0: none)")
    split_seed: int = _field(42, "seed of the article split")
    max_length: int = _field(384, "word pieces per window: [CLS] question [SEP] context [SEP]")
    doc_stride: int = _field(128, "word pieces two consecutive windows of a long context share")
    max_query_length: int = _field(64, "questions are cut to this many word pieces")
    max_answer_length: int = _field(30, "longest answer considered when decoding, in word pieces")
    negatives: int = _field(
        1,
        "per training question, this many other paragraphs of its article as 'no answer here' examples (answer at "
        "[CLS]), so reader scores compare across retrieved passages",
    )
    passage_score: Literal["margin", "span"] = _field(
        "margin",
        "how answers from different passages are ranked: margin (span score minus the passage's [CLS] 'no answer' "
        "score) or span (start + end logit)",
    )
    reasoning_loss_weight: float = _field(0.5, "weight of the reasoning-type cross-entropy next to the span loss")
    # dev (6 of the training articles, 164 questions): with "cls" the head stayed at the majority label (75.0 %),
    # with "question_mean" 93.3 %, span F1 38.9 vs 38.4; MiniLM's [CLS] was never trained (ST mean pooling)
    reasoning_pooling: Literal["cls", "question_mean"] = _field(
        "question_mean",
        "what the reasoning head's pooler reads: the mean over [CLS] question [SEP], or the [CLS] vector",
    )
    # dev: 5e-5 for 3 epochs (heads at the same rate) gave F1 16.5; 1e-4, heads 1e-3, 4 epochs 38.9 (still rising)
    epochs: int = _field(4, "training epochs")
    batch_size: int = _field(16, "training batch size (windows)")
    learning_rate: float = _field(1e-4, "peak learning rate of the encoder (warm-up, then linear decay)")
    # the freshly initialised heads learn faster than the pretrained encoder (as FinetuneConfig.mlp_learning_rate)
    head_learning_rate: float = _field(1e-3, "peak learning rate of the span and reasoning heads")
    weight_decay: float = _field(0.01, "AdamW weight decay")
    warmup_ratio: float = _field(0.1, "fraction of the steps spent warming the learning rate up")
    seed: int = _field(42, "seed of the heads' initialisation, the negatives and the data order")
    max_train_questions: int | None = _field(None, "train on the first this many training questions (quick runs)")
    max_eval_questions: int | None = _field(None, "evaluate on the first this many questions (quick runs)")

    def __post_init__(self) -> None:
        self._check_recipe()
        self._require_int("eval_articles", 1)
        self._require_int("dev_articles", 0)
        self._require_int("split_seed", 0)
        self._require_int("max_query_length", 1)
        self._require_int("max_answer_length", 1)
        self._require_int("negatives", 0)
        self._require_int("max_length", self.max_query_length + 8)
        room = self.max_length - self.max_query_length - 3
        self._require(isinstance(self.doc_stride, int) and 0 <= self.doc_stride < room, "doc_stride",
                      f"an integer in [0, max_length - max_query_length - 3 = {room})")  # fmt: skip
        self._require(self.passage_score in ("margin", "span"), "passage_score", "'margin' or 'span'")
        self._require(self.reasoning_loss_weight >= 0, "reasoning_loss_weight", ">= 0")
        self._require(self.head_learning_rate > 0, "head_learning_rate", "> 0")
        self._require(self.reasoning_pooling in ("cls", "question_mean"), "reasoning_pooling", "cls or question_mean")
        for name in ("max_train_questions", "max_eval_questions"):
            if getattr(self, name) is not None:
                self._require_int(name, 1)

    @classmethod
    def small(cls) -> QAConfig:
        """The ``--small`` preset: one epoch on 16 questions, 16 evaluated, 256-piece windows (a smoke run)."""
        return cls(epochs=1, max_train_questions=16, max_eval_questions=16, max_length=256, doc_stride=64)


@dataclass
class SearchConfig(_Validated):
    """Searching a saved index (``st-bertapprox search``, ``SearchIndex.search``)."""

    k: int = _field(10, "hits per query", flag="-k")

    def __post_init__(self) -> None:
        self._require_int("k", 1)


@dataclass
class AskConfig(_Validated):
    """Answering a question over documents (``st-bertapprox ask``, ``qa.documents`` + ``qa.pipeline.DocumentQA``)."""

    k: int = _field(3, "passages retrieved and read", flag="--k")
    passage_sentences: int = _field(4, "sentences per passage")
    overlap: int = _field(1, "sentences two neighbouring passages share")

    def __post_init__(self) -> None:
        self._require_int("k", 1)
        self._require_int("passage_sentences", 1)
        self._require(isinstance(self.overlap, int) and 0 <= self.overlap < self.passage_sentences, "overlap",
                      "an integer in [0, passage_sentences)")  # fmt: skip


@dataclass
class PseudoQueryConfig(_Validated):
    """Query-like training texts made from a collection's own documents (no labels, no LLM; issue #24)."""

    count: int = _field(20_000, "pseudo-queries to make (fewer when the collection has fewer distinct ones)")
    title_share: float = _field(0.2, "share of titles (documents without a title give sentences instead)")
    sentence_share: float = _field(0.4, "share of whole sentences of a document (the inverse cloze task)")
    min_words: int = _field(4, "shortest crop, in words")
    max_words: int = _field(20, "longest crop, and longest sentence kept whole, in words")
    seed: int = _field(0, "seed of the draws")

    def __post_init__(self) -> None:
        self._require_int("count", 1)
        for name in ("title_share", "sentence_share"):
            self._require(0 <= getattr(self, name) <= 1, name, "in [0, 1]")
        self._require(self.title_share + self.sentence_share <= 1, "sentence_share", "<= 1 - title_share")
        self._require_int("min_words", 1)
        self._require_int("max_words", self.min_words)
        self._require_int("seed", 0)

    @property
    def crop_share(self) -> float:
        """The rest: random crops of ``min_words`` to ``max_words`` consecutive words of a document."""
        return 1 - self.title_share - self.sentence_share
