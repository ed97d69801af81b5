"""Ablations of the student: what each design choice is worth, all trained and measured in this run.

Every variant is the default recipe with one change: no entry adapter, attention pooling with one head or plain mean
pooling, overlapping instead of longest-match n-grams, no skip-grams, unigrams only, a smaller vocabulary, a smaller
corpus (larger ones with ``--large-corpus``: 100k sentences, and all ~298k Wikipedia sentences for 2 epochs
instead of 5, about as many training steps as 100k for 5 epochs). Columns: STS-B dev Spearman, mean cosine and top-10
neighbour overlap with the teacher on held-out Wikipedia sentences, vocabulary size, trainable parameters, time.
``--contextual`` runs the contextual student's ablations instead: the DeepSets student, one context block, two,
width 64 / 256, entry positions, entry-level targets at weight 0.25 (written to ``contextual_ablations.md``).

    python bench/student_ablations.py --vocab runs/student/vocab [--epochs 5] [--threads 2] [--large-corpus]
    python bench/student_ablations.py --vocab runs/student/vocab --contextual --epochs 1
    python bench/student_ablations.py --vocab runs/small/vocab --small   # smoke run (CI): 2 variants, 1 epoch

``--vocab`` is the vocabulary folder written by ``st-bertapprox distill`` (or ``build-vocab``) on the default corpus.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from dataclasses import replace

from common import Report, bench_parser, markdown_table, set_threads
from sentence_transformers import SentenceTransformer

from st_bertapprox.config import CorpusConfig, DistillConfig, StudentConfig
from st_bertapprox.data.corpus import load_corpus
from st_bertapprox.data.shared import teacher_path
from st_bertapprox.distill.student import distill
from st_bertapprox.finetune.common import trainable_parameters
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


def variants(encoder: VocabSetEncoder, recipe: DistillConfig, n: int, large_corpus: bool) -> dict[str, tuple]:
    """name -> (encoder, recipe, student architecture, training sentences): the default with one change each."""
    arch = StudentConfig()
    out = {
        "default": (encoder, recipe, arch, n),
        "no entry adapter": (encoder, recipe, replace(arch, adapter_rank=0), n),
        "attention, 1 head": (encoder, recipe, replace(arch, num_heads=1), n),
        "mean pooling (no attention)": (encoder, recipe, replace(arch, pooling="mean"), n),
        "overlapping n-grams": (subset(encoder, overlapping=True), recipe, arch, n),
        "no skip-grams": (subset(encoder, skipgrams=False), recipe, arch, n),
        "unigrams only": (subset(encoder, lambda e: " " not in e, skipgrams=False), recipe, arch, n),
        "half the vocabulary (most frequent half of each n-gram order)": (smaller(encoder, 0.5), recipe, arch, n),
        "corpus 10k sentences": (encoder, recipe, arch, min(10_000, n // 4)),
    }
    if large_corpus:  # ~2.5x and ~3x the training time, and 60k / 260k more teacher-encoded sentences
        out["corpus 100k sentences"] = (encoder, recipe, arch, 100_000)
        out["corpus all 298k sentences, 2 epochs"] = (encoder, replace(recipe, epochs=2), arch, 300_000)
    return out


def contextual_variants(encoder: VocabSetEncoder, recipe: DistillConfig, n: int) -> dict[str, tuple]:
    """The contextual student's ablations (``--contextual``): blocks, width, entry positions, entry-level targets,
    against the DeepSets student, all on the same corpus and budget."""
    ctx = replace(StudentConfig(), context_layers=1)
    return {
        "DeepSets (no context block)": (encoder, recipe, StudentConfig(), n),
        "contextual: 1 block, width 128": (encoder, recipe, ctx, n),
        "contextual: 2 blocks": (encoder, recipe, replace(ctx, context_layers=2), n),
        "contextual: width 64": (encoder, recipe, replace(ctx, context_dim=64), n),
        "contextual: width 256": (encoder, recipe, replace(ctx, context_dim=256), n),
        "contextual + entry positions": (encoder, recipe, replace(ctx, context_positions=ctx.max_seq_length), n),
        "contextual + entry targets x0.25": (encoder, replace(recipe, entry_loss_weight=0.25), ctx, n),
    }


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--vocab", required=True, help="a vocabulary folder (build-vocab / distill output)")
    parser.add_argument("--epochs", type=int, help="default: the recipe's (1 with --small)")
    parser.add_argument("--num-sentences", type=int, help="default: the corpus default (2,000 with --small)")
    parser.add_argument("--only", nargs="*", help="run only these variants (default with --small: 2 of them)")
    parser.add_argument("--large-corpus", action="store_true", help="add the 100k and all-298k corpus variants")
    parser.add_argument(
        "--contextual",
        action="store_true",
        help="the contextual student's ablations instead (contextual_ablations.md)",
    )
    args = parser.parse_args()
    set_threads(args.threads)
    corpus = CorpusConfig.small() if args.small else CorpusConfig()
    recipe = DistillConfig.small() if args.small else DistillConfig()
    recipe = replace(recipe, epochs=args.epochs or recipe.epochs, eval_stsb=True)
    n = args.num_sentences or corpus.num_sentences
    small_only = list(contextual_variants(None, recipe, n))[:2] if args.contextual else ["default", "no skip-grams"]
    only = args.only or (small_only if args.small else None)
    teacher = SentenceTransformer(teacher_path(), device="cpu")
    encoder = VocabSetEncoder.load(args.vocab)
    rep = Report("contextual_ablations" if args.contextual else "student_ablations", args)
    results = {}
    runs = (
        contextual_variants(encoder, recipe, n) if args.contextual else variants(encoder, recipe, n, args.large_corpus)
    )
    for name, (enc, config, arch, size) in runs.items():
        if only and name not in only:
            continue
        _, train, heldout = load_corpus(replace(corpus, num_sentences=size))
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            student, metrics = distill(
                teacher, copy.deepcopy(enc), train, heldout, tmp, config, arch, show_progress_bar=False
            )
        results[name] = {
            "stsb": metrics["sts-dev_spearman_cosine"],
            "cosine": metrics["heldout_cosine"],
            "top10": metrics["heldout_top10_overlap"],
            "vocab": len(enc.vocab),
            "trainable": trainable_parameters(student),
            "train_sentences": len(train),
            "epochs": config.epochs,
            "minutes": (time.perf_counter() - t0) / 60,
        }
        print(f"measured {name}: {json.dumps(results[name])}", flush=True)
    rep.print(
        f"{recipe.epochs} epochs each unless the variant says otherwise; held-out: {len(heldout):,} Wikipedia "
        f"sentences; CPU threads: {args.threads}",
        "",
    )
    header = ["variant", "STS-B dev", "cos to teacher", "top-10 overlap", "vocab", "trainable params"]
    rows = [
        [
            name,
            f"{r['stsb']:.4f}",
            f"{r['cosine']:.4f}",
            f"{r['top10']:.3f}",
            f"{r['vocab']:,}",
            f"{r['trainable'] / 1e6:.2f}M",
            f"{r['train_sentences']:,}",
            f"{r['minutes']:.1f}",
        ]
        for name, r in results.items()
    ]
    rep.print(*markdown_table(header + ["train sentences", "minutes"], rows))
    rep.save(results)


if __name__ == "__main__":
    main()
