"""Dense retrieval for users: embed a document collection once, save a Faiss index, search it.

    index = SearchIndex.build(model, texts, ids)                      # exact inner product on unit vectors
    index = SearchIndex.build(teacher, texts, ids, query_model=student, config=IndexConfig(kind="hnsw"))
    index.save("runs/index")
    hits = SearchIndex.load("runs/index", model=student).search(["what causes rain?"], k=10)[0]  # [Hit(id, score,..)]

Kinds (:class:`st_bertapprox.config.IndexConfig`): ``flat`` (exact), ``hnsw`` (graph, approximate, in memory),
``ivfpq`` (inverted lists of product-quantised codes, ``dim / pq_m`` times smaller: the route to collections that do
not fit in memory as float32) and ``binary`` (sentence-transformers' ``quantize_embeddings`` to 1 bit per dimension,
exact Hamming search, then float rescoring by ``semantic_search_faiss``). Every search goes through
``sentence_transformers.util.semantic_search_faiss``.

The collection is encoded and added in chunks (``chunk_size`` texts), so memory for vectors stays bounded by a chunk
(IVF-PQ: by its training sample); ``encode_kwargs`` go to ``model.encode`` as they are, e.g. ``pool=`` from
``model.start_multi_process_pool()`` to encode with several processes or GPUs.

A saved index is a folder: ``index.faiss`` (Faiss's own format; flat and HNSW indexes load memory-mapped),
``docs.jsonl`` (id and text of every row) and ``index.json`` (kind, parameters, dimension, count, and for the
document model and the query model: their reference, a weight fingerprint and their embeddings of a few probe
sentences). Searching with another model than the recorded query model, or another dimension, is an error: the model
is accepted if its fingerprint matches, or if its probe embeddings agree (the same model in another runtime: ONNX,
NumpyStudent, a remote-code load).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from st_bertapprox.config import IndexConfig
from st_bertapprox.data.records import _json_line
from st_bertapprox.modules.io import atomic_dir, save_json

logger = logging.getLogger(__name__)


FORMAT_VERSION = 1


PROBES = [  # the probe sentences whose embeddings identify a model (short, varied, no empty text)
    "A man is playing a guitar on stage.",
    "The stock market fell sharply after the announcement.",
    "Photosynthesis converts light energy into chemical energy.",
    "How do I reset my bank card PIN?",
    "The team won the championship in overtime.",
    "Il pleut beaucoup en novembre.",
    "quantum error correction threshold",
    "She adopted a small grey cat from the shelter.",
]


_MISSING = object()


PROBE_MEAN_COSINE, PROBE_MIN_COSINE = 0.98, 0.95  # ONNX fp32 ~1.0, int8 ~0.99; teacher vs student ~0.8


@dataclass
class Hit:
    """One search result: the document's id, its score (cosine for unit vectors) and its text."""

    id: str
    score: float
    text: str | None


def describe_model(model: Any, reference: str | None = None) -> dict[str, Any]:
    """What an index records of a model: its reference, a weight fingerprint (or None), its probe embeddings."""
    probes = encode_unit(model, PROBES, batch_size=len(PROBES))
    return {
        "reference": reference or type(model).__name__,
        "fingerprint": fingerprint_of(model),
        "dim": int(probes.shape[1]),
        "probes": np.round(probes, 6).tolist(),
    }


def fingerprint_of(model: Any) -> str | None:
    """The model's weight fingerprint: its ``fingerprint`` attribute (exports, :class:`CachedEncoder`), else
    ``teacher.model_fingerprint`` of a torch model, else None (then only the probe embeddings identify it)."""
    fingerprint = getattr(model, "fingerprint", None)
    if fingerprint is None and hasattr(model, "state_dict"):
        from st_bertapprox.fingerprint import model_fingerprint

        fingerprint = model_fingerprint(model)
    return fingerprint


def encode_unit(model: Any, texts: list[str], batch_size: int, **encode_kwargs: Any) -> np.ndarray:
    """(N, D) float32 unit vectors from any object with ``encode`` (SentenceTransformer, NumpyStudent, an export)."""
    if type(model).__name__ == "NumpyStudent":
        emb = model.encode(texts, batch_size=batch_size)
    else:
        kwargs = {"convert_to_numpy": True, "show_progress_bar": False, **encode_kwargs}
        emb = model.encode(texts, batch_size=batch_size, **kwargs)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.ndim != 2 or len(emb) != len(texts):
        raise ValueError(f"{type(model).__name__}.encode gave shape {emb.shape} for {len(texts)} texts.")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)  # an empty text's zero vector stays zero


def check_same_model(recorded: dict[str, Any], model: Any, role: str = "query") -> None:
    """Raise if ``model`` is not the model ``recorded`` (dimension first, then fingerprint, then probe agreement)."""
    probes = np.asarray(recorded["probes"], dtype=np.float32)
    ours = encode_unit(model, PROBES, batch_size=len(PROBES))
    if ours.shape[1] != probes.shape[1]:
        raise ValueError(
            f"The {role} model gives {ours.shape[1]}-dimensional embeddings, but this index holds "
            f"{probes.shape[1]}-dimensional ones ({role} model recorded: {recorded['reference']}). Search with that "
            "model, or build a new index with this one."
        )
    if recorded["fingerprint"] is not None and fingerprint_of(model) == recorded["fingerprint"]:
        return
    cos = (ours * probes).sum(1)
    if cos.mean() < PROBE_MEAN_COSINE or cos.min() < PROBE_MIN_COSINE:
        raise ValueError(
            f"This is not the {role} model the index was built for ({recorded['reference']}, fingerprint "
            f"{recorded['fingerprint']}): on the probe sentences its embeddings agree with the recorded ones only to "
            f"cosine {cos.mean():.3f} on average (min {cos.min():.3f}; the same model in another runtime gives > "
            f"{PROBE_MEAN_COSINE}). Search with the recorded model, or build a new index with this one."
        )


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as e:
        raise ImportError("Indexes need Faiss: pip install 'st-bertapprox[eval]' (faiss-cpu).") from e
    return faiss


def make_index(config: IndexConfig, dim: int, n_train: int = 0) -> Any:
    """An empty Faiss index of ``config.kind`` for ``dim``-dimensional unit vectors (inner product)."""
    faiss = _faiss()

    if config.kind == "flat":
        return faiss.IndexFlatIP(dim)
    if config.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction, index.hnsw.efSearch = config.ef_construction, config.ef_search
        return index
    if config.kind == "binary":
        return faiss.IndexBinaryFlat(dim + (-dim) % 8)  # np.packbits pads to whole bytes
    pq_m = config.pq_m or max(1, dim // 8)
    if dim % pq_m:
        raise ValueError(f"IndexConfig.pq_m (--pq-m) must divide the dimension {dim}, got {pq_m}.")
    nlist = config.nlist or max(1, min(65536, int(4 * np.sqrt(max(n_train, 1)))))
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, pq_m, config.pq_bits, faiss.METRIC_INNER_PRODUCT)
    index.nprobe = config.nprobe
    return index


class SearchIndex:
    """A Faiss index over a document collection, with its documents' ids and texts and the models that made it.

    Build with :meth:`build`, reopen with :meth:`load`; :meth:`search` encodes queries with the query model.
    """

    def __init__(self, index: Any, ids: list[str], texts: list[str] | None, meta: dict[str, Any]) -> None:
        self.index, self.ids, self.texts, self.meta = index, ids, texts, meta
        self.config = IndexConfig(**meta["config"])
        self.query_model: Any = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def build(
        cls,
        model: Any,
        texts: Iterable[str],
        ids: Iterable[str] | None = None,
        config: IndexConfig | None = None,
        query_model: Any = None,
        model_reference: str | None = None,
        query_model_reference: str | None = None,
        show_progress_bar: bool = False,
        total: int | None = None,
        encode_kwargs: dict[str, Any] | None = None,
    ) -> SearchIndex:
        """Encode ``texts`` with ``model`` chunk by chunk and add them to a new index.

        Args:
            model: The document model (a SentenceTransformer, a NumpyStudent, an export: anything with ``encode``).
            texts: The documents (any iterable: a generator streams).
            ids: Their ids (default: "0", "1", ...); must be unique.
            config: Kind and parameters (:class:`IndexConfig`).
            query_model: The model queries will be encoded with (default: ``model``); a different one makes an
                asymmetric index (e.g. documents by the teacher, queries by the student), recorded as such.
            model_reference: How the index names the document model (default: its ``name_or_path``).
            query_model_reference: How the index names the query model (default: its ``name_or_path``).
            show_progress_bar: Show a progress bar over the documents.
            total: The number of documents, for the progress bar.
            encode_kwargs: Passed to ``model.encode`` (e.g. ``pool=`` of ``start_multi_process_pool``).

        Raises:
            ValueError: The two models' embeddings differ in dimension, ids repeat, or ids and texts differ in number.
        """
        config = config or IndexConfig()
        query_model = model if query_model is None else query_model
        doc_desc = describe_model(model, model_reference)
        query_desc = doc_desc if query_model is model else describe_model(query_model, query_model_reference)
        if query_desc["dim"] != doc_desc["dim"]:
            raise ValueError(
                f"The query model gives {query_desc['dim']}-dimensional embeddings and the document model "
                f"{doc_desc['dim']}-dimensional ones: an asymmetric index needs models of one embedding space."
            )
        dim, kept_ids, kept_texts = doc_desc["dim"], _UniqueIds(ids), [] if config.store_texts else None
        filler = _Filler(config, dim)
        start, encode_seconds = time.perf_counter(), 0.0
        bar = tqdm(total=total, desc="index", unit="doc", disable=not show_progress_bar)
        for chunk in _chunks(texts, config.chunk_size):
            kept_ids.take(len(chunk))
            t0 = time.perf_counter()
            emb = encode_unit(model, chunk, config.batch_size, **(encode_kwargs or {}))
            encode_seconds += time.perf_counter() - t0
            if kept_texts is not None:
                kept_texts += chunk
            filler.add(emb)
            bar.update(len(chunk))
        bar.close()
        kept_ids = kept_ids.finish()
        index = filler.finish()
        meta = {
            "format_version": FORMAT_VERSION,
            "config": asdict(config),
            "dim": dim,
            "count": len(kept_ids),
            "faiss_class": type(index).__name__,
            "document_model": doc_desc,
            "query_model": query_desc,
            "asymmetric": query_model is not model,
            "build_seconds": round(time.perf_counter() - start, 3),
            "encode_seconds": round(encode_seconds, 3),
        }
        built = cls(index, kept_ids, kept_texts, meta)
        built.query_model = query_model
        return built

    def search(self, queries: list[str], k: int = 10, model: Any = None, batch_size: int = 32) -> list[list[Hit]]:
        """The top ``k`` documents of every query, best first (fewer if the index holds fewer).

        Args:
            queries: The query texts.
            k: How many hits per query.
            model: The query model; default: the one given to :meth:`build` or :meth:`load`. It is checked against
                the recorded query model once (dimension, fingerprint or probe agreement).
            batch_size: Batch size for encoding the queries.

        Raises:
            TypeError: ``queries`` is a single string.
            ValueError: No query model is known, or ``k`` is not a positive integer.
        """
        if isinstance(queries, str):
            raise TypeError("search takes a list of queries: wrap a single query in a list.")
        if model is not None and model is not self.query_model:
            self.set_query_model(model)
        if self.query_model is None:
            reference = self.meta["query_model"]["reference"]
            raise ValueError(f"No query model: pass model= to search or load (this index's: {reference}).")
        return self.search_embeddings(encode_unit(self.query_model, list(queries), batch_size), k)

    def search_embeddings(self, query_embeddings: np.ndarray, k: int = 10) -> list[list[Hit]]:
        """The top ``k`` hits of already encoded (unit) query vectors ``(Q, dim)``."""
        from sentence_transformers.util.quantization import semantic_search_faiss

        q = np.ascontiguousarray(query_embeddings, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.meta["dim"]:
            raise ValueError(f"Query embeddings of shape {q.shape}; this index holds {self.meta['dim']}-dim vectors.")
        if not (isinstance(k, int) and k >= 1):
            raise ValueError(f"k must be a positive integer, got {k!r}.")
        binary = self.config.kind == "binary"
        results, _ = semantic_search_faiss(
            q,
            corpus_index=self.index,
            corpus_precision="ubinary" if binary else "float32",
            top_k=min(k, len(self)),
            rescore=binary,
            rescore_multiplier=self.config.rescore_multiplier,
        )
        return [[self._hit(r["corpus_id"], r["score"]) for r in row] for row in results]

    def _hit(self, row: int, score: float) -> Hit:
        return Hit(self.ids[row], float(score), self.texts[row] if self.texts is not None else None)

    def set_query_model(self, model: Any) -> None:
        """Use ``model`` for queries, once it passes :func:`check_same_model` against the recorded query model."""
        check_same_model(self.meta["query_model"], model)
        self.query_model = model

    def save(self, path: str | os.PathLike) -> None:
        """Write the folder atomically: ``index.faiss``, ``docs.jsonl``, ``index.json``."""
        faiss = _faiss()

        with atomic_dir(path) as tmp:
            write = faiss.write_index_binary if self.config.kind == "binary" else faiss.write_index
            write(self.index, os.path.join(tmp, "index.faiss"))
            with open(os.path.join(tmp, "docs.jsonl"), "w", encoding="utf-8") as f:
                for i, doc_id in enumerate(self.ids):
                    row = {"id": doc_id} if self.texts is None else {"id": doc_id, "text": self.texts[i]}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            save_json(self.meta, os.path.join(tmp, "index.json"))

    @classmethod
    def load(cls, path: str | os.PathLike, model: Any = None, mmap: bool = True) -> SearchIndex:
        """Open a saved index folder; ``model`` (the query model) is checked against the recorded one.

        Raises:
            FileNotFoundError: not an index folder.
            ValueError: a corrupt or truncated file, or counts that disagree, or the wrong query model.
        """
        faiss = _faiss()

        path = Path(path)
        if not (path / "index.json").is_file():
            raise FileNotFoundError(f"{path} is not an index folder (no index.json): see `st-bertapprox index`.")
        try:
            meta = json.loads((path / "index.json").read_text(encoding="utf-8"))
            config = IndexConfig(**meta["config"])
            dim, count = int(meta["dim"]), int(meta["count"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path / 'index.json'} is corrupt ({e}): build the index again.") from e
        if meta.get("format_version") != FORMAT_VERSION:
            found = meta.get("format_version")
            raise ValueError(f"{path} has index format {found}; this version reads {FORMAT_VERSION}: rebuild it.")
        try:
            if config.kind == "binary":
                index = faiss.read_index_binary(str(path / "index.faiss"))
            else:
                flags = faiss.IO_FLAG_MMAP if mmap and config.kind in ("flat", "hnsw") else 0
                index = faiss.read_index(str(path / "index.faiss"), flags)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[-1] if str(e).strip() else "unreadable"
            raise ValueError(f"{path / 'index.faiss'} is corrupt or truncated ({first}): rebuild it.") from e
        ids, texts = [], []
        with open(path / "docs.jsonl", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                row = _json_line(line, path / "docs.jsonl", n)
                ids.append(row["id"])
                texts.append(row.get("text"))
        expected_dim = dim + (-dim) % 8 if config.kind == "binary" else dim
        if index.ntotal != count or len(ids) != count or index.d != expected_dim:
            raise ValueError(
                f"{path} is inconsistent: index.json says {count} vectors of dim {dim}, index.faiss holds "
                f"{index.ntotal} of dim {index.d}, docs.jsonl {len(ids)} documents. Build the index again."
            )
        loaded = cls(index, ids, texts if any(t is not None for t in texts) else None, meta)
        if model is not None:
            loaded.set_query_model(model)
        return loaded


class _UniqueIds:
    """The ids of the documents so far: the given ones (checked unique, as many as the texts) or "0", "1", ..."""

    def __init__(self, ids: Iterable[str] | None) -> None:
        self.ids: list[str] = []
        self.seen: set[str] = set()
        self.given = iter(ids) if ids is not None else None

    def take(self, n: int) -> None:
        """The ids of the next ``n`` texts."""
        if self.given is None:
            self.ids += [str(len(self.ids) + i) for i in range(n)]
            return
        chunk = [next(self.given, _MISSING) for _ in range(n)]
        if _MISSING in chunk:
            raise ValueError(f"Fewer ids than texts: the ids ran out after {len(self.ids) + chunk.index(_MISSING)}.")
        for doc_id in map(str, chunk):
            if doc_id in self.seen:
                raise ValueError(f"Duplicate document id {doc_id!r}: ids must be unique.")
            self.seen.add(doc_id)
            self.ids.append(doc_id)

    def finish(self) -> list[str]:
        """All ids; an error if ids are left over or there were no texts."""
        if self.given is not None and next(self.given, _MISSING) is not _MISSING:
            raise ValueError(f"More ids than texts: {len(self.ids)} texts.")
        if not self.ids:
            raise ValueError("The collection is empty: there is nothing to index.")
        return self.ids


class _Filler:
    """Adds embeddings to a new index; IVF-PQ buffers them until its training sample is full."""

    def __init__(self, config: IndexConfig, dim: int) -> None:
        self.config, self.dim = config, dim
        self.index: Any = None
        self.pending: list[np.ndarray] = []
        self.n_pending = 0

    def add(self, emb: np.ndarray) -> None:
        """Add one chunk of unit-length embeddings."""
        if self.config.kind == "ivfpq" and self.index is None:  # buffer until the training sample is full
            self.pending.append(emb)
            self.n_pending += len(emb)
            if self.n_pending >= self.config.train_size:
                self.index, self.pending = _trained(self.config, self.dim, np.concatenate(self.pending)), []
        else:
            self.index = self.index if self.index is not None else make_index(self.config, self.dim)
            _add(self.index, self.config, emb)

    def finish(self) -> Any:
        """The index (IVF-PQ with fewer documents than its training sample trains on what it has)."""
        if self.index is None:
            self.index = _trained(self.config, self.dim, np.concatenate(self.pending))
        return self.index


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _trained(config: IndexConfig, dim: int, sample: np.ndarray) -> Any:
    index = make_index(config, dim, n_train=len(sample))
    if len(sample) < index.nlist * 39:
        logger.warning("IVF-PQ: %d training vectors, %d lists (Faiss wants >= 39 per list)", len(sample), index.nlist)
    if len(sample) < 2**config.pq_bits:
        raise ValueError(
            f"IVF-PQ needs at least {2**config.pq_bits} documents to train {config.pq_bits}-bit codes, got "
            f"{len(sample)}: use --kind flat or hnsw for a collection this small (or a smaller --pq-bits)."
        )
    index.train(sample)
    _add(index, config, sample)
    return index


def _add(index: Any, config: IndexConfig, emb: np.ndarray) -> None:
    if config.kind == "binary":
        from sentence_transformers.util.quantization import quantize_embeddings

        emb = quantize_embeddings(emb, precision="ubinary")
    index.add(emb)
