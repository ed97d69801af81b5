"""Is the student's tokenizer a bottleneck, and would a C trie library make it faster?

Measured in one run on real STS-B dev and Wikipedia sentences: our pure-Python word trie (dict of dicts) vs the same
longest-match rules on a `marisa-trie` (C++) n-gram trie, vs model2vec's Rust WordPiece tokenizer for scale; and the
tokenizer's share of the folded student's encode time, through `SentenceTransformer.encode` and through
`NumpyStudent.encode`, at batch 32 and batch 1.

    python bench/tokenizer_speed.py --vocab runs/student/vocab [--student runs/student/student-folded] [--small]
"""

from __future__ import annotations

import time

import torch
from common import Report, bench_parser, set_threads

from st_bertapprox.data.shared import load_sentences, load_stsb
from st_bertapprox.modules.student import VocabSetEncoder
from st_bertapprox.modules.vocab import NGramVocab, split_words


class MarisaLongestMatch:
    """``NGramVocab``'s n-gram longest match (+ word-piece fallback), on a marisa-trie of the n-gram strings."""

    def __init__(self, vocab: NGramVocab) -> None:
        import marisa_trie

        self.vocab = vocab
        ngrams = vocab.to_dict()["ngrams"]
        self.ids = {e: vocab.index[e] for e in ngrams}
        self.trie = marisa_trie.Trie(ngrams)
        self.max_words = max(e.count(" ") + 1 for e in ngrams)

    def tokenize(self, text: str) -> list[int]:
        words, out, i = split_words(text), [], 0
        while i < len(words):
            window = words[i : i + self.max_words]
            joined = " ".join(window)
            # keys that are prefixes of the window and end on a word boundary
            best = max(
                (k for k in self.trie.prefixes(joined) if len(k) == len(joined) or joined[len(k)] == " "),
                key=len,
                default=None,
            )
            if best is None:
                out.extend(self.vocab.word_pieces(words[i]))
                i += 1
            else:
                out.append(self.ids[best])
                i += best.count(" ") + 1
        return out


def per_second(fn, texts: list[str], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def main() -> None:
    parser = bench_parser(__doc__.splitlines()[0])
    parser.add_argument("--vocab", required=True)
    parser.add_argument("--student", help="a folded student folder, to measure the tokenizer's share of encode()")
    args = parser.parse_args()
    set_threads(args.threads)
    n = 300 if args.small else None  # texts per corpus (None: all)
    vocab = VocabSetEncoder.load(args.vocab).vocab
    dev = load_stsb("dev")
    stsb = list(dict.fromkeys(list(dev["sentence1"]) + list(dev["sentence2"])))[:n]
    corpora = {"STS-B dev": stsb, "Wikipedia": load_sentences(skip=298_000)[:n]}  # display name -> texts
    rep, results = Report("tokenizer_speed", args), {}
    ngram_only = NGramVocab(vocab.to_dict()["ngrams"], pieces=vocab.to_dict()["pieces"])  # no skip-grams
    marisa = MarisaLongestMatch(ngram_only)
    for texts in corpora.values():  # same rules, same output
        assert all(marisa.tokenize(t) == ngram_only.tokenize(t) for t in texts)
    from transformers import AutoTokenizer

    from st_bertapprox.data.shared import teacher_path

    wordpiece = AutoTokenizer.from_pretrained(teacher_path()).backend_tokenizer
    rep.print(
        f"vocabulary: {len(vocab):,} entries; CPU threads for torch: {args.threads}",
        "",
        "| corpus | ours: full rules (n-grams + skip-grams + pieces) | ours: n-gram longest match only "
        "| marisa-trie: n-gram longest match only | Rust WordPiece (teacher tokenizer, batch) |",
        "|---|---|---|---|---|",
    )
    for name, texts in corpora.items():
        full = per_second(lambda ts: [vocab.tokenize(t) for t in ts], texts)
        ours = per_second(lambda ts: [ngram_only.tokenize(t) for t in ts], texts)
        mar = per_second(lambda ts: [marisa.tokenize(t) for t in ts], texts)
        rust = per_second(lambda ts: wordpiece.encode_batch(ts), texts)
        results[name] = {"full": full, "ngram_only": ours, "marisa": mar, "wordpiece": rust}
        rep.print(
            f"| {name} ({len(texts)} texts) | {full:,.0f}/s | {ours:,.0f}/s | {mar:,.0f}/s ({mar / ours:.2f}x) "
            f"| {rust:,.0f}/s |"
        )
    if args.student:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(args.student, trust_remote_code=True, device="cpu")
        texts = stsb[:2048]
        rep.print("")
        encode = per_second(lambda ts: model.encode(ts, batch_size=32), texts)
        tok = per_second(lambda ts: [vocab.tokenize(t) for t in ts], texts)
        results["student"] = {"encode32": encode, "tokenize": tok}
        rep.print(
            f"folded student encode at batch 32: {encode:,.0f} sentences/s; tokenization alone: {tok:,.0f}/s "
            f"= {encode / tok:.0%} of encode time"
        )

        def direct(ts):  # what encode does for one text, minus its per-call machinery
            with torch.inference_mode():
                for t in ts:
                    model(model[0].preprocess([t]))["sentence_embedding"].numpy()

        one = texts[:512]
        rep.print("")
        enc1 = per_second(lambda ts: [model.encode([t], show_progress_bar=False) for t in ts], one)
        fwd1 = per_second(direct, one)
        tok1 = per_second(lambda ts: [vocab.tokenize(t) for t in ts], one)
        results["student"].update(encode1=enc1, forward1=fwd1, tokenize1=tok1)
        rep.print(
            f"batch 1, per sentence: encode() {1e6 / enc1:.0f} µs = tokenize {1e6 / tok1:.0f} µs + modules "
            f"{1e6 / fwd1 - 1e6 / tok1:.0f} µs + SentenceTransformer.encode's own per-call work "
            f"{1e6 / enc1 - 1e6 / fwd1:.0f} µs"
        )
        from st_bertapprox.inference.numpy_student import NumpyStudent

        fast = NumpyStudent.from_pretrained(args.student)
        np32 = per_second(lambda ts: fast.encode(ts, batch_size=32), texts)
        np1 = per_second(lambda ts: [fast.encode(t) for t in ts], one)
        results["numpy_student"] = {"encode32": np32, "encode1": np1}
        rep.print(
            "",
            f"NumpyStudent, same folded student: batch 32 {np32:,.0f} sentences/s (tokenization "
            f"{np32 / tok:.0%} of its time); batch 1 {1e6 / np1:.0f} µs per sentence = tokenize "
            f"{1e6 / tok1:.0f} µs + numpy {1e6 / np1 - 1e6 / tok1:.0f} µs",
        )

    rep.save(results)


if __name__ == "__main__":
    main()
