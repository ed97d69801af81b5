"""Speed of our from-scratch BERT vs `transformers.BertModel` (SDPA) on the same MiniLM weights, same inputs.

Two views, each measured in this run and reported as a ratio (ours / reference; < 1 means we are faster):
  * forward: the encoder alone on pre-tokenised batches of real STS-B sentences, padded/truncated to length T;
  * encode:  the whole `SentenceTransformer.encode` pipeline (tokenise, encode, mean-pool, normalise), ours vs the
    packaged model, on the STS-B dev sentences, plus their max |difference| (parity next to speed).

    python bench/bert_speed.py [--threads 2] [--repeats 20] [--small]
"""

from __future__ import annotations

import statistics
import time

import torch
from common import Report, bench_parser, set_threads
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
from transformers import AutoTokenizer, BertModel

from st_bertapprox import BertTransformer
from st_bertapprox.data.shared import load_stsb, teacher_path


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median wall time (s) of each function, calls interleaved (order flipped every round) so that both see the
    same machine state; two warm-up calls each."""
    for fn in fns.values():
        fn(), fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(repeats):
        for name in list(fns) if i % 2 == 0 else list(fns)[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    set_threads(args.threads)
    if args.small:
        args.repeats = 2
    rep, results = Report("bert_speed", args), {}
    path = teacher_path()
    ours = BertTransformer(path).eval()
    ref = BertModel.from_pretrained(path, attn_implementation="sdpa").eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    dev = load_stsb("dev")
    sentences = list(dev["sentence1"])

    rep.print(
        f"CPU threads: {args.threads}, torch {torch.__version__}, batch {args.batch_size}, median of {args.repeats}",
        "",
        "| view | seq len | ours (ms/batch) | transformers (ms/batch) | ratio ours/ref | max abs diff |",
        "|---|---|---|---|---|---|",
    )
    for T in (16, 128):
        # real sentences, repeated into long enough texts, padded to exactly T (so both see identical work)
        texts = [" ".join(sentences[i : i + 8]) for i in range(args.batch_size)]
        batch = tokenizer(texts, padding="max_length", truncation=True, max_length=T, return_tensors="pt")
        batch["attention_mask"][1::2, T // 2 :] = 0  # half the rows padded: the masked SDPA path is timed too
        with torch.inference_mode():
            a = ours.bert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[0]
            b = ref(**batch).last_hidden_state
            diff = (a - b)[batch["attention_mask"].bool()].abs().max().item()
            med = interleaved(
                {
                    "ours": lambda b=batch: ours.bert(b["input_ids"], b["attention_mask"], b["token_type_ids"]),
                    "ref": lambda b=batch: ref(**b),
                },
                args.repeats,
            )
        t_ours, t_ref = med["ours"], med["ref"]
        results[f"forward_{T}"] = {"ours_s": t_ours, "ref_s": t_ref, "ratio": t_ours / t_ref, "max_abs_diff": diff}
        rep.print(f"| forward | {T} | {t_ours * 1e3:.1f} | {t_ref * 1e3:.1f} | {t_ours / t_ref:.3f} | {diff:.1e} |")

    ours_st = SentenceTransformer(modules=[ours, Pooling(ours.get_embedding_dimension(), "mean"), Normalize()])
    ref_st = SentenceTransformer(path)
    texts = sentences[: 64 if args.small else 512]
    enc = dict(batch_size=args.batch_size, convert_to_tensor=True)
    diff = (ours_st.encode(texts, **enc) - ref_st.encode(texts, **enc)).abs().max().item()
    med = interleaved(
        {"ours": lambda: ours_st.encode(texts, **enc), "ref": lambda: ref_st.encode(texts, **enc)},
        min(6, args.repeats),
    )
    t_ours, t_ref = med["ours"], med["ref"]
    n = len(texts)
    results["encode"] = {"ours_s": t_ours, "ref_s": t_ref, "ratio": t_ours / t_ref, "max_abs_diff": diff}
    rep.print(
        f"| encode (STS-B dev, {n} sentences; sentences/s) | dynamic | {n / t_ours:.0f} | {n / t_ref:.0f} "
        f"| {t_ours / t_ref:.3f} | {diff:.1e} |"
    )

    rep.save(results)


if __name__ == "__main__":
    main()
