"""The README's measured tables are the files the benchmarks wrote in their latest full run (bench/results/*.md),
copied in by `python bench/readme.py`: a table edited by hand, or a bench rerun without updating the README, fails."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from readme import blocks  # noqa: E402


def test_readme_tables_equal_the_bench_outputs():
    found = blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert {"bench/results/student.md", "bench/results/bert_speed.md", "bench/results/tokenizer_speed.md"} <= set(
        found
    )
    for name, text in found.items():
        assert text == (ROOT / name).read_text(encoding="utf-8"), f"README block {name} differs: run bench/readme.py"


def test_every_published_table_names_the_command_that_made_it():
    for path in (ROOT / "bench" / "results").glob("*.md"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("`python bench/") and "--small" not in first, (path, first)
        assert path.with_suffix(".json").is_file(), path
