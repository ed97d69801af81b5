"""Device-correct code: the student (unfolded, folded, numpy from a device model) and BertTransformer on every
available device give the CPU outputs. On a CPU-only machine only "cpu" runs (the same code path, moved with
``.to``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import tiny_bert_config
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
from test_student import TEXTS, tiny_student
from transformers import AutoTokenizer

from st_bertapprox import BertTransformer, fold_student
from st_bertapprox.inference.numpy_student import NumpyStudent

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ATOL = 1e-5  # fp32 everywhere (TF32 off below): only summation order differs between devices


@pytest.fixture(autouse=True)
def no_tf32():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("device", DEVICES)
def test_student_and_folded_student_on_device(device):
    student = tiny_student()
    ref = student.encode(TEXTS)
    moved = copy.deepcopy(student).to(device)
    assert moved.device.type == device
    np.testing.assert_allclose(moved.encode(TEXTS), ref, atol=ATOL)
    with torch.no_grad():  # the pooling's own forward on device tensors (torch.unique / scatter_reduce path)
        features = moved[0].preprocess(TEXTS)
        features = {k: v.to(device) for k, v in features.items()}
        out = moved[1](moved[0](features))["sentence_embedding"]
    assert out.device.type == device
    folded = fold_student(moved)  # folding runs on the model's device
    assert folded.device.type == device
    np.testing.assert_allclose(folded.encode(TEXTS), ref, atol=ATOL)
    np.testing.assert_allclose(NumpyStudent.from_model(folded).encode(TEXTS), ref, atol=ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_bert_transformer_on_device(minilm_path, device):
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    torch.manual_seed(0)
    bert = BertTransformer(config=tiny_bert_config(vocab_size=len(tokenizer)), tokenizer=tokenizer)
    model = SentenceTransformer(modules=[bert, Pooling(32, "mean"), Normalize()], device="cpu").eval()
    texts = ["A man is playing a guitar.", "", "a much longer sentence, so that the batch is padded " * 3]
    ref = model.encode(texts)
    moved = copy.deepcopy(model).to(device)
    np.testing.assert_allclose(moved.encode(texts), ref, atol=ATOL)
    pairs = [("a question", "an answer"), ("short", "a longer second text of the pair")]
    np.testing.assert_allclose(moved.encode(pairs), model.encode(pairs), atol=ATOL)
