"""Exports for serving: ONNX (fp32), ONNX with int8 weights, TorchScript; each folder loads with :func:`load_export`.

One graph per model, ``(input_ids, attention_mask[, token_type_ids]) -> sentence_embedding``: every module of the
SentenceTransformer after tokenization (the encoder, pooling, Dense/MLP layers, Normalize) runs inside it, with
dynamic batch and length axes. Tokenization stays outside: the Hugging Face tokenizer of a BERT (teacher, scratch
BERT, tiny BERT), the n-gram vocabulary of a student (``vocab.json``, ``NGramVocab.tokenize``); the graph of a student
takes padded entry ids and their mask. Works for every model kind we ship: the teacher (built-in ``Transformer`` +
``Pooling`` + ``Normalize``), ``BertTransformer`` pipelines with ``Pooling``/``MLPMeanPooling``/``Dense``, and
students folded or not, contextual ones included.

Why not sentence-transformers' own ONNX path (``SentenceTransformer(path, backend="onnx")``,
``export_dynamic_quantized_onnx_model``): it needs ``optimum-onnx``, whose only release (0.1.0) requires
``transformers<4.58`` (pip would downgrade transformers 5 and huggingface_hub 1), and with ``--no-deps`` it fails to
import against transformers 5 (``get_parameter_dtype``); it also exports the transformer alone (pooling in Python)
and cannot export a student. Both graph formats come from one trace (``torch.onnx.export(dynamo=False)``,
``torch.jit.trace``): ``torch.export`` (``dynamo=True``) refuses the scratch BERT, whose "no padding, no mask" fast
path is a data-dependent branch. A trace records the branches its example takes, so the example batch is padded
(asserted: the masked path is right for every batch) and :func:`export` checks the result on padded and unpadded
batches, an empty text and a truncated one (:data:`PARITY_TEXTS`) before anything is written: fp32 cosine below
:data:`MIN_PARITY` for any sentence is an error. int8: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights of
every MatMul and embedding Gather with per-channel scales, activations quantized per batch at run time); its cosines
to the source are recorded, next to those of the fp32 graph it was made from.

    export("runs/student/student-folded", "runs/export/student-int8", "onnx-int8")
    model = load_export("runs/export/student-int8")
    embeddings = model.encode(["A man is playing a guitar."], batch_size=32)  # (1, 384) float32, unit norm
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from st_bertapprox.inference.numpy_student import padded_entry_ids
from st_bertapprox.modules.io import atomic_dir, load_json, save_json
from st_bertapprox.modules.vocab import NGramVocab, check_texts

logger = logging.getLogger(__name__)


FORMATS = ("onnx", "onnx-int8", "torchscript")


EXPORT_FILE = "export.json"


EXPORT_VERSION = 1


GRAPH_FILES = {"onnx": "model.onnx", "onnx-int8": "model.onnx", "torchscript": "model.pt"}


OPSET = 17  # the TorchScript-based exporter's tested range ends at 20; 17 has LayerNormalization


MIN_PARITY = 0.999  # least cosine, per sentence, of an fp32 export to its source model


INPUTS = ("input_ids", "attention_mask", "token_type_ids")


# lengths differ (the trace example must be padded), one text is empty, the last exceeds every max_seq_length we ship
PARITY_TEXTS = [
    "A man is playing a guitar.",
    "A woman is slicing an onion in the kitchen while the radio plays.",
    "Stocks fell sharply on Monday after the central bank raised interest rates again.",
    "ok",
    "",
    "The new movie is awesome, my friends and I loved it!!",
    "How do I reset my password?",
    " ".join(["The committee discussed the annual budget, the hiring plan and the new office in detail."] * 30),
]


# also encoded one at a time: an unpadded batch, an empty text (a student's all-padding row), the long one
ALONE = (0, 4, 7)


def export(model_or_path: Any, output_dir: str, format: str, trust_remote_code: bool = False) -> dict:
    """Export a SentenceTransformer (or a saved folder / Hub id) for serving; returns the written ``export.json``.

    The folder is written atomically (a temporary folder renamed into place): it appears complete, with its
    ``export.json`` (source fingerprint, format, dims, opset, versions, parity cosines), or not at all.

    Args:
        model_or_path: A SentenceTransformer, or a model folder / Hub id (loaded by
            ``st_bertapprox.persistence.loading``).
        output_dir: The export folder; replaced if it holds an earlier export, refused if it holds anything else.
        format: ``"onnx"``, ``"onnx-int8"`` or ``"torchscript"``.
        trust_remote_code: Let a model folder run code it names (only for a path; see ``load_model``).

    Raises:
        ValueError: unknown format; a model we cannot export (not text, a default prompt, ``truncate_dim``); an
            output folder that is not an export; fp32 parity below :data:`MIN_PARITY`.
        FileNotFoundError: ``model_or_path`` is not a saved model.
        ImportError: onnx / onnxruntime missing (the ``deploy`` extra).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    for package in ("onnx", "onnxruntime") if format != "torchscript" else ():
        _require(package)
    _check_output_dir(output_dir)
    source = None
    if isinstance(model_or_path, (str, os.PathLike)):
        from st_bertapprox.persistence.loading import load_model

        source = os.fspath(model_or_path)
        source = os.path.abspath(source) if os.path.isdir(source) else source
        model = load_model(source, trust_remote_code=trust_remote_code, device="cpu")
    else:
        model = model_or_path
    pipeline = SentencePipeline(model)
    example = pipeline.example_inputs()
    info = _describe(model, pipeline, example, format, source)
    with atomic_dir(output_dir) as tmp, tempfile.TemporaryDirectory() as scratch, _eval_on_cpu(model):
        pipeline.save_tokenizer(tmp)
        fp32 = os.path.join(scratch if format == "onnx-int8" else tmp, GRAPH_FILES[format])
        _trace(pipeline, example, fp32, format)
        reference = _parity_encodings(model.encode)  # the source's, computed once
        info["parity"] = parity = _parity(reference, ExportedModel(tmp, info, threads=1, graph=fp32))
        if parity["min"] < MIN_PARITY:
            worst = PARITY_TEXTS[int(np.argmin(parity["cosines"]))][:60]
            raise ValueError(
                f"the {format} graph does not reproduce this model: cosine {parity['min']:.6f} < {MIN_PARITY} on "
                f"{worst!r}; nothing was written."
            )
        if format == "onnx-int8":
            info["quantization"] = _quantize(fp32, os.path.join(tmp, GRAPH_FILES[format]))
            info["parity_fp32"], info["parity"] = parity, _parity(reference, ExportedModel(tmp, info, threads=1))
        info["graph_sha256"] = _sha256(os.path.join(tmp, GRAPH_FILES[format]))
        save_json(info, os.path.join(tmp, EXPORT_FILE))  # last: a folder with export.json is complete
        _readable(tmp)
    return info


def load_export(path: str, threads: int | None = None) -> ExportedModel:
    """Load an export folder written by :func:`export`: a drop-in for ``SentenceTransformer.encode``.

    Args:
        path: The export folder.
        threads: Intra-op threads of onnxruntime (default: its own, all cores); TorchScript uses torch's setting.

    Raises:
        FileNotFoundError: no ``export.json`` (not an export folder) or its graph file is missing.
        ValueError: a corrupt ``export.json`` or graph (checksum mismatch, unreadable).
        ImportError: onnxruntime missing (the ``deploy`` extra).
    """
    meta_path = os.path.join(path, EXPORT_FILE)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(
            f"{path!r} has no {EXPORT_FILE}: not an export folder. Create one with `st-bertapprox export MODEL "
            "--format onnx --output DIR` (an interrupted export leaves no folder at all)."
        )
    info = load_json(meta_path)
    keys = ("format", "kind", "fingerprint", "dim", "max_seq_length", "inputs", "graph", "graph_sha256")
    missing = [k for k in keys if k not in info] if isinstance(info, dict) else list(keys)
    if missing or info.get("format") not in FORMATS:
        raise ValueError(
            f"{meta_path} is not an export description (missing {missing or 'a known format'}); the file is "
            "corrupt: export the model again."
        )
    graph = os.path.join(path, info["graph"])
    if not os.path.isfile(graph):
        raise FileNotFoundError(f"{path!r} lacks its graph file {info['graph']}: export the model again.")
    if _sha256(graph) != info["graph_sha256"]:
        raise ValueError(f"{graph} does not match the checksum in {EXPORT_FILE}: the file is corrupt; export again.")
    return ExportedModel(path, info, threads)


class ExportedModel:
    """An exported model: tokenizer + graph. ``encode`` mirrors ``SentenceTransformer.encode`` (numpy output).

    Attributes:
        fingerprint: The source model's ``model_fingerprint`` at export time.
        format: ``"onnx"``, ``"onnx-int8"`` or ``"torchscript"``.
        dim: Width of the embeddings.
        info: The whole ``export.json``.
    """

    def __init__(self, path: str, info: dict, threads: int | None = None, graph: str | None = None) -> None:
        self.path, self.info = path, info
        self.fingerprint, self.format, self.dim = info["fingerprint"], info["format"], info["dim"]
        self.max_seq_length, self.inputs = info["max_seq_length"], info["inputs"]
        graph = graph or os.path.join(path, info["graph"])
        try:
            if self.format == "torchscript":
                self._module = torch.jit.load(graph, map_location="cpu").eval()
            else:
                ort = _require("onnxruntime")
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads or 0
                self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # torch's RuntimeError; onnxruntime's InvalidProtobuf, Fail, ... (plain Exceptions)
            raise ValueError(f"{graph} is not a loadable {self.format} graph ({e}); export the model again.") from e
        if info["kind"] == "student":
            self.vocab = NGramVocab.load(os.path.join(path, "vocab.json"), info.get("vocab_fingerprint"))
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(path)

    def encode(
        self, sentences: str | list[str], batch_size: int = 32, show_progress_bar: bool = False, **ignored: Any
    ) -> np.ndarray:
        """``(N, dim)`` float32 embeddings of ``sentences`` (``(dim,)`` for one string), batched by length."""
        single = isinstance(sentences, str)
        texts = [sentences] if single else check_texts(sentences, "ExportedModel.encode")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # like ST: little padding per batch
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc="Batches", disable=not show_progress_bar):
            rows = order[start : start + batch_size]
            out[rows] = self._run(self._tokenize([texts[i] for i in rows]))
        return out[0] if single else out

    def get_embedding_dimension(self) -> int:
        """``dim``, under SentenceTransformer's name."""
        return self.dim

    def _tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self.info["kind"] == "student":
            ids = padded_entry_ids(self.vocab, texts, self.max_seq_length)
            return {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)}
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length, return_tensors="np")
        return {k: enc[k].astype(np.int64) for k in self.inputs}

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self.format == "torchscript":
            with torch.inference_mode():
                return self._module(*(torch.from_numpy(feed[k]) for k in self.inputs)).numpy()
        return self._session.run(None, feed)[0]


def check_parity(model: Any, exported: ExportedModel, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Cosine of the exported model's embedding to the source model's, per text (1.0 where both are zero)."""
    return _cosines(
        model.encode(texts, batch_size=batch_size, show_progress_bar=False), exported.encode(texts, batch_size)
    )


def _cosines(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    ref, out = np.asarray(ref, dtype=np.float64), np.asarray(out, dtype=np.float64)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    both_zero = ~ref.any(1) & ~out.any(1)
    return np.where(both_zero, 1.0, (ref * out).sum(1) / np.maximum(norms, 1e-30))


class SentencePipeline(nn.Module):
    """A SentenceTransformer's modules as one function of tensors: ``(input_ids, attention_mask[, token_type_ids])
    -> sentence_embedding``, what the exported graph computes.

    Raises:
        ValueError: a model we cannot export: not a text encoder with an HF tokenizer or a VocabSetEncoder first, a
            default prompt or ``truncate_dim`` (applied outside the modules), or no ``sentence_embedding`` output.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.stages = nn.ModuleList(model)
        first = model[0]
        if getattr(model, "default_prompt_name", None) or getattr(model, "truncate_dim", None):
            raise ValueError(
                "this model has a default prompt or a truncate_dim, which SentenceTransformer.encode applies outside "
                "its modules; export the model without them."
            )
        if type(first).__name__ == "VocabSetEncoder":
            self.kind = "student"
        elif hasattr(getattr(first, "tokenizer", None), "save_pretrained"):
            self.kind = "transformer"
        else:
            raise ValueError(
                f"cannot export a model whose first module is {type(first).__name__}: supported are BERT-style "
                "encoders with a Hugging Face tokenizer (Transformer, BertTransformer) and VocabSetEncoder students."
            )
        self.max_seq_length = int(first.max_seq_length)
        self.dim = int(model.get_embedding_dimension())

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """The ``(B, C)`` sentence embeddings of a tokenized batch; raises ``ValueError`` if no module writes them."""
        features = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            features["token_type_ids"] = token_type_ids
        features = self.stages[0](features)
        # later modules never read the ids; without them DeepSetsPooling runs phi on every entry instead of its
        # torch.unique de-duplication (a training-time saving whose shapes depend on the data)
        features = {k: v for k, v in features.items() if k not in ("input_ids", "token_type_ids")}
        for stage in self.stages[1:]:
            features = stage(features)
        if "sentence_embedding" not in features:
            raise ValueError(f"the modules {[type(m).__name__ for m in self.stages]} write no sentence_embedding.")
        return features["sentence_embedding"]

    def example_inputs(self) -> dict[str, Tensor]:
        """A padded example batch (a trace keeps the branches its example takes: masked attention, here)."""
        features = self.stages[0].preprocess(PARITY_TEXTS[:4])
        example = {k: features[k].cpu() for k in INPUTS if isinstance(features.get(k), Tensor)}
        if example["attention_mask"].all():
            raise ValueError("the example batch for tracing is not padded: its mask path would not be recorded.")
        return example

    def save_tokenizer(self, folder: str) -> None:
        """Write the first module's tokenizer into ``folder``: a student's ``vocab.json``, else the HF tokenizer."""
        if self.kind == "student":
            self.stages[0].vocab.save(os.path.join(folder, "vocab.json"))
        else:
            self.stages[0].tokenizer.save_pretrained(folder)


@contextmanager
def _eval_on_cpu(model: Any) -> Iterator[None]:
    """The model in eval mode on the CPU while it is traced and checked, then as it was."""
    training, device = model.training, model.device
    model.eval().to("cpu")
    try:
        yield
    finally:
        model.train(training).to(device)


def _trace(pipeline: SentencePipeline, example: dict[str, Tensor], path: str, format: str) -> None:
    """Write the traced pipeline to ``path``: a TorchScript module, or an ONNX graph with dynamic batch and length."""
    axes = {name: {0: "batch", 1: "length"} for name in example} | {"sentence_embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer warns at every shape or mask check it records as a constant (and at transformers' mask
        # indexing); the parity check is what tells whether the trace generalises
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        for message in ("legacy TorchScript-based ONNX export", "feature will be removed", "aten::index operator"):
            warnings.filterwarnings("ignore", message=f".*{message}.*")
        if format == "torchscript":
            torch.jit.trace(pipeline, tuple(example.values()), check_trace=False).save(path)
            return
        torch.onnx.export(
            pipeline,
            tuple(example.values()),
            path,
            input_names=list(example),
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _describe(
    model: Any, pipeline: SentencePipeline, example: dict[str, Tensor], format: str, source: str | None
) -> dict[str, Any]:
    """``export.json`` before the graph exists: what was exported, from what, with which tools."""
    from st_bertapprox.fingerprint import model_fingerprint

    info: dict[str, Any] = {
        "export_version": EXPORT_VERSION,
        "format": format,
        "kind": pipeline.kind,
        "fingerprint": model_fingerprint(model),
        "source": source,
        "modules": [type(m).__name__ for m in model],
        "dim": pipeline.dim,
        "max_seq_length": pipeline.max_seq_length,
        "inputs": list(example),
        "output": "sentence_embedding",
        "graph": GRAPH_FILES[format],
        "opset": OPSET if format != "torchscript" else None,
        "exporter": "torch.jit.trace" if format == "torchscript" else "torch.onnx.export (TorchScript-based)",
        "versions": _versions(),
    }
    if pipeline.kind == "student":
        info["vocab_fingerprint"] = model[0].vocab.fingerprint()
    return info


def _quantize(fp32: str, int8: str) -> dict:
    """int8 weights (per output channel) for every MatMul and Gather; activations quantized at run time.

    Per-tensor scales (onnxruntime's default) cost MiniLM ~0.03 mean cosine (outlier channels); per-channel ones
    ~0.006. onnxruntime's recommended pre-processing is skipped: its symbolic shape inference fails on these graphs.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logger("pre-processing before quantization"):
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
    return {"method": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QInt8", "per_channel": True}


def _parity_encodings(encode: Any) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of :data:`PARITY_TEXTS` but the long last one in one padded batch (with it, every row would be
    padded to ``max_seq_length``: slow for a BERT), and of the texts :data:`ALONE` one at a time (no padding)."""
    batch = encode(PARITY_TEXTS[:-1], batch_size=len(PARITY_TEXTS), show_progress_bar=False)
    alone = [encode([PARITY_TEXTS[i]], batch_size=1, show_progress_bar=False)[0] for i in ALONE]
    return np.asarray(batch), np.stack(alone)


def _parity(reference: tuple[np.ndarray, np.ndarray], exported: ExportedModel) -> dict:
    """Per text of :data:`PARITY_TEXTS`, the worst cosine of the exported model's encodings to the source's."""
    batch, alone = _parity_encodings(exported.encode)
    cos = np.ones(len(PARITY_TEXTS))
    cos[:-1] = _cosines(reference[0], batch)
    cos[list(ALONE)] = np.minimum(cos[list(ALONE)], _cosines(reference[1], alone))
    return {"texts": len(cos), "min": float(cos.min()), "mean": float(cos.mean()), "cosines": cos.round(6).tolist()}


@contextmanager
def _quiet_root_logger(message: str) -> Iterator[None]:
    """Drop records containing ``message`` from the root logger (onnxruntime.quantization logs through it)."""

    def keep(record: logging.LogRecord) -> bool:
        return message not in record.getMessage()

    logging.getLogger().addFilter(keep)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(keep)


def _check_output_dir(path: str) -> None:
    if os.path.isfile(path) or (
        os.path.isdir(path) and os.listdir(path) and not os.path.isfile(os.path.join(path, EXPORT_FILE))
    ):
        raise ValueError(
            f"{path!r} exists and is not an export folder (no {EXPORT_FILE}); an export replaces its output folder, "
            "so give a new or empty one."
        )


def _readable(folder: str) -> None:
    """rwxr-xr-x / rw-r--r-- instead of the private modes of temporary files: a server may run as another user."""
    os.chmod(folder, 0o755)
    for name in os.listdir(folder):
        os.chmod(os.path.join(folder, name), 0o644)


def _require(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ImportError(f"{name} is needed for ONNX exports: pip install 'st-bertapprox[deploy]'") from e


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _versions() -> dict[str, str | None]:
    out = {}
    for name in ("st-bertapprox", "torch", "onnx", "onnxruntime", "transformers", "sentence-transformers"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out
