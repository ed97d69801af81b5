"""Bad inputs, damaged files and hostile sizes (issue #11; unknown kwargs from #10): each case is either a clear error
(what is wrong, how to fix it) or a correct result. Test names carry the case number of the issue."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_bert_config
from safetensors import safe_open
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
from test_student import TEXTS, tiny_student
from transformers import AutoTokenizer

from st_bertapprox import BertTransformer, MLPMeanPooling, fold_student
from st_bertapprox.config import VocabConfig
from st_bertapprox.distill.mining import embed_vocab, mine_vocab, teacher_pieces
from st_bertapprox.inference.numpy_student import NumpyStudent
from st_bertapprox.modules import io as files
from st_bertapprox.modules.checks import check_model_folder
from st_bertapprox.modules.io import CHECKSUM_KEY, load_tensors, save_tensors
from st_bertapprox.modules.student import DeepSetsPooling, VocabSetEncoder
from st_bertapprox.modules.vocab import MAX_ENTRY_CHARS, NGramVocab


@pytest.fixture(scope="module")
def student() -> SentenceTransformer:
    return tiny_student()


@pytest.fixture(scope="module")
def folded(student) -> SentenceTransformer:
    return fold_student(student)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def tiny_bert(tokenizer, **kwargs) -> BertTransformer:
    torch.manual_seed(0)
    return BertTransformer(config=tiny_bert_config(vocab_size=len(tokenizer)), tokenizer=tokenizer, **kwargs)


def save(model: SentenceTransformer, path: Path) -> Path:
    model.save(str(path))
    return path


def st_load(path: Path) -> SentenceTransformer:
    return SentenceTransformer(str(path), trust_remote_code=True, device="cpu")


def rewrite_table(path: Path, table: torch.Tensor) -> None:
    """Replace an encoder's table by ``table``, as a consistent file (valid checksums, same vocab fingerprint)."""
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        fingerprint = f.metadata()["vocab_fingerprint"]
    save_tensors({"embeddings": table}, path / "model.safetensors", metadata={"vocab_fingerprint": fingerprint})


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- texts ------------------------------------------------------------------------------------------------------


def test_case01_none_in_student_encode_names_its_position(student):
    with pytest.raises(TypeError, match=r"expects strings, got NoneType at position \d.*Replace missing texts"):
        student.encode(["a text", None, "another"])
    with pytest.raises(TypeError, match=r"got int at position \d"):
        student.encode(["a text", 3])


@pytest.mark.parametrize(
    "texts, message",
    [
        (["ok", None], r"got NoneType at position 1"),
        (["ok", "fine", 7], r"got int at position 2"),
        (["ok", b"bytes"], r"got bytes at position 1.*decode"),
        (b"one bytes object", r"a single bytes object.*decode"),
        (None, r"expects a list of strings, got NoneType"),
    ],
)
def test_case02_numpy_student_refuses_non_strings(folded, texts, message):
    fast = NumpyStudent.from_model(folded)
    with pytest.raises(TypeError, match=message):
        fast.encode(texts)
    assert fast.encode(["ok", ""]).shape == (2, 16)


@pytest.mark.parametrize(
    "batch, error, message",
    [
        ([("a",)], ValueError, r"expects pairs \(text_a, text_b\), got a tuple of 1 text"),
        ([("a", "b", "c")], ValueError, r"got a tuple of 3 text"),
        (["a", ("b", "c")], TypeError, r"mixes strings and pairs"),
        ([("a", None)], TypeError, r"expects pairs of strings"),
        (["a", None], TypeError, r"NoneType at position"),
    ],
)
def test_case03_malformed_pairs_for_bert(tokenizer, batch, error, message):
    model = SentenceTransformer(modules=[tiny_bert(tokenizer), Pooling(32)], device="cpu")
    with pytest.raises(error, match=message):
        model.encode(batch)
    assert model.encode([("a", "b"), ("c", "d")]).shape == (2, 32)  # well-formed pairs still work


# --- files --------------------------------------------------------------------------------------------------------


def test_case04_flipped_bytes_in_the_table_are_refused(student, tmp_path):
    path = save(student, tmp_path / "model")
    table = path / "model.safetensors"
    data = bytearray(table.read_bytes())
    start = 8 + int.from_bytes(data[:8], "little")  # after the header: the tensor bytes
    for i in np.random.default_rng(0).choice(np.arange(start, len(data)), 64, replace=False):
        data[i] ^= 0xFF
    table.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model\.safetensors is corrupt: the bytes of tensor 'embeddings'.*Re-save"):
        st_load(path)


def test_case04_files_without_checksums_still_load_and_missing_files_are_not_corrupt(tmp_path):
    table = torch.randn(4, 3)
    save_file({"t": table}, str(tmp_path / "old.safetensors"))  # written before checksums, or by another tool
    assert torch.equal(load_tensors(tmp_path / "old.safetensors")["t"], table)
    save_tensors({"t": table}, tmp_path / "new.safetensors")
    with safe_open(str(tmp_path / "new.safetensors"), "pt") as f:
        assert json.loads(f.metadata()[CHECKSUM_KEY]).keys() == {"t"}
    with pytest.raises(FileNotFoundError):
        load_tensors(tmp_path / "missing.safetensors")
    (tmp_path / "a_dir.safetensors").mkdir()
    with pytest.raises(OSError) as info:
        load_tensors(tmp_path / "a_dir.safetensors")
    assert not isinstance(info.value, ValueError)
    if os.geteuid() != 0:  # root reads anything
        (tmp_path / "new.safetensors").chmod(0)
        with pytest.raises(PermissionError):
            load_tensors(tmp_path / "new.safetensors")


def test_case05_nan_row_in_the_folded_table_is_refused(folded, tmp_path):
    path = save(folded, tmp_path / "folded")
    table = folded[0].embeddings.weight.detach().clone()
    table[5] = float("nan")
    rewrite_table(path, table)  # valid checksums: only the finite check can catch it
    for load in (st_load, lambda p: NumpyStudent.from_pretrained(str(p))):
        with pytest.raises(ValueError, match=r"non-finite values \(NaN/inf\) in 1 rows \(first: \[5\]\).*Re-save"):
            load(path)
    legacy = tmp_path / "legacy.safetensors"  # a file without checksums gets the finite check too
    save_file({"embeddings": table}, str(legacy))
    with pytest.raises(ValueError, match="non-finite"):
        load_tensors(legacy)
    encoder = VocabSetEncoder(folded[0].vocab, table, folded_heads=4, storage_dtype="float32")
    with pytest.raises(ValueError, match="non-finite values"):  # NumpyStudent's own check, for models in memory
        NumpyStudent(encoder, folded[1])


@pytest.mark.parametrize("config_fingerprint", ["kept", "dropped", "other"])
def test_case06_edited_vocab_is_refused_by_either_fingerprint(student, tmp_path, monkeypatch, config_fingerprint):
    path = save(student, tmp_path / "model")
    vocab = json.loads((path / "vocab.json").read_text())
    vocab["ngrams"][0], vocab["ngrams"][1] = vocab["ngrams"][1], vocab["ngrams"][0]  # same size, two ids swapped
    (path / "vocab.json").write_text(json.dumps(vocab))
    config = json.loads((path / VocabSetEncoder.config_file_name).read_text())
    if config_fingerprint == "dropped":
        del config["vocab_fingerprint"]  # only the copy in the table's metadata is left
    elif config_fingerprint == "other":
        config["vocab_fingerprint"] = "0" * 64
    (path / VocabSetEncoder.config_file_name).write_text(json.dumps(config))

    def no_trie(*args, **kwargs):
        raise AssertionError("the trie was built before the fingerprint check")

    monkeypatch.setattr(NGramVocab, "__init__", no_trie)
    message = "record different vocabulary fingerprints" if config_fingerprint == "other" else "fingerprint mismatch"
    with pytest.raises(ValueError, match=message):
        st_load(path)


@pytest.mark.parametrize("kind, extra", [("folded", 1), ("folded", 4), ("unfolded", 4)])
def test_case07_table_of_the_wrong_width_is_refused_at_load(student, folded, tmp_path, kind, extra):
    model = folded if kind == "folded" else student
    path = save(model, tmp_path / kind)
    table = model[0].embeddings.weight.detach()
    rewrite_table(path, torch.cat([table, torch.randn(len(table), extra)], 1))
    # 1 extra column: no C + H split with C divisible by H (the encoder refuses); 4: a valid-looking folded table
    # whose width is not the pooling's C + H (the pooling refuses, reading the encoder's header)
    message = "table and the config come from different saves" if extra == 1 else "rows have width 2[04]"
    with pytest.raises(ValueError, match=message):
        st_load(path)


def test_case08_missing_pooling_config_names_the_file(student, tmp_path):
    path = save(student, tmp_path / "model")
    (path / "1_DeepSetsPooling" / "deepsets_config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"DeepSetsPooling: deepsets_config.json is missing from .*save"):
        st_load(path)


def test_case09_missing_modules_json(folded, tmp_path):
    path = save(folded, tmp_path / "model")
    (path / "modules.json").unlink()
    # our loaders: a clear error naming modules.json
    for load in (check_model_folder, NumpyStudent.from_pretrained, VocabSetEncoder.load):
        with pytest.raises(FileNotFoundError, match=r"no modules\.json.*interrupted|Save the model"):
            load(str(path))
    # sentence-transformers' own loader never reaches our code without modules.json: its message stays its own
    with pytest.raises(ValueError, match="model_type"):
        st_load(path)
    with pytest.raises(FileNotFoundError, match=r"has no modules\.json: it is not a saved SentenceTransformer"):
        check_model_folder(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("value", [0, -3, 2.5, True])
def test_case10_non_positive_max_seq_length_is_refused(student, tokenizer, tmp_path, value):
    message = f"max_seq_length must be a positive integer, got {value!r}"
    vocab, table = student[0].vocab, student[0].embeddings.weight
    with pytest.raises(ValueError, match=re.escape(message)):
        VocabSetEncoder(vocab, table, max_seq_length=value)
    with pytest.raises(ValueError, match=re.escape(message)):
        tiny_bert(tokenizer, max_seq_length=value)
    path = save(student, tmp_path / "student")
    config = json.loads((path / VocabSetEncoder.config_file_name).read_text())
    (path / VocabSetEncoder.config_file_name).write_text(json.dumps({**config, "max_seq_length": value}))
    with pytest.raises(ValueError, match=re.escape(message)):
        st_load(path)
    bert_path = tmp_path / "bert"
    tiny_bert(tokenizer).save(str(bert_path))
    (bert_path / BertTransformer.config_file_name).write_text(json.dumps({"max_seq_length": value}))
    with pytest.raises(ValueError, match=re.escape(message)):
        BertTransformer.load(str(bert_path))


# --- interrupted writes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["", "1_DeepSetsPooling"])
def test_case11_leftover_of_a_killed_save_is_detected_then_cleaned(student, tmp_path, where):
    path = save(student, tmp_path / "model")
    leftover = path / where / f".model.safetensors.{files._HOST}.{dead_pid()}.k1ll3d_x.tmp"
    leftover.write_bytes(b"half a table")
    with pytest.raises(ValueError, match=r"was interrupted \(leftover temporary files.*Save the model into it again"):
        st_load(path)
    with pytest.raises(ValueError, match="was interrupted"):
        check_model_folder(str(path))
    student.save(str(path))  # the next save removes the leftovers
    assert not leftover.exists()
    assert np.array_equal(st_load(path).encode(TEXTS), student.encode(TEXTS))


# In a fresh interpreter: fork once per step of ``model.save`` (every file opened for writing, before and after the
# open, and every rename), and SIGKILL the child just before that step; the parent prints the number of steps.
KILLED_SAVES = r"""
import builtins, json, os, signal, sys
import torch
torch.set_num_threads(1)  # no thread pool is running when we fork
sys.path.insert(0, sys.argv[2])
from test_student import tiny_student
model, root, resave = tiny_student(), sys.argv[1], sys.argv[3] == "resave"
real_replace, real_open = os.replace, builtins.open
step = 0
while True:
    folder = os.path.join(root, f"kill{step:03d}")
    if resave:
        model.save(folder)  # a complete save of the same model, then one killed half-way over it
    pid = os.fork()
    if pid == 0:
        done = [0]
        def tick():
            if done[0] == step:
                os.kill(os.getpid(), signal.SIGKILL)
            done[0] += 1
        def replace(*args, **kwargs):
            tick()
            return real_replace(*args, **kwargs)
        def open_(file, mode="r", *args, **kwargs):
            writing = any(c in mode for c in "wax+")
            if writing:
                tick()
            f = real_open(file, mode, *args, **kwargs)
            if writing:
                tick()
            return f
        os.replace, builtins.open = replace, open_
        model.save(folder)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status):  # the save finished before this step: every step has been killed once
        break
    step += 1
print(json.dumps({"steps": step}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("mode", ["fresh", "resave"])
def test_case11_save_killed_at_every_step_never_loads_a_broken_model(student, tmp_path, mode):
    tests_dir = str(Path(__file__).parent)
    run = subprocess.run(
        [sys.executable, "-c", KILLED_SAVES, str(tmp_path), tests_dir, mode],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    steps = json.loads(run.stdout.strip().splitlines()[-1])["steps"]
    assert steps > 20  # every file of the save (configs, table, vocab, code copies, modules.json, README)
    ref = student.encode(TEXTS)
    outcomes = []
    for step in range(steps):
        path = tmp_path / f"kill{step:03d}"
        try:
            check_model_folder(str(path))
            complete = True
        except (FileNotFoundError, ValueError) as e:
            assert re.search(r"interrupted|modules\.json|corrupt", str(e)), e
            complete = False
        try:
            loaded = st_load(path)
        except Exception:  # noqa: BLE001 - any refusal is fine; sentence-transformers' own messages included
            assert not complete, f"killed at step {step}: check_model_folder passed, but the folder does not load"
            outcomes.append("refused")
        else:
            assert np.array_equal(loaded.encode(TEXTS), ref), f"killed at step {step}: a broken model loaded"
            outcomes.append("loaded")
        student.save(str(path))  # saving again repairs the folder and removes the leftovers
        assert not list(path.rglob("*.tmp")) and not list(path.rglob("*.old"))
        assert np.array_equal(st_load(path).encode(TEXTS), ref)
    assert "refused" in outcomes and outcomes[-1] == "loaded", outcomes
    if mode == "resave":  # modules.json of the earlier save is there: our modules' loaders see the leftovers
        assert outcomes.count("refused") > 20, outcomes


@pytest.mark.parametrize("encoder_kind", ["folded", "unfolded"])
def test_case12_folded_and_unfolded_modules_mixed_are_refused_at_load(student, folded, tmp_path, encoder_kind):
    folded_path, unfolded_path = save(folded, tmp_path / "folded"), save(student, tmp_path / "unfolded")
    target, donor = (folded_path, unfolded_path) if encoder_kind == "folded" else (unfolded_path, folded_path)
    shutil.rmtree(target / "1_DeepSetsPooling")
    shutil.copytree(donor / "1_DeepSetsPooling", target / "1_DeepSetsPooling")
    with pytest.raises(ValueError, match=r"encoder and pooling come from different models.*fold_student"):
        st_load(target)
    # composed in memory (no folder to read): the first forward refuses with the same message
    encoder, pooling = (folded[0], student[1]) if encoder_kind == "folded" else (student[0], folded[1])
    mixed = SentenceTransformer(modules=[encoder, pooling], device="cpu")
    with pytest.raises(ValueError, match="encoder and pooling come from different models"):
        mixed.encode(["new york"])


def test_case13_non_finite_teacher_embeddings_are_refused_by_build_vocab(monkeypatch):
    vocab = NGramVocab(["new", "york", "city"], pieces=["c", "##a"])

    def broken_cache(teacher, texts, **kwargs):
        emb = np.ones((len(texts), 8), dtype=np.float32)
        emb[2] = np.nan  # a damaged cache chunk
        return emb

    monkeypatch.setattr("st_bertapprox.distill.mining.encode_cached", broken_cache)
    with pytest.raises(ValueError, match=r"teacher embeddings of 1 vocabulary entries are not finite.*'york'.*cache"):
        embed_vocab(vocab, teacher=None, show_progress_bar=False)


# --- security / cost ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_vocab(stsb_train, _packaged_minilm) -> NGramVocab:
    """A vocabulary mined from 400 real sentences, with the teacher's word pieces (as build-vocab makes it)."""
    sentences = list(stsb_train["sentence1"])[:400]
    config = VocabConfig(min_count=2)
    return mine_vocab(sentences, config, pieces=teacher_pieces(_packaged_minilm), show_progress_bar=False)


HOSTILE_TEXTS = {
    "1 MB without spaces": "abcdefghij" * 100_000,
    "1 MB of CJK": "中文字符" * 250_000,
    "1 MB of punctuation": "!?" * 500_000,
    "10,000-character word": "qwertyuiop" * 1_000,
}


@pytest.mark.parametrize("name", HOSTILE_TEXTS)
def test_case21_tokenizer_cost_is_linear_and_bounded_by_max_seq_length(real_vocab, name):
    text = HOSTILE_TEXTS[name]
    start = time.perf_counter()
    ids = real_vocab.tokenize(text, max_entries=256)
    # typically 0.01-0.5 s; the old slicing split took ~2-5 s per MB in unique mode, a quadratic one minutes
    assert time.perf_counter() - start < 5.0
    assert len(ids) == 256
    if len(text) <= 10_000:
        assert ids == real_vocab.tokenize(text)[:256]


def test_case21_student_and_numpy_student_tokenize_at_most_max_seq_length(folded, monkeypatch):
    encoder = folded[0]
    fast = NumpyStudent.from_model(folded)
    seen = []
    real = encoder.vocab.tokenize

    def spy(text, max_entries=None):
        seen.append(max_entries)
        return real(text, max_entries=max_entries)

    monkeypatch.setattr(encoder.vocab, "tokenize", spy)  # fast.vocab is the same object
    folded.encode(["new york city", "big"])
    fast.encode(["new york city", "big"])
    assert seen and all(T == encoder.max_seq_length for T in seen), seen


def test_case22_huge_ngram_is_refused_before_the_trie(student, tmp_path, monkeypatch):
    path = save(student, tmp_path / "model")
    vocab = json.loads((path / "vocab.json").read_text())
    vocab["ngrams"].append(" ".join(["a"] * 5_000_000))  # one 10 MB n-gram of 5 M words
    (path / "vocab.json").write_text(json.dumps(vocab))

    def no_trie(*args, **kwargs):
        raise AssertionError("the trie was built before the size check")

    monkeypatch.setattr(NGramVocab, "__init__", no_trie)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=rf"n-gram 'a a a.* of 9999999 characters: .* at most {MAX_ENTRY_CHARS}"):
        NGramVocab.load(str(path / "vocab.json"))
    with pytest.raises(ValueError, match="vocab.json is corrupt: Invalid n-gram"):
        st_load(path)
    assert time.perf_counter() - start < 10.0  # two loads of a 10 MB file


NESTED = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "file, content, message",
    [
        ("vocab.json", NESTED, "nested too deeply to be a vocabulary"),
        ("vocab.json", None, "'counts' must be an object mapping entries to integer counts"),
        (VocabSetEncoder.config_file_name, NESTED, "nested too deeply"),
        ("1_DeepSetsPooling/deepsets_config.json", NESTED, "nested too deeply"),
        ("1_DeepSetsPooling/deepsets_config.json", "[1, 2]", "not an object of settings"),
        ("modules.json", NESTED, "nested too deeply"),
    ],
)
def test_case23_deeply_nested_or_mistyped_json_is_a_value_error(student, tmp_path, file, content, message):
    path = save(student, tmp_path / "model")
    if content is None:  # counts of the wrong type
        vocab = json.loads((path / file).read_text())
        (path / file).write_text(json.dumps({**vocab, "counts": {"new": "many"}}))
    else:
        (path / file).write_text(content)
    load = check_model_folder if file == "modules.json" else st_load
    with pytest.raises(ValueError, match=message):
        load(path if load is st_load else str(path))


def test_case23_nested_bert_config_is_a_value_error(tokenizer, tmp_path):
    tiny_bert(tokenizer).save(str(tmp_path))
    (tmp_path / "config.json").write_text(NESTED)
    with pytest.raises(ValueError, match="config.json is nested too deeply"):
        BertTransformer.load(str(tmp_path))


# --- unknown keyword arguments (issue #10) --------------------------------------------------------------------------


def test_unknown_constructor_kwargs_warn_but_loading_through_st_does_not(student, folded, tokenizer, tmp_path, caplog):
    vocab, table = student[0].vocab, student[0].embeddings.weight
    constructors = {
        "VocabSetEncoder": lambda: VocabSetEncoder(vocab, table, max_seq_lenght=8),
        "DeepSetsPooling": lambda: DeepSetsPooling(16, max_seq_lenght=8),
        "MLPMeanPooling": lambda: MLPMeanPooling(16, max_seq_lenght=8),
        "BertTransformer": lambda: tiny_bert(tokenizer, max_seq_lenght=8),
    }
    for name, build in constructors.items():
        caplog.clear()
        build()
        assert any(name in r.getMessage() and "max_seq_lenght" in r.getMessage() for r in caplog.records), name
    bert = tiny_bert(tokenizer)
    models = [student, folded, SentenceTransformer(modules=[bert, MLPMeanPooling(32), Normalize()], device="cpu")]
    caplog.clear()
    for i, model in enumerate(models):
        st_load(save(model, tmp_path / str(i)))
    NumpyStudent.from_pretrained(str(tmp_path / "1"))
    assert not [r for r in caplog.records if r.name.startswith("st_bertapprox") and r.levelname == "WARNING"]
