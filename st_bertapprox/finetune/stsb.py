"""STS-B fine-tuning through `SentenceTransformerTrainer` with `CosineSimilarityLoss` (MSE between the cosine of a
sentence pair and its gold score scaled to 0-1), on our from-scratch BERT with mean or MLP-then-mean pooling.

No model selection on dev: the model after the last epoch is the one evaluated and saved, so the dev score we
report is not tuned on itself beyond the fixed recipe.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, replace

import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

from st_bertapprox.config import DEFAULT_TEACHER, FinetuneConfig
from st_bertapprox.data.shared import load_stsb, teacher_path
from st_bertapprox.evaluation import evaluate_stsb, stsb_evaluator
from st_bertapprox.finetune.common import build_model, short_name, training_arguments, two_rate_adamw
from st_bertapprox.modules.bert import BertTransformer
from st_bertapprox.persistence.cards import CardInfo
from st_bertapprox.persistence.saving import save_results

logger = logging.getLogger(__name__)


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
    base: str,
    output_dir: str,
    config: FinetuneConfig | None = None,
    show_progress_bar: bool = True,
    before: float | None = None,
) -> tuple[SentenceTransformer, dict]:
    """Fine-tune ``base`` on STS-B train; returns the model and ``{"before": dev, "after": dev, ...}``.
    ``before``: the untrained model's STS-B dev score when the caller has measured it already."""
    config = config or FinetuneConfig()
    torch.manual_seed(config.seed)
    model = build_model(base, config)
    train = load_stsb("train")
    if config.max_train_pairs:
        train = train.shuffle(seed=config.seed).select(range(min(config.max_train_pairs, len(train))))
    evaluator = stsb_evaluator("dev")
    before = evaluator(model)[evaluator.primary_metric] if before is None else before
    loss = CosineSimilarityLoss(model)
    args = training_arguments(
        config,
        os.path.join(output_dir, "checkpoints"),
        save_strategy="no",
        logging_steps=50,
        disable_tqdm=not show_progress_bar,
    )
    optimizer = None
    if config.pooling == "mlp":  # two learning rates: pretrained encoder vs fresh MLP
        optimizer = two_rate_adamw(model, model[1].parameters(), config, config.mlp_learning_rate)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train, loss=loss, evaluator=evaluator, optimizers=(optimizer, None)
    )
    t0 = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - t0
    model.eval()
    # the trainer evaluated the final model at the end of the last epoch (eval_strategy="epoch"): reuse that figure
    key = f"eval_{evaluator.primary_metric}"
    logged = [log[key] for log in trainer.state.log_history if key in log]
    after = logged[-1] if logged else evaluator(model)[evaluator.primary_metric]
    return model, {
        "before": before,
        "after": after,
        "train_pairs": len(train),
        "train_seconds": train_seconds,
        "config": asdict(config),
    }


def _folder_mb(path: str) -> float:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs) / 2**20


def base_model_id(base: str) -> str:
    """What cards call the base model: the Hub id of the packaged MiniLM, else the ``base`` given."""
    if os.path.isdir(base) and os.path.samefile(base, teacher_path()):
        return DEFAULT_TEACHER
    return base


def card_info(base: str, pooling: str, config: FinetuneConfig, res: dict, command: str) -> CardInfo:
    """The model card of a fine-tuned model: its real base model, recipe and dev score."""
    base_id = base_model_id(base)
    short = short_name(base_id)
    kind = "mean" if pooling == "mean" else "MLP-then-mean"
    return CardInfo(
        title=f"{short} fine-tuned on STS-B ({kind} pooling)",
        description=f"{short} rebuilt on st-bertapprox's from-scratch BERT and fine-tuned on STS-B train "
        "with CosineSimilarityLoss through SentenceTransformerTrainer.",
        architecture=f"BertTransformer ({res['layers']} layers, {res['width']} wide) -> "
        + ("mean pooling" if pooling == "mean" else "MLPMeanPooling (per-token MLP, then mean)")
        + " -> Normalize",
        training=f"{config.epochs} epochs over {res['train_pairs']} STS-B train pairs, batch {config.batch_size}, "
        f"lr {config.learning_rate}, warm-up {config.warmup_ratio:.0%}, seed {config.seed}; "
        "no model selection on dev.",
        command=command,
        base_model=base_id,
        datasets=["sentence-transformers/stsb"],
        results={"stsb_dev_spearman": res["after"]},
        tags=["stsb"],
    )


def export_finetuned(model: SentenceTransformer, path: str, builtin_path: str, info: CardInfo) -> dict[str, float]:
    """Save the model (self-contained, with its card) and its built-in export; their STS-B dev scores on reload."""
    from st_bertapprox.persistence.saving import export_builtin, save_pretrained

    save_pretrained(model, path, info, repo_id=f"st-bertapprox/{os.path.basename(path)}")
    export_builtin(model, builtin_path)
    return {
        "reloaded_dev": evaluate_stsb(SentenceTransformer(path, trust_remote_code=True)),
        "builtin_dev": evaluate_stsb(SentenceTransformer(builtin_path)),
    }


def speed_row(name: str, model: SentenceTransformer, size_mb: float, dev: float | None, texts: list[str]) -> dict:
    """One row of the results table: STS-B dev, size and CPU ms per sentence."""
    return {"model": name, "dev": dev, "size_mb": size_mb, "ms": ms_per_sentence(model, texts)}


def run_finetune(
    base: str,
    output_dir: str,
    poolings: tuple[str, ...] = ("mean", "mlp"),
    config: FinetuneConfig | None = None,
    command: str = "",
    show_progress_bar: bool = True,
    small: bool = False,
) -> dict:
    """The STS-B job: base model -> fine-tuned (one per pooling), saved + exported, with a results table.

    Writes ``output_dir/<model>/`` folders (self-contained, with model cards), ``results.json`` and ``results.md``.
    ``small``: speed on 64 sentences instead of 512, and no BERT-base speed row (a smoke run).
    """
    from st_bertapprox.evaluation.probes import DEMO_PAIRS, contextual_probe, pair_cosines
    from st_bertapprox.modules.bert import BertConfig
    from st_bertapprox.persistence.saving import export_builtin

    config = config or FinetuneConfig()
    os.makedirs(output_dir, exist_ok=True)
    speed_texts = list(load_stsb("dev")["sentence1"])[: 64 if small else 512]
    base_model = build_model(base, replace(config, pooling="mean"))
    base_dir = os.path.join(output_dir, "base")
    export_builtin(base_model, base_dir)
    base_name = short_name(base_model_id(base))
    rows = [
        speed_row(
            f"base: {base_name} (mean pooling)",
            base_model,
            _folder_mb(base_dir),
            evaluate_stsb(base_model),
            speed_texts,
        )
    ]
    demo = {"pairs": DEMO_PAIRS, "before": pair_cosines(base_model), "probe_before": contextual_probe(base_model[0])}
    for pooling in poolings:
        cfg = replace(config, pooling=pooling)
        before = rows[0]["dev"] if pooling == "mean" else None  # the same model as the base row
        model, res = finetune_stsb(base, os.path.join(output_dir, f"train-{pooling}"), cfg, show_progress_bar, before)
        res.update(layers=model[0].bert.config.num_hidden_layers, width=model[0].get_embedding_dimension())
        path = os.path.join(output_dir, f"minilm-stsb-{pooling}")
        res.update(export_finetuned(model, path, path + "-builtin", card_info(base, pooling, cfg, res, command)))
        res["path"] = path
        demo[f"after_{pooling}"] = pair_cosines(model)
        demo[f"probe_after_{pooling}"] = contextual_probe(model[0])
        kind = "mean" if pooling == "mean" else "MLP-then-mean"
        rows.append({**speed_row(f"fine-tuned, {kind}", model, _folder_mb(path), res["after"], speed_texts), **res})
    if small:
        return write_results(output_dir, rows, demo, command)
    # a larger model for scale: the BERT-base architecture (no larger pretrained checkpoint is available offline)
    big = BertTransformer(config=BertConfig(), tokenizer=base_model[0].tokenizer, max_seq_length=256)
    big_model = SentenceTransformer(modules=[big, Pooling(768, "mean"), Normalize()])
    size_mb = sum(p.numel() for p in big.parameters()) * 4 / 2**20
    rows.append(
        speed_row(
            "BERT-base architecture (12x768, random weights: speed/size only)", big_model, size_mb, None, speed_texts
        )
    )
    return write_results(output_dir, rows, demo, command)


def write_results(output_dir: str, rows: list[dict], demo: dict, command: str) -> dict:
    """``output_dir/results.json`` (rows, demonstration, table, command) and ``results.md`` (the table)."""
    table = _markdown(rows)
    return save_results(output_dir, {"rows": rows, "demo": demo, "table": table, "command": command}, table)


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
