"""What the script tests share: run a README command (the CLI, a bench script) as a user does, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict | None = None, ok: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*args], capture_output=True, text=True, cwd=ROOT, env=env or os.environ.copy(), timeout=timeout
    )
    if ok and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "st_bertapprox.cli", *args, **kw)


def bench(script: str, *args: str, **kw) -> subprocess.CompletedProcess:
    """``python bench/SCRIPT ARGS``, on the threads conftest gives each test worker (the bench default is 2)."""
    threads = ["--threads", os.environ["OMP_NUM_THREADS"]] if "OMP_NUM_THREADS" in os.environ else []
    return run(sys.executable, str(ROOT / "bench" / script), *args, *threads, **kw)


def main_in_process(*args: str, capsys) -> tuple[int, str]:
    """``st-bertapprox ARGS`` in this process (no interpreter start-up): (exit status, stderr)."""
    from st_bertapprox.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code, capsys.readouterr().err


def numbers_in(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from numbers_in(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from numbers_in(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj
