"""STS-B fine-tuning through `SentenceTransformerTrainer` with `CosineSimilarityLoss` (MSE between the cosine of a
sentence pair and its gold score scaled to 0-1), on our from-scratch BERT with mean or MLP-then-mean pooling.

No model selection on dev: the model after the last epoch is the one evaluated and saved, so the dev score we
report is not tuned on itself beyond the fixed recipe.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field

import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

from .data import load_stsb, teacher_path
from .evaluation import stsb_evaluator
from .modules.bert import BertTransformer
from .modules.pooling import MLPMeanPooling

logger = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    """The STS-B recipe; the defaults are the ones behind the README table."""

    pooling: str = "mean"  # "mean" (ST Pooling) or "mlp" (MLPMeanPooling: per-token MLP, then mean)
    mlp_hidden_dims: list[int] = field(default_factory=lambda: [384])
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 2e-5
    mlp_learning_rate: float = 1e-3  # the freshly initialised MLP learns faster than the pretrained encoder
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    max_train_pairs: int | None = None  # a subset, for quick runs and tests


def build_model(base: str, config: FinetuneConfig) -> SentenceTransformer:
    """``BertTransformer(base)`` + pooling + ``Normalize``; the MLP starts as the identity (plain mean pooling)."""
    bert = BertTransformer(base)
    dim = bert.get_embedding_dimension()
    if config.pooling == "mean":
        pooling = Pooling(dim, "mean")
    elif config.pooling == "mlp":
        pooling = MLPMeanPooling(dim, hidden_dims=config.mlp_hidden_dims, residual=True)
    else:
        raise ValueError(f"pooling must be 'mean' or 'mlp', got {config.pooling!r}")
    return SentenceTransformer(modules=[bert, pooling, Normalize()])


def ms_per_sentence(model: SentenceTransformer, sentences: list[str], batch_size: int = 32) -> float:
    """CPU encode time per sentence (best of two passes, after a warm-up)."""
    model.encode(sentences[:batch_size], batch_size=batch_size)
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        model.encode(sentences, batch_size=batch_size)
        best = min(best, time.perf_counter() - t0)
    return best / len(sentences) * 1e3


def finetune_stsb(
    base: str, output_dir: str, config: FinetuneConfig | None = None, show_progress_bar: bool = True
) -> tuple[SentenceTransformer, dict]:
    """Fine-tune ``base`` on STS-B train; returns the model and ``{"before": dev, "after": dev, ...}``."""
    config = config or FinetuneConfig()
    torch.manual_seed(config.seed)
    model = build_model(base, config)
    train = load_stsb("train")
    if config.max_train_pairs:
        train = train.shuffle(seed=config.seed).select(range(min(config.max_train_pairs, len(train))))
    evaluator = stsb_evaluator("dev")
    before = evaluator(model)[evaluator.primary_metric]
    loss = CosineSimilarityLoss(model)
    args = SentenceTransformerTrainingArguments(
        output_dir=os.path.join(output_dir, "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a fraction of the steps (transformers 5)
        weight_decay=config.weight_decay,
        eval_strategy="epoch",
        save_strategy="no",
        logging_steps=50,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=not show_progress_bar,
        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
    )
    optimizer = None
    if config.pooling == "mlp":  # two learning rates: pretrained encoder vs fresh MLP
        groups = [
            {"params": [p for p in model[0].parameters() if p.requires_grad], "lr": config.learning_rate},
            {"params": [p for p in model[1].parameters() if p.requires_grad], "lr": config.mlp_learning_rate},
        ]
        optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train, loss=loss, evaluator=evaluator, optimizers=(optimizer, None)
    )
    t0 = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - t0
    model.eval()
    after = evaluator(model)[evaluator.primary_metric]
    return model, {
        "before": before,
        "after": after,
        "train_pairs": len(train),
        "train_seconds": train_seconds,
        "config": asdict(config),
    }


def _folder_mb(path: str) -> float:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20


def finetune_job(
    base: str,
    output_dir: str,
    poolings: tuple[str, ...] = ("mean", "mlp"),
    config: FinetuneConfig | None = None,
    command: str = "",
    show_progress_bar: bool = True,
) -> dict:
    """The STS-B job: base model -> fine-tuned (one per pooling), saved + exported, with a results table.

    Writes ``output_dir/<model>/`` folders (self-contained, with model cards), ``results.json`` and ``results.md``;
    prints the before/after demonstration and the table.
    """
    from .evaluation.probes import DEMO_PAIRS, contextual_probe, pair_cosines
    from .export import export_builtin
    from .hub import CardInfo, save_pretrained
    from .modules.bert import BertConfig

    config = config or FinetuneConfig()
    os.makedirs(output_dir, exist_ok=True)
    dev = load_stsb("dev")
    speed_texts = list(dev["sentence1"])[:512]
    evaluator = stsb_evaluator("dev")
    score = lambda m: evaluator(m)[evaluator.primary_metric]  # noqa: E731
    base_model = build_model(base, FinetuneConfig(pooling="mean"))
    base_dir = os.path.join(output_dir, "base")
    export_builtin(base_model, base_dir)

    is_default = os.path.isdir(base) and os.path.samefile(base, teacher_path())
    base_name = "all-MiniLM-L6-v2" if is_default else os.path.basename(os.path.normpath(base))
    rows = [
        {
            "model": f"base: {base_name} (mean pooling)",
            "dev": score(base_model),
            "size_mb": _folder_mb(base_dir),
            "ms": ms_per_sentence(base_model, speed_texts),
        }
    ]
    demo = {"pairs": DEMO_PAIRS, "before": pair_cosines(base_model), "probe_before": contextual_probe(base_model[0])}
    for pooling in poolings:
        cfg = FinetuneConfig(**{**asdict(config), "pooling": pooling})
        model, res = finetune_stsb(base, os.path.join(output_dir, f"train-{pooling}"), cfg, show_progress_bar)
        name = f"minilm-stsb-{pooling}"
        info = CardInfo(
            title=f"all-MiniLM-L6-v2 fine-tuned on STS-B ({'mean' if pooling == 'mean' else 'MLP-then-mean'} pooling)",
            description="all-MiniLM-L6-v2 rebuilt on st-bertapprox's from-scratch BERT and fine-tuned on STS-B train "
            "with CosineSimilarityLoss through SentenceTransformerTrainer.",
            architecture="BertTransformer (6 layers, 384 wide) -> "
            + ("mean pooling" if pooling == "mean" else "MLPMeanPooling (per-token MLP, then mean)")
            + " -> Normalize",
            training=f"{cfg.epochs} epochs over {res['train_pairs']} STS-B train pairs, batch {cfg.batch_size}, "
            f"lr {cfg.learning_rate}, warm-up {cfg.warmup_ratio:.0%}, seed {cfg.seed}; no model selection on dev.",
            command=command,
            base_model="sentence-transformers/all-MiniLM-L6-v2",
            datasets=["sentence-transformers/stsb"],
            results={"stsb_dev_spearman": res["after"]},
            tags=["stsb"],
        )
        path = os.path.join(output_dir, name)
        save_pretrained(model, path, info, repo_id=f"st-bertapprox/{name}")
        reloaded = SentenceTransformer(path, trust_remote_code=True)
        builtin_path = os.path.join(output_dir, f"{name}-builtin")
        export_builtin(model, builtin_path)
        res.update(reloaded_dev=score(reloaded), builtin_dev=score(SentenceTransformer(builtin_path)), path=path)
        demo[f"after_{pooling}"] = pair_cosines(model)
        demo[f"probe_after_{pooling}"] = contextual_probe(model[0])
        rows.append(
            {
                "model": f"fine-tuned, {'mean' if pooling == 'mean' else 'MLP-then-mean'}",
                "dev": res["after"],
                "size_mb": _folder_mb(path),
                "ms": ms_per_sentence(model, speed_texts),
                **res,
            }
        )
    # a larger model for scale: the BERT-base architecture (no larger pretrained checkpoint is available offline)
    big = BertTransformer(config=BertConfig(), tokenizer=base_model[0].tokenizer, max_seq_length=256)
    big_model = SentenceTransformer(modules=[big, Pooling(768, "mean"), Normalize()])
    rows.append(
        {
            "model": "BERT-base architecture (12x768, random weights: speed/size only)",
            "dev": None,
            "size_mb": sum(p.numel() for p in big.parameters()) * 4 / 2**20,
            "ms": ms_per_sentence(big_model, speed_texts),
        }
    )
    table = _markdown(rows)
    results = {"rows": rows, "demo": demo, "table": table, "command": command}
    from .modules.files import atomic_path, save_json

    save_json(results, os.path.join(output_dir, "results.json"))
    with atomic_path(os.path.join(output_dir, "results.md")) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(table + "\n")
    return results


def _markdown(rows: list[dict]) -> str:
    base = rows[0]["dev"]
    lines = [
        "| model | STS-B dev Spearman | Δ vs base | size (MB) | ms/sentence (CPU, batch 32) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        dev = f"{r['dev']:.4f}" if r["dev"] is not None else "n/a"
        delta = f"{r['dev'] - base:+.4f}" if r["dev"] is not None else "n/a"
        lines.append(f"| {r['model']} | {dev} | {delta} | {r['size_mb']:.0f} | {r['ms']:.2f} |")
    return "\n".join(lines)
