"""The project's lint (ruff, configured in pyproject.toml): imports sorted, no unused names, line length, and
docstrings and annotations for the package's public API. A run of the same ruff the dev extra installs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
