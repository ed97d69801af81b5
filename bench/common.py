"""Helpers shared by the benchmark scripts: thread setup, timing, sizes, and the report that every script prints and
writes next to its JSON (``<results>/<name>.md`` + ``<name>.json``), which ``bench/readme.py`` copies into README.md.

Full runs write to ``bench/results/`` (committed: the README's tables are those files, checked by
``tests/test_readme.py``); ``--small`` runs (CI) write elsewhere, so a smoke run never replaces a published table.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/x.py` from a checkout
from st_bertapprox.modules.files import atomic_path  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SMALL_RESULTS_DIR = Path("runs/bench-small")


def bench_parser(description: str) -> argparse.ArgumentParser:
    """An ArgumentParser with the options every bench shares: --threads, --small and --results."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and numpy's BLAS")
    parser.add_argument("--small", action="store_true", help="a quick smoke run on a few hundred texts (CI)")
    parser.add_argument(
        "--results",
        help=f"where the markdown table and JSON go (default: bench/results for full runs, {SMALL_RESULTS_DIR} "
        "with --small, so a smoke run never replaces a published table)",
    )
    return parser


def set_threads(threads: int) -> None:
    """The same number of threads for torch, numpy's BLAS (threadpoolctl) and no tokenizer parallelism."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def folder_mb(path: str | Path) -> float:
    """Size on disk of a file or folder, MiB."""
    path = Path(path)
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_size for f in files) / 2**20


def round_robin_throughput(encoders: list[Callable], texts: list[str], batch_size: int, rounds: int) -> list[float]:
    """Sentences/s of every ``encode(texts, batch_size)``: each round times every encoder once, in a rotated order,
    so all see the same machine drift; the median over rounds is reported. A pause before each timing lets the
    previous model's thread pools (torch's OpenMP, numpy's OpenBLAS) stop spinning: without it, the folded student
    through SentenceTransformer, timed right after NumpyStudent, measured about half its speed."""
    for encode in encoders:
        encode(texts[:64], batch_size)  # warm-up
    times: list[list[float]] = [[] for _ in encoders]
    order = list(range(len(encoders)))
    for r in range(rounds):
        for i in order[r % len(order) :] + order[: r % len(order)]:
            time.sleep(0.25)
            t0 = time.perf_counter()
            encoders[i](texts, batch_size)
            times[i].append(time.perf_counter() - t0)
    return [len(texts) / statistics.median(t) for t in times]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


class Report:
    """Lines printed as they come and kept, then written as ``<name>.md`` next to ``<name>.json``."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        command = "python " + shlex.join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])
        self.name, self.lines = name, [f"`{command}`", ""]
        self.dir = Path(args.results or (SMALL_RESULTS_DIR if args.small else RESULTS_DIR))

    def print(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)

    def save(self, data: dict) -> Path:
        """Write ``<name>.md`` (every printed line) and ``<name>.json`` atomically; returns the markdown path."""
        self.dir.mkdir(parents=True, exist_ok=True)
        md = self.dir / f"{self.name}.md"
        with atomic_path(md) as tmp:
            Path(tmp).write_text("\n".join(self.lines).rstrip() + "\n", encoding="utf-8")
        with atomic_path(self.dir / f"{self.name}.json") as tmp:
            Path(tmp).write_text(json.dumps(data, indent=2), encoding="utf-8")
        print(f"\nwrote {md} and {md.with_suffix('.json')}")
        return md
