"""Ablations of the student: what each design choice is worth, all trained and measured in this run.

Every variant is the default recipe with one change: no entry adapter, attention pooling with one head or plain mean
pooling, overlapping instead of longest-match n-grams, no skip-grams, unigrams only, a smaller vocabulary, a smaller
corpus (larger ones with ``--large-corpus``: 100k sentences, and all ~298k Wikipedia sentences for 2 epochs
instead of 5, about as many training steps as 100k for 5 epochs). Columns: STS-B dev Spearman, mean cosine and top-10
neighbour overlap with the teacher on held-out Wikipedia sentences, vocabulary size, trainable parameters, time.

    python bench/student_ablations.py --vocab runs/student/vocab [--epochs 5] [--threads 2] [--large-corpus]

``--vocab`` is the vocabulary folder written by ``st-bertapprox distill`` (or ``build-vocab``) on the default corpus.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer

from st_bertapprox.data import teacher_path
from st_bertapprox.distill import DistillConfig, distill, load_corpus
from st_bertapprox.modules.files import save_json
from st_bertapprox.modules.student import VocabSetEncoder
from st_bertapprox.modules.vocab import NGramVocab


def subset(encoder: VocabSetEncoder, keep_ngram=lambda e: True, skipgrams: bool = True, **flags) -> VocabSetEncoder:
    """The same encoder with some n-grams / all skip-grams removed (their table rows dropped), or other flags."""
    d = encoder.vocab.to_dict()
    vocab = NGramVocab(
        [e for e in d["ngrams"] if keep_ngram(e)],
        d["skipgrams"] if skipgrams else [],
        d["pieces"],
        overlapping=flags.get("overlapping", d["overlapping"]),
        unique=flags.get("unique", d["unique"]),
    )
    rows = [encoder.vocab.index[e] for e in vocab.entries]
    return VocabSetEncoder(
        vocab, encoder.embeddings.weight[rows], encoder.max_seq_length, storage_dtype=encoder.storage_dtype
    )


def smaller(encoder: VocabSetEncoder, fraction: float) -> VocabSetEncoder:
    """Keep the most frequent ``fraction`` of each n-gram order (the vocabulary lists each order by frequency)."""
    by_order: dict[int, list[str]] = {}
    for e in encoder.vocab.to_dict()["ngrams"]:
        by_order.setdefault(e.count(" ") + 1, []).append(e)
    keep = {e for entries in by_order.values() for e in entries[: int(len(entries) * fraction)]}
    return subset(encoder, lambda e: e in keep)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--num-sentences", type=int, default=40_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="run only these variants")
    parser.add_argument("--large-corpus", action="store_true", help="add the 100k and all-298k corpus variants")
    parser.add_argument("--out", default="runs/ablations.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    teacher = SentenceTransformer(teacher_path(), device="cpu")
    encoder = VocabSetEncoder.load(args.vocab)
    base = DistillConfig(epochs=args.epochs, eval_stsb=True)
    variants = {
        "default": (encoder, base, args.num_sentences),
        "no entry adapter": (encoder, replace(base, adapter_rank=0), args.num_sentences),
        "attention, 1 head": (encoder, replace(base, pooling={**base.pooling, "num_heads": 1}), args.num_sentences),
        "mean pooling (no attention)": (
            encoder,
            replace(base, pooling={**base.pooling, "pooling": "mean"}),
            args.num_sentences,
        ),
        "overlapping n-grams": (subset(encoder, overlapping=True), base, args.num_sentences),
        "no skip-grams": (subset(encoder, skipgrams=False), base, args.num_sentences),
        "unigrams only": (subset(encoder, lambda e: " " not in e, skipgrams=False), base, args.num_sentences),
        "half the vocabulary (most frequent half of each n-gram order)": (
            smaller(encoder, 0.5),
            base,
            args.num_sentences,
        ),
        "corpus 10k sentences": (encoder, base, 10_000),
    }
    if args.large_corpus:  # ~2.5x and ~3x the training time, and 60k / 260k more teacher-encoded sentences
        variants["corpus 100k sentences"] = (encoder, base, 100_000)
        variants["corpus all 298k sentences, 2 epochs"] = (encoder, replace(base, epochs=2), 300_000)
    out = Path(args.out)
    # a partial run (--only) adds to the results of earlier runs instead of replacing them
    results = json.loads(out.read_text()) if args.only and out.exists() else {}
    for name, (enc, config, n) in variants.items():
        if args.only and name not in args.only:
            continue
        _, train, heldout = load_corpus(num_sentences=n)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            student, metrics = distill(
                teacher, copy.deepcopy(enc), train, heldout, tmp, config, show_progress_bar=False
            )
        results[name] = {
            "stsb": metrics["sts-dev_spearman_cosine"],
            "cosine": metrics["heldout_cosine"],
            "top10": metrics["heldout_top10_overlap"],
            "vocab": len(enc.vocab),
            "trainable": sum(p.numel() for p in student.parameters() if p.requires_grad),
            "train_sentences": len(train),
            "minutes": (time.perf_counter() - t0) / 60,
        }
        print(f"measured {name}: {json.dumps(results[name])}", flush=True)
        save_json(results, str(out))  # after every variant: an interrupted run keeps what it measured
    print(
        f"\n{args.epochs} epochs each unless the variant says otherwise; held-out: 2000 Wikipedia sentences; "
        f"CPU threads: {args.threads}\n"
    )
    print(
        "| variant | STS-B dev | cos to teacher | top-10 overlap | vocab | trainable params "
        "| train sentences | minutes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['stsb']:.4f} | {r['cosine']:.4f} | {r['top10']:.3f} | {r['vocab']:,} "
            f"| {r['trainable'] / 1e6:.2f}M "
            f"| {r['train_sentences']:,} | {r['minutes']:.1f} |"
        )


if __name__ == "__main__":
    main()
