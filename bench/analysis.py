"""Embedding-space analysis and contrastive fine-tuning, one run: anisotropy and subject separability of the raw BERT,
the base sentence model and contrastively fine-tuned models (and students), on held-out news documents.

For each dataset (AG News: 4 topics; BBC News: 5 topics), ``st_bertapprox.finetune.contrastive.run_contrastive``: a
seeded split by document (train / dev / held-out test, stratified by topic), one fine-tuned all-MiniLM-L6-v2 per loss
(``SentenceTransformerTrainer``, one epoch, the recipe of ``ContrastiveConfig``), then every figure of
``st_bertapprox.evaluation.analysis`` on the test documents for: the raw BERT (input word-embedding table, last-layer
token vectors, mean of the input word embeddings over a text, [CLS]), the base sentence model, the fine-tuned models
and every ``--student NAME=DIR`` (a ``st-bertapprox distill`` run folder). Prints one table per dataset and writes
``<results>/analysis.{md,json}`` and ``<results>/analysis_<dataset>.png`` (one PCA panel per labelled row).

    python bench/analysis.py --threads 1          # AG News + BBC, both losses: bench/results/analysis.*
    python bench/analysis.py --small              # smoke run (CI): AG News, 96 training / 96 test documents
    python bench/analysis.py --student "student (base teacher)=runs/analysis/student-base"
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from common import Report, bench_parser, named, set_threads

from st_bertapprox.config import ContrastiveConfig, LabelledDataConfig
from st_bertapprox.data.shared import teacher_path
from st_bertapprox.finetune.contrastive import run_contrastive
from st_bertapprox.modules.io import atomic_path
from st_bertapprox.persistence.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
# documents per dataset: AG News test has 7,600 (1,900 a topic), BBC 2,127 distinct articles (~400 a topic)
# (sized for a shared 2-core CPU: one run of both datasets and both losses in about half an hour)
SIZES = {"agnews": dict(train_texts=1000, dev_texts=200, test_texts=600), "bbc": dict(train_texts=600, dev_texts=150,
         test_texts=400)}  # fmt: skip
LOSSES = ("batch-all-triplet", "mnrl")


def student(run: Path):
    """A distill run folder's folded student (else its student; else the folder itself is the model)."""
    for sub in ("student-folded", "student", "."):
        if (run / sub / "modules.json").is_file():
            return load_model(str(run / sub))
    raise FileNotFoundError(f"{run} holds no saved model (student-folded/, student/ or modules.json)")


def describe_runs(runs: dict) -> list[str]:
    lines = []
    for loss, run in runs.items():
        before, after = run["dev_before"], run["dev_after"]
        dev = ", ".join(f"{k} {before[k]:.3f} -> {after[k]:.3f}" for k in before) if before else "no dev split"
        lines.append(f"- {loss}: {run['train_rows']} training rows, {run['train_seconds']:.0f} s; dev: {dev}")
    return lines


def main() -> None:
    start = time.perf_counter()
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", help="agnews, bbc (default: both; --small: agnews)")
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), help=f"default: {' '.join(LOSSES)}")
    parser.add_argument("--student", type=named, action="append", default=[], help="NAME=DIR (repeatable)")
    parser.add_argument(
        "--out", help="fine-tuned models' folder (default: runs/analysis; --small: runs/analysis-small)"
    )
    args = parser.parse_args()
    set_threads(args.threads)
    datasets = args.data or (["agnews"] if args.small else ["agnews", "bbc"])
    extra = {name: student(path) for name, path in args.student}
    out = args.out or ("runs/analysis-small" if args.small else "runs/analysis")
    recipe = ContrastiveConfig.small() if args.small else ContrastiveConfig()
    rep = Report("analysis", args)
    rep.print(
        f"Recipe: {', '.join(f'{k}={v}' for k, v in vars(recipe).items() if k != 'loss')}; all-MiniLM-L6-v2 on our "
        f"BertTransformer + mean pooling + Normalize; CPU threads: {args.threads}. Figures on the held-out test "
        "documents only: anisotropy on unit vectors (mean cosine of distinct pairs, variance share of the first "
        "principal components, effective rank, isotropy I(W) of Mu & Viswanath 2018), kNN = leave-one-out 10-NN "
        "accuracy (cosine), V-measure = MTEB's clustering protocol (10 runs), ARI = one KMeans, NN other subject = "
        "share of texts whose nearest neighbour has another subject.",
    )
    results = {}
    for name in datasets:
        t0 = time.perf_counter()
        sizes = LabelledDataConfig.small() if args.small else LabelledDataConfig(**SIZES[name])
        data = LabelledDataConfig(data=name, **{k: getattr(sizes, k) for k in SIZES["agnews"]})
        res = run_contrastive(teacher_path(), data, recipe, os.path.join(out, name), tuple(args.losses), extra)
        png = rep.dir / f"analysis_{name}.png"
        rep.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(png) as tmp:
            shutil.copyfile(res["png"], tmp)
        link = os.path.relpath(png.resolve(), ROOT)  # as README.md sees it
        rep.print(
            "",
            f"#### {name}: {data.train_texts} training, {data.dev_texts} dev, {data.test_texts} held-out documents",
            "",
            res["table"],
            "",
            "Most confused subjects (share of a subject's test texts whose nearest neighbour has the other subject):",
            "",
            *[f"- {line}" for line in res["most_confused"]],
            "",
            "Training (dev figures before -> after, for choosing the loss):",
            "",
            *describe_runs(res["runs"]),
            "",
            f"![PCA of the {name} test documents]({link})",
            "",
            f"Wall time for {name}: {time.perf_counter() - t0:.0f} s.",
        )
        results[name] = {k: res[k] for k in ("views", "runs", "most_confused", "data", "seconds")}
    rep.print("", f"Wall time of the whole run: {time.perf_counter() - start:.0f} s.")
    rep.save({"datasets": results, "threads": args.threads, "wall_s": time.perf_counter() - start})


if __name__ == "__main__":
    main()
