"""Distil a teacher SentenceTransformer into the student (VocabSetEncoder + DeepSetsPooling + Normalize) with MSE.

Teacher sentence embeddings are computed once and cached (``st_bertapprox.teacher.encode_cached``); training runs
through ``SentenceTransformerTrainer`` with ``MSELoss`` (label column = teacher embedding), a warm-up + cosine learning
rate schedule, gradient clipping, evaluation every epoch on STS-B dev and on held-out agreement with the teacher, and
best-checkpoint selection on the held-out cosine (never on STS-B, which we report). Mixed precision (bf16) on GPU.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from datasets import Dataset
from sentence_transformers import (
    SentenceTransformer,
    SentenceTransformerTrainer,
    SentenceTransformerTrainingArguments,
)
from sentence_transformers.base.evaluation import SequentialEvaluator
from sentence_transformers.sentence_transformer.losses import MSELoss
from sentence_transformers.sentence_transformer.modules import Normalize

from .evaluation import TeacherAgreementEvaluator, stsb_evaluator
from .modules.files import save_json
from .modules.student import DeepSetsPooling, VocabSetEncoder
from .teacher import encode_cached

logger = logging.getLogger(__name__)


@dataclass
class DistillConfig:
    """Training recipe for the student; the defaults are the ones behind the README table."""

    epochs: int = 5  # measured: held-out cosine 0.827 at 5 epochs vs 0.821 at 10 (the adapter likely overfits)
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    seed: int = 42
    # phi is folded away at export, so its width costs nothing online; rho runs once per text, so it stays narrow
    pooling: dict = field(default_factory=lambda: {"phi_hidden_dim": 1024, "num_heads": 4, "rho_hidden_dim": 512})
    adapter_rank: int = 32  # trainable low-rank per-entry correction of the frozen teacher table (0 = none)
    eval_stsb: bool = True  # report STS-B dev each epoch (monitoring only: selection uses held-out cosine)
    logging_steps: int = 50
    dataloader_num_workers: int = 0


def build_student(encoder: VocabSetEncoder, pooling: dict | None = None, adapter_rank: int = 0) -> SentenceTransformer:
    """``SentenceTransformer([encoder, DeepSetsPooling, Normalize])``; ``pooling`` are DeepSetsPooling kwargs."""
    if adapter_rank != encoder.adapter_rank:
        table = encoder.embeddings.weight
        encoder = VocabSetEncoder(
            encoder.vocab,
            table,
            encoder.max_seq_length,
            adapter_rank=adapter_rank,
            storage_dtype=encoder.storage_dtype,
        )
    deepsets = DeepSetsPooling(encoder.get_embedding_dimension(), **(pooling or {}))
    return SentenceTransformer(modules=[encoder, deepsets, Normalize()])


def distill(
    teacher: SentenceTransformer,
    encoder: VocabSetEncoder,
    train_texts: list[str],
    heldout_texts: list[str],
    output_dir: str,
    config: DistillConfig | None = None,
    teacher_batch_size: int = 64,
    devices: list[str] | None = None,
    show_progress_bar: bool = True,
) -> tuple[SentenceTransformer, dict[str, float]]:
    """Train a student on ``train_texts``; returns the best model (by held-out cosine) and its final metrics."""
    config = config or DistillConfig()
    if not train_texts or not heldout_texts:
        raise ValueError("distill needs non-empty train_texts and heldout_texts")
    kw = dict(batch_size=teacher_batch_size, devices=devices, show_progress_bar=show_progress_bar)
    train_emb = encode_cached(teacher, train_texts, name="corpus", **kw)
    heldout_emb = encode_cached(teacher, heldout_texts, name="heldout", **kw)
    if train_emb.shape[1] != encoder.get_embedding_dimension():
        raise ValueError(
            f"The teacher's sentence embeddings have {train_emb.shape[1]} dims but the vocabulary's entry embeddings "
            f"have {encoder.get_embedding_dimension()}: build the vocabulary with this teacher."
        )
    torch.manual_seed(config.seed)
    student = build_student(encoder, config.pooling, config.adapter_rank)
    train_dataset = Dataset.from_dict({"sentence": train_texts, "label": train_emb.astype(np.float32)})
    agreement = TeacherAgreementEvaluator(heldout_texts, heldout_emb, name="heldout")
    evaluators = [agreement] + ([stsb_evaluator("dev")] if config.eval_stsb else [])
    evaluator = SequentialEvaluator(evaluators, main_score_function=lambda scores: scores[0])
    cuda = torch.cuda.is_available()
    args = SentenceTransformerTrainingArguments(
        output_dir=os.path.join(output_dir, "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a fraction of the steps (transformers 5)
        lr_scheduler_type="cosine",
        max_grad_norm=config.max_grad_norm,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_heldout_cosine",
        greater_is_better=True,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        dataloader_num_workers=config.dataloader_num_workers,
        disable_tqdm=not show_progress_bar,
    )
    trainer = SentenceTransformerTrainer(
        model=student, args=args, train_dataset=train_dataset, loss=MSELoss(student), evaluator=evaluator
    )
    trainer.train()
    shutil.rmtree(args.output_dir, ignore_errors=True)  # the best checkpoint is loaded; the rest is clutter
    student.eval()
    metrics = {k.removeprefix("eval_"): v for k, v in evaluator(student).items()}
    return student, metrics


def load_corpus(
    files: list[str] | None = None,
    num_sentences: int = 40_000,
    heldout: int = 2000,
    hf_dataset: str | None = None,
    text_column: str = "text",
    split: str = "train",
) -> tuple[list[str], list[str], list[str]]:
    """(mining texts, training texts, held-out texts) for distillation.

    Default: the shared Wikipedia sentences plus the unique STS-B train sentences; the last ``heldout`` Wikipedia
    lines are held out from mining and training, training uses STS-B train plus the first ``num_sentences``
    Wikipedia lines, mining sees every other line too. With ``files`` (one text per line) or an HF ``hf_dataset``
    (its ``text_column`` of ``split``): the last ``heldout`` texts are held out, training uses the first
    ``num_sentences`` of the rest, mining all of the rest.
    """
    from .data import load_sentences, load_stsb

    if hf_dataset:
        from datasets import load_dataset

        texts = [t for t in load_dataset(hf_dataset, split=split)[text_column] if t and t.strip()]
    else:
        texts = [t for path in files for t in load_sentences(path)] if files else load_sentences()
    if len(texts) <= heldout:
        raise ValueError(f"The corpus has {len(texts)} texts; it needs more than heldout={heldout}.")
    texts, held = texts[:-heldout], texts[-heldout:]
    if files or hf_dataset:
        return texts, texts[:num_sentences], held
    stsb = load_stsb("train")
    stsb = list(dict.fromkeys(list(stsb["sentence1"]) + list(stsb["sentence2"])))
    return texts + stsb, stsb + texts[:num_sentences], held


def distill_pipeline(
    teacher: SentenceTransformer,
    mine_texts: list[str],
    train_texts: list[str],
    heldout_texts: list[str],
    output_dir: str,
    config: DistillConfig | None = None,
    vocab_dir: str | None = None,
    mine_kwargs: dict | None = None,
    devices: list[str] | None = None,
    show_progress_bar: bool = True,
    corpus_spec: dict | None = None,
    command: str = "",
    teacher_id: str = "sentence-transformers/all-MiniLM-L6-v2",
) -> dict:
    """Vocabulary (built into ``output_dir/vocab`` unless ``vocab_dir`` holds one) -> distillation -> folding.

    ``corpus_spec`` (the :func:`load_corpus` arguments that gave the texts) is recorded so benchmarks can rebuild
    the same corpus. Writes ``output_dir/student`` and ``output_dir/student-folded`` (both load with
    ``trust_remote_code=True``, no
    st-bertapprox needed) and ``output_dir/results.json``; returns the results.
    """
    from .hub import CardInfo, save_pretrained
    from .modules.student import fold_student
    from .vocab_builder import build_vocab

    config = config or DistillConfig()
    vocab_dir = vocab_dir or os.path.join(output_dir, "vocab")
    if os.path.exists(os.path.join(vocab_dir, VocabSetEncoder.config_file_name)):
        logger.info(f"Reusing the vocabulary in {vocab_dir}")
        encoder = VocabSetEncoder.load(vocab_dir)
    else:
        kw = dict(devices=devices, show_progress_bar=show_progress_bar, **(mine_kwargs or {}))
        encoder = build_vocab(mine_texts, teacher, vocab_dir, **kw)
    student, metrics = distill(
        teacher,
        encoder,
        train_texts,
        heldout_texts,
        output_dir,
        config,
        devices=devices,
        show_progress_bar=show_progress_bar,
    )
    results = {
        "stsb_dev_spearman": metrics.get("sts-dev_spearman_cosine"),
        "heldout_cosine_to_teacher": metrics["heldout_cosine"],
    }
    vocab = encoder.vocab
    trainable = sum(p.numel() for p in student.parameters() if p.requires_grad)
    info = CardInfo(
        title="st-bertapprox student of all-MiniLM-L6-v2",
        description="A BERT approximation for fast retrieval: the text becomes a set of vocabulary n-grams, "
        "skip-grams "
        "and word pieces whose teacher embeddings were computed offline; a small permutation-invariant network "
        "(phi -> attention pooling -> rho) maps the set to the teacher's sentence embedding.",
        architecture=f"VocabSetEncoder ({len(vocab):,} entries, frozen teacher embeddings"
        f"{f' + rank-{config.adapter_rank} trainable adapter' if config.adapter_rank else ''}) -> DeepSetsPooling "
        f"({', '.join(f'{k}={v}' for k, v in config.pooling.items())}) -> Normalize",
        training=f"MSE distillation to the teacher's sentence embeddings of {len(train_texts):,} sentences, "
        f"{config.epochs} epoch(s), batch {config.batch_size}, lr {config.learning_rate}, "
        "best checkpoint by held-out cosine.",
        command=command,
        base_model=teacher_id,
        datasets=["sentence-transformers/stsb", "wikipedia"],
        results={k: v for k, v in results.items() if v is not None},
        facts={
            "vocabulary": f"{vocab.num_ngrams:,} n-grams, {vocab.num_skipgrams:,} skip-grams, "
            f"{vocab.num_pieces:,} word pieces",
            "trainable parameters": f"{trainable:,}",
        },
        tags=["distillation", "static-embeddings"],
    )
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
    result = {
        "metrics": metrics,
        "vocab_size": len(encoder.vocab),
        "trainable_parameters": trainable,
        "train_sentences": len(train_texts),
        "heldout_sentences": len(heldout_texts),
        "corpus": corpus_spec,
        "config": asdict(config),
    }
    save_json(result, os.path.join(output_dir, "results.json"))
    return result
