"""Distil a teacher SentenceTransformer into the student (VocabSetEncoder + DeepSetsPooling + Normalize) with MSE.

Teacher sentence embeddings are computed once and cached (``st_bertapprox.distill.teacher_cache.encode_cached``);
training runs through ``SentenceTransformerTrainer`` with ``MSELoss`` (label column = teacher embedding), a warm-up +
cosine learning rate schedule, gradient clipping, evaluation every epoch on STS-B dev and on held-out agreement with
the teacher, and best-checkpoint selection on the held-out cosine (never on STS-B, which we report). Mixed precision
(bf16) on GPU.

The main job (``st-bertapprox distill``) is :func:`run_distill`, which calls one function per step:
:func:`get_vocab` -> :func:`distill` (:func:`build_student`, then the shared trainer of
:mod:`st_bertapprox.distill.training`: ``teacher_targets``, ``train_student``, ``evaluate_student``) ->
:func:`export_student` (with :func:`card_info`) -> :func:`write_results`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize

from st_bertapprox.config import DEFAULT_TEACHER, CorpusConfig, DistillConfig, StudentConfig, VocabConfig
from st_bertapprox.data.corpus import Corpus, load_corpus
from st_bertapprox.distill.entry_targets import entry_targets
from st_bertapprox.distill.mining import build_vocab, check_merge_with, is_vocab_dir
from st_bertapprox.distill.training import (
    build_evaluator,
    distill_card,
    evaluate_student,
    teacher_targets,
    train_student,
)
from st_bertapprox.finetune.common import short_name, trainable_parameters
from st_bertapprox.modules.student import DeepSetsPooling, VocabSetEncoder
from st_bertapprox.persistence.cards import CardInfo
from st_bertapprox.persistence.saving import save_results

logger = logging.getLogger(__name__)


@dataclass
class DistillJob:
    """One run of the main job: its configs and where it writes; all of it is recorded in ``results.json``."""

    output_dir: str
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    recipe: DistillConfig = field(default_factory=DistillConfig)
    vocab_dir: str | None = None  # an existing vocabulary; default: output_dir/vocab, reused if it holds one
    teacher_id: str = DEFAULT_TEACHER  # what the cards and results name as the teacher
    command: str = ""  # the exact command, recorded in the model cards
    devices: list[str] | None = None  # e.g. ["cuda:0", "cuda:1"]: teacher encoding with ST's multi-process pool

    def __post_init__(self) -> None:
        check_merge_with(self.vocab)  # a bad --merge-vocab fails here, before a corpus or a teacher is loaded
        if self.vocab_dir is not None and not is_vocab_dir(self.vocab_dir):
            what = "does not exist" if not os.path.exists(self.vocab_dir) else "is not a vocabulary folder"
            raise ValueError(
                f"--vocab {self.vocab_dir} {what} (no {VocabSetEncoder.config_file_name}); pass a folder written by "
                f"`st-bertapprox build-vocab`, or omit --vocab to build one into "
                f"{os.path.join(self.output_dir, 'vocab')}."
            )

    @property
    def vocab_path(self) -> str:
        """The vocabulary folder used: ``vocab_dir``, or ``output_dir/vocab``."""
        return self.vocab_dir or os.path.join(self.output_dir, "vocab")


def build_student(encoder: VocabSetEncoder, config: StudentConfig | None = None) -> SentenceTransformer:
    """``SentenceTransformer([encoder (+ adapter), DeepSetsPooling, Normalize])`` as ``config`` describes it."""
    config = config or StudentConfig()
    if config.adapter_rank != encoder.adapter_rank:  # a fresh encoder on the same frozen table, with the adapter
        encoder = VocabSetEncoder(
            encoder.vocab,
            encoder.embeddings.weight,
            config.max_seq_length,
            adapter_rank=config.adapter_rank,
            storage_dtype=encoder.storage_dtype,
        )
    encoder.max_seq_length = config.max_seq_length
    deepsets = DeepSetsPooling(encoder.get_embedding_dimension(), **config.pooling_kwargs())
    return SentenceTransformer(modules=[encoder, deepsets, Normalize()])


def distill(
    teacher: SentenceTransformer,
    encoder: VocabSetEncoder,
    train_texts: list[str],
    heldout_texts: list[str],
    output_dir: str,
    config: DistillConfig | None = None,
    student: StudentConfig | None = None,
    devices: list[str] | None = None,
    show_progress_bar: bool = True,
) -> tuple[SentenceTransformer, dict[str, float]]:
    """Train a student on ``train_texts``; returns the best model (by held-out cosine) and its final metrics."""
    config = config or DistillConfig()
    entries = None
    if config.entry_loss_weight:  # first: its teacher pass caches the sentence embeddings too
        max_entries = (student or StudentConfig()).max_seq_length
        kw = dict(batch_size=config.teacher_batch_size, show_progress_bar=show_progress_bar)
        entries = entry_targets(teacher, encoder.vocab, train_texts, max_entries, **kw)
    targets = teacher_targets(
        teacher, train_texts, heldout_texts, config.teacher_batch_size, devices, show_progress_bar
    )
    if targets.train_embeddings.shape[1] != encoder.get_embedding_dimension():
        raise ValueError(
            f"The teacher's sentence embeddings have {targets.train_embeddings.shape[1]} dims but the vocabulary's "
            f"entry embeddings have {encoder.get_embedding_dimension()}: build the vocabulary with this teacher."
        )
    torch.manual_seed(config.seed)  # before the student is built: its initialisation depends on the seed only
    model = build_student(encoder, student)
    evaluator = build_evaluator(targets, config)
    train_student(model, targets, evaluator, output_dir, config, show_progress_bar, entries)
    return model, evaluate_student(model, evaluator)


def get_vocab(
    teacher: SentenceTransformer, mine_texts: list[str], job: DistillJob, show_progress_bar: bool = True
) -> tuple[VocabSetEncoder, bool]:
    """The job's vocabulary: loaded from ``job.vocab_path`` if it holds one, else mined and saved there.

    Returns:
        (the encoder, whether it was built by this call).
    """
    if is_vocab_dir(job.vocab_path):
        logger.info(f"Reusing the vocabulary in {job.vocab_path}")
        return VocabSetEncoder.load(job.vocab_path), False
    encoder = build_vocab(
        mine_texts, teacher, job.vocab_path, job.vocab, devices=job.devices, show_progress_bar=show_progress_bar
    )
    return encoder, True


def card_info(job: DistillJob, student: SentenceTransformer, metrics: dict[str, float], num_train: int) -> CardInfo:
    """The model card of the student: the run's real teacher, corpus, architecture, recipe and results."""
    encoder, s, r = student[0], job.student, job.recipe
    vocab = encoder.vocab
    defaults = StudentConfig()
    shown = ["phi_hidden_dim", "num_heads", "rho_hidden_dim"]
    shown += ["context_layers", "context_dim", "context_heads"] if s.context_layers else []
    shown += ["context_positions"] if s.context_layers and s.context_positions else []
    shown += [k for k in ("pooling", "dropout") if getattr(s, k) != getattr(defaults, k)]
    entry_note = ""
    if r.entry_loss_weight:
        entry_note = f" and entry-level targets (the teacher's token vectors per entry, x{r.entry_loss_weight})"
    return distill_card(
        job,
        student,
        metrics,
        num_train,
        facts={
            "vocabulary": f"{vocab.num_ngrams:,} n-grams, {vocab.num_skipgrams:,} skip-grams, "
            f"{vocab.num_pieces:,} word pieces",
        },
        entry_note=entry_note,
        title=f"st-bertapprox student of {short_name(job.teacher_id)}",
        description="A BERT approximation for fast retrieval: the text becomes a set of vocabulary n-grams, "
        "skip-grams and word pieces whose teacher embeddings were computed offline; a small permutation-invariant "
        "network (phi -> attention pooling -> rho) maps the set to the teacher's sentence embedding.",
        architecture=f"VocabSetEncoder ({len(vocab):,} entries, frozen teacher embeddings"
        f"{f' + rank-{s.adapter_rank} trainable adapter' if s.adapter_rank else ''}) -> DeepSetsPooling "
        f"({', '.join(f'{k}={getattr(s, k)}' for k in shown)}) -> Normalize",
        tags=["distillation", "static-embeddings"],
    )


def export_student(student: SentenceTransformer, output_dir: str, info: CardInfo) -> None:
    """Save ``output_dir/student`` and ``output_dir/student-folded`` (self-contained, with model cards)."""
    from st_bertapprox.modules.student import fold_student
    from st_bertapprox.persistence.saving import save_pretrained

    save_pretrained(student, os.path.join(output_dir, "student"), info, repo_id="st-bertapprox/minilm-student")
    folded_info = replace(
        info,
        title=info.title + " (folded)",
        architecture=info.architecture + "; folded: phi and the "
        "attention logits precomputed per entry, so encoding is a lookup, a weighted sum and rho",
    )
    save_pretrained(
        fold_student(student),
        os.path.join(output_dir, "student-folded"),
        folded_info,
        repo_id="st-bertapprox/minilm-student-folded",
    )


def write_results(
    job: DistillJob, student: SentenceTransformer, metrics: dict[str, float], corpus: Corpus, vocab_built: bool
) -> dict:
    """``output_dir/results.json``: metrics, sizes and every config of the run (``corpus`` rebuilds its texts)."""
    result = {
        "metrics": metrics,
        "vocab_size": len(student[0].vocab),
        "trainable_parameters": trainable_parameters(student),
        "train_sentences": len(corpus.train),
        "heldout_sentences": len(corpus.heldout),
        "teacher": job.teacher_id,
        "datasets": job.corpus.datasets(),
        "corpus": asdict(job.corpus),  # load_corpus(**results["corpus"]) rebuilds the texts
        "vocab": asdict(job.vocab) if vocab_built else None,  # None: an existing vocabulary was reused
        "vocab_dir": job.vocab_path,
        "student": asdict(job.student),
        "config": asdict(job.recipe),
    }
    return save_results(job.output_dir, result)


def run_distill(
    teacher: SentenceTransformer, job: DistillJob, corpus: Corpus | None = None, show_progress_bar: bool = True
) -> dict:
    """The main job: vocabulary -> distillation -> export (student + folded, with cards) -> ``results.json``.

    Args:
        teacher: The teacher SentenceTransformer (``job.teacher_id`` is what the cards call it).
        job: The run's configs and folders.
        corpus: The texts, if already loaded; default ``load_corpus(job.corpus)``.
        show_progress_bar: Progress bars for mining, teacher encoding and training.

    Returns:
        The results, as written to ``job.output_dir/results.json``.
    """
    corpus = corpus or load_corpus(job.corpus)
    encoder, vocab_built = get_vocab(teacher, corpus.mine, job, show_progress_bar)
    student, metrics = distill(
        teacher,
        encoder,
        corpus.train,
        corpus.heldout,
        job.output_dir,
        job.recipe,
        job.student,
        devices=job.devices,
        show_progress_bar=show_progress_bar,
    )
    export_student(student, job.output_dir, card_info(job, student, metrics, len(corpus.train)))
    return write_results(job, student, metrics, corpus, vocab_built)
