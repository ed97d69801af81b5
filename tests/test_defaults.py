"""One source of each default (issue 23): the typed configs of ``st_bertapprox.config``.

* The modules that travel with a saved model (``modules/``: remote code, they cannot import ``config.py``) and the QA
  model keep their own constructor defaults: these are pinned to the config fields they restate, so either side
  drifting fails here. A saved model is unaffected either way: its config file records every value (checked below).
* Functions below the command line take the config object instead of restating its fields (STYLE §10).
* ``config.py`` is plain data: no torch, no I/O.

Why ``config.py`` is checked by loading its file on its own and by reading its source, not by
``import st_bertapprox.config`` in a fresh process: importing a submodule runs the package's ``__init__``, which
imports ``st_bertapprox.modules`` and so torch, whatever ``config.py`` itself imports.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from conftest import tiny_bert_config

from st_bertapprox.config import FinetuneConfig, QAConfig, StudentConfig, TinyConfig, VocabConfig, field_default
from st_bertapprox.modules.pooling import MLPMeanPooling
from st_bertapprox.modules.student import DeepSetsPooling, VocabSetEncoder

CONFIG_FILE = Path(__file__).resolve().parents[1] / "st_bertapprox" / "config.py"

# (module class, parameter) -> (its default, the config field's default): differences that are meant, pinned exactly
INTENDED = {
    # 0: a vocabulary as build-vocab writes it, loads and folds (fold_student relies on it); the recipe's rank-32
    # adapter is added by distill.student.build_student, which passes StudentConfig.adapter_rank explicitly
    ("VocabSetEncoder", "adapter_rank"): (0, 32),
}


def parameter_defaults(func) -> dict:
    return {name: p.default for name, p in inspect.signature(func).parameters.items() if p.default is not p.empty}


def config_defaults(cls) -> dict:
    return {f.name: field_default(f) for f in fields(cls)}


def drift(component, config_cls, renamed: dict[str, str] | None = None) -> dict[str, tuple]:
    """``{field: (component's default, config's default)}`` for every config field that the component's signature
    restates (same name, or ``renamed[field]``) with another default, less the pinned ``INTENDED`` differences."""
    params = parameter_defaults(component)
    out = {}
    for name, default in config_defaults(config_cls).items():
        param = (renamed or {}).get(name, name)
        if param not in params:
            continue
        ours = params[param]
        ours = list(ours) if isinstance(ours, tuple) and isinstance(default, list) else ours
        if ours != default or type(ours) is not type(default):
            out[name] = (ours, default)
    owner = getattr(component, "__name__", str(component))
    for (cls_name, param), expected in INTENDED.items():
        if cls_name == owner and param in out:
            assert out.pop(param) == expected, f"{owner}.{param}: the pinned difference {expected} moved"
    return out


def test_drift_is_detected():
    class Module:
        def __init__(self, embedding_dimension: int, rho_hidden_dim: int = 1024, dropout: float = 0.1) -> None: ...

    assert drift(Module, StudentConfig) == {"rho_hidden_dim": (1024, 512)}


def test_student_modules_restate_student_config_exactly():
    for module in (VocabSetEncoder, DeepSetsPooling):
        assert drift(module, StudentConfig) == {}, module.__name__
    restated = set(parameter_defaults(VocabSetEncoder)) | set(parameter_defaults(DeepSetsPooling))
    unpinned = {f.name for f in fields(StudentConfig)} - restated
    assert not unpinned, f"StudentConfig fields no module constructor takes (pin them, or say why): {unpinned}"
    assert set(StudentConfig().pooling_kwargs()) <= set(parameter_defaults(DeepSetsPooling))
    for (cls_name, param), (ours, config) in INTENDED.items():  # the meant differences are what they say
        cls = {"VocabSetEncoder": VocabSetEncoder, "DeepSetsPooling": DeepSetsPooling}[cls_name]
        assert (parameter_defaults(cls)[param], getattr(StudentConfig(), param)) == (ours, config)


def test_mlp_pooling_restates_finetune_config():
    assert drift(MLPMeanPooling, FinetuneConfig, renamed={"mlp_hidden_dims": "hidden_dims"}) == {}
    assert list(parameter_defaults(MLPMeanPooling)["hidden_dims"]) == FinetuneConfig().mlp_hidden_dims


def test_qa_model_and_reading_defaults_are_qa_configs():
    from st_bertapprox.qa.features import best_spans, prepare_features
    from st_bertapprox.qa.model import BertForQuestionAnsweringWithReasoning
    from st_bertapprox.qa.pipeline import DocumentQA
    from st_bertapprox.qa.reader import Reader

    model = parameter_defaults(BertForQuestionAnsweringWithReasoning)
    assert (model["reasoning_loss_weight"], model["reasoning_pooling"]) == (0.5, "question_mean")
    for component in (BertForQuestionAnsweringWithReasoning, prepare_features, best_spans, DocumentQA):
        assert drift(component, QAConfig) == {}, component.__name__
    # Reader's windows default to the saved reader's own, then QAConfig's (tests/test_qa.py reads them back)
    windows = ("max_length", "doc_stride", "max_query_length", "max_answer_length")
    assert all(parameter_defaults(Reader)[name] is None for name in windows)


def test_saved_modules_keep_their_recorded_values(tmp_path):
    """A model saved with the old DeepSetsPooling default (rho 1024) or the old QA head defaults loads as saved."""
    from st_bertapprox.qa.model import BertForQuestionAnsweringWithReasoning

    torch.manual_seed(0)
    old = DeepSetsPooling(16, phi_hidden_dim=8, rho_hidden_dim=1024).eval()
    torch.nn.init.normal_(old.rho[-1].weight)
    (tmp_path / "pooling").mkdir()
    old.save(str(tmp_path / "pooling"))
    assert json.loads((tmp_path / "pooling" / "deepsets_config.json").read_text())["rho_hidden_dim"] == 1024
    back = DeepSetsPooling.load(str(tmp_path / "pooling")).eval()
    assert back.rho_hidden_dim == 1024 and back.rho[1].out_features == 1024
    features = {"token_embeddings": torch.randn(2, 5, 16), "attention_mask": torch.ones(2, 5, dtype=torch.long)}
    assert torch.equal(back(dict(features))["sentence_embedding"], old(dict(features))["sentence_embedding"])

    reader = BertForQuestionAnsweringWithReasoning(tiny_bert_config(), reasoning_loss_weight=1.0,
                                                   reasoning_pooling="cls")  # fmt: skip
    reader.save_pretrained(tmp_path / "reader")
    again = BertForQuestionAnsweringWithReasoning.from_pretrained(tmp_path / "reader")
    assert (again.reasoning_loss_weight, again.reasoning_pooling) == (1.0, "cls")


def test_components_take_the_config_object():
    from st_bertapprox.distill.mining import build_vocab, mine_vocab
    from st_bertapprox.distill.tiny import build_tiny_student

    for func, config_cls in ((mine_vocab, VocabConfig), (build_vocab, VocabConfig), (build_tiny_student, TinyConfig)):
        params = inspect.signature(func).parameters
        restated = {f.name for f in fields(config_cls)} & set(params)
        assert not restated, f"{func.__name__} restates {config_cls.__name__} fields {restated}: take the config"
        assert "config" in params


# stdlib modules that read or write files, sockets or processes
IO_MODULES = {"io", "shutil", "pathlib", "tempfile", "json", "pickle", "glob", "socket", "urllib", "http",
              "subprocess", "sqlite3", "csv", "gzip", "zipfile", "tarfile", "fileinput", "mmap"}  # fmt: skip
OS_PATH_PURE = {"basename", "normpath", "join", "splitext", "dirname", "sep"}  # string functions: no file system


def test_config_source_imports_no_torch_and_does_no_io():
    tree = ast.parse(CONFIG_FILE.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "config.py imports nothing of the package (it is below every other layer)"
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), f"non-stdlib imports: {imported}"
    assert not imported & IO_MODULES, f"I/O modules imported: {imported & IO_MODULES}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("open", "exec", "eval", "__import__"), f"line {node.lineno}: {node.func.id}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            assert node.attr == "path", f"line {node.lineno}: os.{node.attr}"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "path":
            if isinstance(node.value.value, ast.Name) and node.value.value.id == "os":
                assert node.attr in OS_PATH_PURE, f"line {node.lineno}: os.path.{node.attr} touches the file system"


def test_config_file_runs_without_torch():
    script = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("isolated_config", {str(CONFIG_FILE)!r})
module = importlib.util.module_from_spec(spec)
sys.modules["isolated_config"] = module  # dataclasses look their module up
spec.loader.exec_module(module)
assert module.QAConfig().max_length == 384 and module.VocabConfig(merge_with="/nowhere").merge_with == "/nowhere"
heavy = sorted(m for m in ("torch", "numpy", "transformers", "sentence_transformers") if m in sys.modules)
assert not heavy and not any(m.startswith("st_bertapprox") for m in sys.modules), heavy
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("cls", [VocabConfig, StudentConfig, TinyConfig, QAConfig, FinetuneConfig])
def test_configs_build_with_their_defaults(cls):
    assert cls() == cls(**config_defaults(cls))
