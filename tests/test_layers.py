"""The package's layers (STYLE.md §10): a module never imports one of a higher layer, at module level or inside a
function. The order, lowest first: ``modules`` <- ``config`` / ``data`` / ``fingerprint`` <- ``persistence`` <-
``inference`` <- ``evaluation`` <- ``distill`` / ``finetune`` / ``qa`` <- ``cli``. Rooms of one layer may import each
other (``distill.tiny`` uses ``finetune.common``). Also: ``modules/`` imports nothing of ours outside itself (it
travels with a saved model as remote code), and ``config`` imports no torch and does no I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "st_bertapprox"
LAYERS = {
    "modules": 0,
    "config": 1,
    "data": 1,
    "fingerprint": 1,
    "persistence": 2,
    "inference": 3,
    "evaluation": 4,
    "distill": 5,
    "finetune": 5,
    "qa": 5,
    "cli": 6,
}
# os.path string functions are allowed in config.py (tests/test_defaults.py checks os is used for nothing else)
NO_IO = {"io", "pathlib", "shutil", "json", "tempfile", "torch", "numpy", "transformers", "sentence_transformers"}
NO_IO |= {"datasets"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path`` (module ``name``), relative ones resolved."""
    name = name or _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from st_bertapprox import distill` imports a room, not a name
            found += [(node.lineno, f"{module}.{a.name}") for a in node.names if (PACKAGE / a.name).exists()]
    return found


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "st_bertapprox" and parts[1] in LAYERS else None


FILES = sorted(p for p in PACKAGE.rglob("*.py") if _room(_module_name(p)) is not None)


def test_every_file_belongs_to_a_layer():
    """A new top-level file must be given a layer here (the package root holds only rooms and __init__)."""
    stray = [p.name for p in PACKAGE.rglob("*.py") if _module_name(p) != "st_bertapprox" and p not in FILES]
    assert not stray, f"files outside every layer: {stray}; add them to LAYERS or move them into a room"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_goes_up(path: Path):
    room = _room(_module_name(path))
    wrong = []
    for line, module in _imports(path):
        other = _room(module)
        if other is not None and LAYERS[other] > LAYERS[room]:
            wrong.append(f"line {line}: {module} (layer {LAYERS[other]} > {room}'s {LAYERS[room]})")
        if room == "modules" and module.startswith("st_bertapprox") and other != "modules":
            wrong.append(f"line {line}: {module} (modules/ imports nothing of ours outside it)")
    assert not wrong, f"{path.relative_to(PACKAGE)} imports a higher layer:\n" + "\n".join(wrong)


def test_config_is_dataclasses_only():
    modules = {m.split(".")[0] for _, m in _imports(PACKAGE / "config.py")}
    assert not modules & NO_IO, f"config.py imports {sorted(modules & NO_IO)}: configs do no I/O and import no torch"
    assert "st_bertapprox" not in modules, "config.py imports st_bertapprox code: configs are dataclasses only"


def test_the_check_sees_a_wrong_arrow(tmp_path: Path):
    """The walker itself: upward imports inside a function, relative or absolute, are found and resolved."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from st_bertapprox.distill.student import run\n    from ..cli import main\n")
    found = [m for _, m in _imports(probe, "st_bertapprox.inference.probe")]
    assert found == ["st_bertapprox.distill.student", "st_bertapprox.cli"]
    assert all(LAYERS[_room(m)] > LAYERS["inference"] for m in found)
