"""Distil a teacher SentenceTransformer into the student (VocabSetEncoder + DeepSetsPooling + Normalize) with MSE.

Teacher sentence embeddings are computed once and cached (``st_bertapprox.teacher.encode_cached``); training runs
through ``SentenceTransformerTrainer`` with ``MSELoss`` (label column = teacher embedding), a warm-up + cosine learning
rate schedule, gradient clipping, evaluation every epoch on STS-B dev and on held-out agreement with the teacher, and
best-checkpoint selection on the held-out cosine (never on STS-B, which we report). Mixed precision (bf16) on GPU.

The main job (``st-bertapprox distill``) is :func:`distill_pipeline`, which calls one function per step:
:func:`get_vocab` -> :func:`distill` (:func:`teacher_targets`, :func:`build_student`, :func:`train_student`,
:func:`evaluate_student`) -> :func:`export_student` (with :func:`card_info`) -> :func:`write_results`.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.base.evaluation import SequentialEvaluator
from sentence_transformers.sentence_transformer.losses import MSELoss
from sentence_transformers.sentence_transformer.modules import Normalize

from .config import DEFAULT_TEACHER, CorpusConfig, DistillConfig, StudentConfig, VocabConfig, training_arguments
from .data import Corpus, load_corpus
from .entry_targets import EntryTargets, entry_targets
from .evaluation import TeacherAgreementEvaluator, stsb_evaluator
from .hub import CardInfo
from .modules.files import save_json
from .modules.student import DeepSetsPooling, VocabSetEncoder
from .teacher import encode_cached

logger = logging.getLogger(__name__)

__all__ = [
    "DistillConfig",
    "DistillJob",
    "EntryDistillLoss",
    "StudentConfig",
    "Targets",
    "build_student",
    "distill",
    "distill_pipeline",
    "load_corpus",  # moved to st_bertapprox.data; re-exported for the scripts that import it from here
]


@dataclass
class Targets:
    """What the student learns from (``train_*``) and is measured on (``heldout_*``): texts + teacher embeddings."""

    train_texts: list[str]
    train_embeddings: np.ndarray  # (N, C) float32
    heldout_texts: list[str]
    heldout_embeddings: np.ndarray  # (M, C) float32


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


def is_vocab_dir(path: str) -> bool:
    """Whether ``path`` holds a saved :class:`VocabSetEncoder` (``build-vocab`` output)."""
    return os.path.isfile(os.path.join(path, VocabSetEncoder.config_file_name))


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


def teacher_targets(
    teacher: SentenceTransformer,
    train_texts: list[str],
    heldout_texts: list[str],
    batch_size: int = 64,
    devices: list[str] | None = None,
    show_progress_bar: bool = True,
) -> Targets:
    """The teacher's embeddings of the training and held-out texts (cached on disk, see ``teacher.encode_cached``)."""
    if not train_texts or not heldout_texts:
        raise ValueError("distill needs non-empty train_texts and heldout_texts")
    kw = dict(batch_size=batch_size, devices=devices, show_progress_bar=show_progress_bar)
    train_emb = encode_cached(teacher, train_texts, name="corpus", **kw)
    heldout_emb = encode_cached(teacher, heldout_texts, name="heldout", **kw)
    return Targets(train_texts, train_emb, heldout_texts, heldout_emb)


class EntryDistillLoss(MSELoss):
    """MSE to the teacher's sentence embedding plus ``weight`` times the entry-level loss (see
    :mod:`st_bertapprox.entry_targets`): the same MSE between every entry's vector and its target, both scaled to unit
    length first (entry vectors and the teacher's token vectors live at different scales), averaged over the batch's
    entries. For unit vectors the MSE is ``2 (1 - cos) / C``, so ``weight=1`` counts an entry's cosine gap like its
    sentence's. Entries covering no teacher word piece are left out.

    The label of a text is ``[teacher sentence embedding | text index]``: the index finds its entry targets, which
    are too many and too ragged for a dataset column.
    """

    def __init__(self, model: SentenceTransformer, targets: EntryTargets, weight: float) -> None:
        super().__init__(model)
        self.targets, self.weight = targets, weight

    def forward(self, sentence_features: list[dict[str, torch.Tensor]], labels: torch.Tensor) -> torch.Tensor:
        features = self.model(sentence_features[0])
        C = labels.size(1) - 1
        loss = self.compute_loss_from_embeddings([features["sentence_embedding"]], [labels[:, :C]])
        v, mask = features["entry_embeddings"], features["attention_mask"].bool()  # (B, T, C), (B, T)
        target = torch.zeros_like(v)
        for row, index in enumerate(labels[:, C].long().tolist()):
            rows = torch.from_numpy(self.targets.of(index))
            if len(rows) != int(mask[row].sum()):
                raise ValueError(
                    f"Text {index} has {int(mask[row].sum())} entries but {len(rows)} entry targets: the targets were "
                    "computed with another vocabulary or max_seq_length."
                )
            target[row, : len(rows)] = rows.to(v.device)
        valid = mask & (target.norm(dim=-1) > 0)
        gap = (F.normalize(v, dim=-1) - F.normalize(target, dim=-1)).pow(2).mean(-1)  # (B, T): 2 (1 - cos) / C
        entry_loss = (gap * valid).sum() / valid.sum().clamp(min=1)
        return loss + self.weight * entry_loss


def build_evaluator(targets: Targets, config: DistillConfig) -> SequentialEvaluator:
    """Held-out agreement with the teacher (the main score, used for selection), then STS-B dev if asked for."""
    agreement = TeacherAgreementEvaluator(targets.heldout_texts, targets.heldout_embeddings, name="heldout")
    evaluators = [agreement] + ([stsb_evaluator("dev")] if config.eval_stsb else [])
    return SequentialEvaluator(evaluators, main_score_function=lambda scores: scores[0])


def train_student(
    student: SentenceTransformer,
    targets: Targets,
    evaluator: SequentialEvaluator,
    output_dir: str,
    config: DistillConfig,
    show_progress_bar: bool = True,
    entries: EntryTargets | None = None,
) -> SentenceTransformer:
    """MSE distillation with ``SentenceTransformerTrainer`` (plus the entry-level loss when ``entries`` are given);
    ``student`` ends as the best checkpoint, in eval mode."""
    labels, loss = targets.train_embeddings.astype(np.float32), MSELoss(student)
    if entries is not None:
        labels = np.hstack([labels, np.arange(len(labels), dtype=np.float32)[:, None]])  # + the text's index
        loss = EntryDistillLoss(student, entries, config.entry_loss_weight)
    train_dataset = Dataset.from_dict({"sentence": targets.train_texts, "label": labels})
    args = training_arguments(
        config,
        os.path.join(output_dir, "checkpoints"),
        per_device_eval_batch_size=config.batch_size,
        lr_scheduler_type="cosine",
        max_grad_norm=config.max_grad_norm,
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_heldout_cosine",
        greater_is_better=True,
        logging_steps=config.logging_steps,
        dataloader_num_workers=config.dataloader_num_workers,
        disable_tqdm=not show_progress_bar,
    )
    trainer = SentenceTransformerTrainer(
        model=student, args=args, train_dataset=train_dataset, loss=loss, evaluator=evaluator
    )
    trainer.train()
    shutil.rmtree(args.output_dir, ignore_errors=True)  # the best checkpoint is loaded; the rest is clutter
    return student.eval()


def evaluate_student(student: SentenceTransformer, evaluator: SequentialEvaluator) -> dict[str, float]:
    """The evaluator's metrics without the trainer's ``eval_`` prefix, e.g. ``heldout_cosine``."""
    return {k.removeprefix("eval_"): v for k, v in evaluator(student).items()}


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
    from .vocab_builder import build_vocab

    if is_vocab_dir(job.vocab_path):
        logger.info(f"Reusing the vocabulary in {job.vocab_path}")
        return VocabSetEncoder.load(job.vocab_path), False
    encoder = build_vocab(
        mine_texts,
        teacher,
        job.vocab_path,
        batch_size=job.vocab.embed_batch_size,
        devices=job.devices,
        show_progress_bar=show_progress_bar,
        merge_with=job.vocab.merge_encoder(),
        **job.vocab.mine_kwargs(),
    )
    return encoder, True


def _short_name(model_id: str) -> str:
    return os.path.basename(os.path.normpath(model_id))


def card_info(job: DistillJob, student: SentenceTransformer, metrics: dict[str, float], num_train: int) -> CardInfo:
    """The model card of the student: the run's real teacher, corpus, architecture, recipe and results."""
    encoder, s, r = student[0], job.student, job.recipe
    vocab = encoder.vocab
    defaults = StudentConfig()
    shown = ["phi_hidden_dim", "num_heads", "rho_hidden_dim"]
    shown += ["context_layers", "context_dim", "context_heads"] if s.context_layers else []
    shown += ["context_positions"] if s.context_layers and s.context_positions else []
    shown += [k for k in ("pooling", "dropout") if getattr(s, k) != getattr(defaults, k)]
    results = {
        "stsb_dev_spearman": metrics.get("sts-dev_spearman_cosine"),
        "heldout_cosine_to_teacher": metrics["heldout_cosine"],
    }
    datasets = job.corpus.datasets()
    entry_note = ""
    if r.entry_loss_weight:
        entry_note = f" and entry-level targets (the teacher's token vectors per entry, x{r.entry_loss_weight})"
    trainable = sum(p.numel() for p in student.parameters() if p.requires_grad)
    return CardInfo(
        title=f"st-bertapprox student of {_short_name(job.teacher_id)}",
        description="A BERT approximation for fast retrieval: the text becomes a set of vocabulary n-grams, "
        "skip-grams and word pieces whose teacher embeddings were computed offline; a small permutation-invariant "
        "network (phi -> attention pooling -> rho) maps the set to the teacher's sentence embedding.",
        architecture=f"VocabSetEncoder ({len(vocab):,} entries, frozen teacher embeddings"
        f"{f' + rank-{s.adapter_rank} trainable adapter' if s.adapter_rank else ''}) -> DeepSetsPooling "
        f"({', '.join(f'{k}={getattr(s, k)}' for k in shown)}) -> Normalize",
        training=f"MSE distillation to the teacher's sentence embeddings of {num_train:,} sentences{entry_note}, "
        f"{r.epochs} epoch(s), batch {r.batch_size}, lr {r.learning_rate}, best checkpoint by held-out cosine.",
        command=job.command,
        base_model=job.teacher_id,
        datasets=datasets,
        results={k: v for k, v in results.items() if v is not None},
        facts={
            "vocabulary": f"{vocab.num_ngrams:,} n-grams, {vocab.num_skipgrams:,} skip-grams, "
            f"{vocab.num_pieces:,} word pieces",
            "trainable parameters": f"{trainable:,}",
        },
        tags=["distillation", "static-embeddings"],
        heldout_dataset=job.corpus.heldout_source(),
    )


def export_student(student: SentenceTransformer, output_dir: str, info: CardInfo) -> None:
    """Save ``output_dir/student`` and ``output_dir/student-folded`` (self-contained, with model cards)."""
    from .hub import save_pretrained
    from .modules.student import fold_student

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
        "trainable_parameters": sum(p.numel() for p in student.parameters() if p.requires_grad),
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
    save_json(result, os.path.join(job.output_dir, "results.json"))
    return result


def distill_pipeline(
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
