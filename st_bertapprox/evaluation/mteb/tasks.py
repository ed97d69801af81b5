"""Local MTEB 2.x tasks: one per task type the shared data covers, read through ``data``, run offline.

Each task subclasses an MTEB task class (``AbsTaskSTS``, ``AbsTaskRetrieval``, ``AbsTaskClassification``,
``AbsTaskClustering``, ``AbsTaskPairClassification``), so MTEB's own protocol, metrics and result files apply; only
``load_data`` differs. Two kinds of names:

* **Official name** where the data, the split and the protocol are the official task's (scores comparable with the
  leaderboard): ``SciFact`` (BEIR SciFact, test qrels) and ``Banking77Classification`` (PolyAI's train/test CSVs,
  the data of ``mteb/banking77`` revision 0fd18e25, i.e. v1 of the task; v2 deduplicated it). Their metadata is the
  official one except the dataset revision, ``local-...``, which says where the data came from.
* **A name of our own** where the split differs or no official task exists, so that nobody mistakes it for a
  leaderboard number: ``STSBenchmarkDev`` (STS-B *dev*; the shared data has no test split);
  ``AGNewsClassificationLocal`` (AG News test only, MTEB's 5-fold cross-validation protocol for one-split data;
  official ``NewsClassification`` trains on AG News train); ``AGNewsClusteringLocal`` and ``BBCNewsClusteringLocal``
  (MTEB's v2 clustering protocol: MiniBatchKMeans, k = number of topics, 10 runs on 16,384 texts drawn with
  replacement from all texts); ``SNLIPairClassificationLocal`` (SNLI test, entailment = 1 vs contradiction = 0,
  neutral dropped); ``SciFactRerankingLocal`` (SciFact test queries, each reranking the top 10 BM25 candidates of the
  whole corpus; relevant documents BM25 missed stay in the qrels and count as misses: no label enters the candidates).

``limit`` (tests only) keeps a seeded sample of each split, shrinks the repeated experiments and marks the dataset
revision with it.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import mteb
from datasets import Dataset, DatasetDict
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

from st_bertapprox.data.shared import load_agnews, load_banking77, load_bbc, load_beir, load_snli_pairs, load_stsb

RERANK_CANDIDATES = 10  # BM25 candidates per query in SciFactRerankingLocal


def bm25_top_k(
    corpus: dict[str, str], queries: dict[str, str], k: int, k1: float = 1.2, b: float = 0.75
) -> dict[str, list[str]]:
    """Okapi BM25 (Lucene's idf, scikit-learn's tokens, English stop words): ``{query id: [doc ids, best first]}``.

    The first stage of ``SciFactRerankingLocal``: independent of every model we evaluate and of the labels.
    """
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(lowercase=True, stop_words="english")
    tf = vectorizer.fit_transform(list(corpus.values())).tocsc().astype(np.float64)  # (D, V)
    n_docs = tf.shape[0]
    df = np.diff(tf.indptr)  # documents per term (CSC column lengths)
    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5))
    length = np.asarray(tf.sum(axis=1)).ravel()
    tf = tf.tocoo()
    norm = k1 * (1 - b + b * length / length.mean())
    weights = tf.data * (k1 + 1) / (tf.data + norm[tf.row]) * idf[tf.col]
    from scipy.sparse import csr_matrix

    doc_term = csr_matrix((weights, (tf.row, tf.col)), shape=tf.shape)
    query_terms = (vectorizer.transform(list(queries.values())) > 0).astype(np.float64)  # (Q, V)
    scores = (query_terms @ doc_term.T).toarray()  # (Q, D)
    doc_ids = list(corpus)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return {qid: [doc_ids[j] for j in row] for qid, row in zip(queries, top)}


def _retrieval_split(
    corpus: dict[str, dict],
    queries: dict[str, str],
    qrels: dict,
    top_ranked: dict[str, list[str]] | None = None,
) -> RetrievalSplitData:
    return RetrievalSplitData(
        corpus=Dataset.from_dict(
            {
                "id": list(corpus),
                "title": [d["title"] for d in corpus.values()],
                "text": [d["text"] for d in corpus.values()],
            }
        ),
        queries=Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
        relevant_docs=qrels,
        top_ranked=top_ranked,
    )


def _sample(rng_seed: int, n: int, limit: int | None) -> list[int]:
    """Indices of a seeded sample of ``limit`` of ``n`` rows (all of them, in order, without a limit)."""
    if limit is None or limit >= n:
        return list(range(n))
    return sorted(random.Random(rng_seed).sample(range(n), limit))


@cache  # each official task is instantiated once, at import
def _official(name: str) -> type:
    """The class of MTEB's official task ``name``."""
    return type(mteb.get_task(name))


def task_metadata(like: str, name: str | None = None, **update: Any) -> mteb.TaskMetadata:
    """The metadata of the official task ``like``, with ``update`` (and a new ``name``) applied."""
    fields = {"superseded_by": None, **update}
    if name is not None:
        fields.update(name=name, adapted_from=[like])
    return _official(like).metadata.model_copy(update=fields)


class _Local:
    """``limit`` (tests): keep a seeded sample of that many rows per split, cluster samples of that size, run two
    classification experiments; the dataset revision records it."""

    def __init__(self, limit: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit = limit
        if limit is not None:
            if hasattr(self, "max_documents_per_cluster"):  # clustering: 10 k-means runs on `limit` draws
                self.max_documents_per_cluster = limit
            if hasattr(self, "n_experiments") and not getattr(self, "is_cross_validation", False):
                self.n_experiments = 2
            dataset = dict(self.metadata.dataset, revision=f"{self.metadata.dataset['revision']}-limit{limit}")
            self.metadata = self.metadata.model_copy(update={"dataset": dataset})

    def _rows(self, n: int) -> list[int]:
        return _sample(self.seed, n, self.limit)


class STSBenchmarkDev(_Local, _official("STSBenchmark").__mro__[1]):
    """MTEB's STS protocol on STS-B *dev* (1,500 pairs), the official STSBenchmark metadata renamed."""

    metadata = task_metadata(
        "STSBenchmark",
        "STSBenchmarkDev",
        description="STS Benchmark, English, dev split (1,500 pairs): the shared data has no test split.",
        dataset={"path": "sentence-transformers/stsb", "revision": "local-dev"},
        eval_splits=["validation"],
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Load STS-B dev from the shared data, scores rescaled to STS-B's 0-5."""
        if self.data_loaded:
            return
        dev = load_stsb("dev").select(self._rows(1500))  # scores scaled to 0-1; the task expects STS-B's 0-5
        self.dataset = DatasetDict({"validation": dev.map(lambda row: {"score": row["score"] * 5})})
        self.data_loaded = True


class SciFact(_Local, _official("SciFact")):
    """The official SciFact retrieval task (BEIR test queries and qrels), on the shared BEIR copy."""

    metadata = _official("SciFact").metadata.model_copy(
        update={"dataset": {"path": "mteb/scifact", "revision": "local-beir"}}
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Load the BEIR SciFact corpus, test queries and qrels (``limit``: a sample, with its relevant documents)."""
        if self.data_loaded:
            return
        corpus, queries, qrels = load_beir("scifact", "test", join=False)
        if self.limit is not None:  # the sampled queries and their relevant documents among sampled documents
            rows = set(self._rows(len(queries)))
            queries = {q: queries[q] for i, q in enumerate(queries) if i in rows}
            keep = {d for q in queries for d in qrels[q]} | {list(corpus)[i] for i in self._rows(len(corpus))}
            corpus, qrels = {d: corpus[d] for d in corpus if d in keep}, {q: qrels[q] for q in queries}
        self.dataset = {"default": {"test": _retrieval_split(corpus, queries, qrels)}}
        self.data_loaded = True


class SciFactRerankingLocal(_Local, _official("SciFact").__mro__[1]):
    """SciFact test queries, each reranking its top ``RERANK_CANDIDATES`` BM25 documents (:func:`bm25_top_k`)."""

    metadata = task_metadata(
        "SciDocsRR",
        "SciFactRerankingLocal",
        description=(
            f"SciFact test queries (300), each reranking the top {RERANK_CANDIDATES} documents BM25 "
            "(st_bertapprox.evaluation.mteb.tasks.bm25_top_k) finds in the whole SciFact corpus; relevant "
            "documents BM25 missed stay in the qrels and count as misses."
        ),
        dataset={"path": "mteb/scifact", "revision": f"local-beir-bm25-top{RERANK_CANDIDATES}"},
        main_score="ndcg_at_10",
        prompt=None,
        domains=["Academic", "Medical", "Written"],
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Load SciFact test, rank the whole corpus with BM25 per query and keep only the candidates."""
        if self.data_loaded:
            return
        corpus, queries, qrels = load_beir("scifact", "test", join=False)
        rows = set(self._rows(len(queries)))
        queries = {q: queries[q] for i, q in enumerate(queries) if i in rows}
        joined = {d: f"{doc['title']} {doc['text']}".strip() for d, doc in corpus.items()}
        top = bm25_top_k(joined, queries, RERANK_CANDIDATES)
        candidates = {d for ranked in top.values() for d in ranked}
        corpus = {d: doc for d, doc in corpus.items() if d in candidates}  # only the candidates are encoded
        qrels = {q: qrels[q] for q in queries}
        self.dataset = {"default": {"test": _retrieval_split(corpus, queries, qrels, top_ranked=top)}}
        self.data_loaded = True


class Banking77Classification(_Local, _official("Banking77Classification")):
    """The official Banking77 classification task (v1 data), on PolyAI's train/test CSVs."""

    metadata = _official("Banking77Classification").metadata.model_copy(
        update={"dataset": {"path": "mteb/banking77", "revision": "local-polyai-57ec275"}}
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Load the Banking77 train and test splits from the shared data (``limit`` samples the test split)."""
        if self.data_loaded:
            return
        splits = {}
        for split in ("train", "test"):  # `limit` samples the test texts: only 8 train texts per label are used
            texts, labels, _ = load_banking77(split)
            rows = self._rows(len(texts)) if split == "test" else range(len(texts))
            splits[split] = Dataset.from_dict({"text": [texts[i] for i in rows], "label": [labels[i] for i in rows]})
        self.dataset = DatasetDict(splits)
        self.data_loaded = True


class AGNewsClassificationLocal(_Local, _official("Banking77Classification").__mro__[1]):
    """AG News test split only, classified with MTEB's 5-fold cross-validation protocol."""

    metadata = task_metadata(
        "NewsClassification",
        "AGNewsClassificationLocal",
        description=(
            "AG News test split only (7,600 texts, 4 topics): MTEB's cross-validation protocol for one-split data "
            "(5 folds; logistic regression on 8 texts per topic of the other folds). Official NewsClassification "
            "samples its training texts from AG News train: not comparable."
        ),
        dataset={"path": "fancyzhx/ag_news", "revision": "local-test-5fold"},
    )
    is_cross_validation = True
    train_split = "test"

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Load the AG News test texts and their topic indices (topics sorted by name)."""
        if self.data_loaded:
            return
        texts, topics = load_agnews()
        names = sorted(set(topics))
        rows = self._rows(len(texts))
        test = Dataset.from_dict({"text": [texts[i] for i in rows], "label": [names.index(topics[i]) for i in rows]})
        self.dataset = DatasetDict({"test": test})
        self.data_loaded = True


class _LocalClustering(_Local, _official("TwentyNewsgroupsClustering.v2").__mro__[1]):
    """MTEB's v2 clustering protocol on every text of ``load_texts()`` (texts, topics)."""

    max_fraction_of_documents_to_embed = None  # embed every text: these sets are small

    @staticmethod
    def load_texts() -> tuple[list[str], list[str]]:
        """The texts and their topic labels; subclasses set it."""
        raise NotImplementedError

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        texts, topics = self.load_texts()
        rows = self._rows(len(texts))
        test = Dataset.from_dict({"sentences": [texts[i] for i in rows], "labels": [topics[i] for i in rows]})
        self.dataset = DatasetDict({"test": test})
        self.data_loaded = True


class AGNewsClusteringLocal(_LocalClustering):
    """AG News test split (4 topics), MTEB's v2 clustering protocol."""

    metadata = task_metadata(
        "TwentyNewsgroupsClustering.v2",
        "AGNewsClusteringLocal",
        description="AG News test split (7,600 title + description texts, 4 topics), MTEB's v2 clustering protocol "
        "on all texts.",
        dataset={"path": "fancyzhx/ag_news", "revision": "local-test"},
    )
    load_texts = staticmethod(load_agnews)


class BBCNewsClusteringLocal(_LocalClustering):
    """BBC News articles (5 topics), MTEB's v2 clustering protocol."""

    metadata = task_metadata(
        "TwentyNewsgroupsClustering.v2",
        "BBCNewsClusteringLocal",
        description="BBC News (2,225 whole articles, 5 topics; Greene & Cunningham 2006), MTEB's v2 clustering "
        "protocol.",
        dataset={"path": "st-bertapprox/bbc-news", "revision": "local-full"},
    )
    load_texts = staticmethod(load_bbc)


class SNLIPairClassificationLocal(_Local, _official("SprintDuplicateQuestions").__mro__[1]):
    """SNLI test premise/hypothesis pairs, entailment (1) vs contradiction (0)."""

    metadata = task_metadata(
        "SprintDuplicateQuestions",
        "SNLIPairClassificationLocal",
        description=(
            "SNLI test (e-SNLI copy, tokenized text): premise/hypothesis pairs, entailment (1) vs contradiction "
            "(0), neutral dropped; 6,605 pairs."
        ),
        dataset={"path": "stanfordnlp/snli", "revision": "local-test-esnli"},
        domains=["Written"],
        task_subtypes=[],
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Load the SNLI test pairs (neutral dropped) from the shared data."""
        if self.data_loaded:
            return
        premises, hypotheses, labels = load_snli_pairs("test")
        rows = self._rows(len(labels))
        test = Dataset.from_dict(
            {
                "sentence1": [premises[i] for i in rows],
                "sentence2": [hypotheses[i] for i in rows],
                "labels": [labels[i] for i in rows],
            }
        )
        self.dataset = DatasetDict({"test": test})
        self.data_loaded = True


# every local task, in suite order (grouped by task type)
LOCAL_TASKS: dict[str, type] = {
    task.metadata.name: task
    for task in (
        STSBenchmarkDev,
        SciFact,
        SciFactRerankingLocal,
        Banking77Classification,
        AGNewsClassificationLocal,
        AGNewsClusteringLocal,
        BBCNewsClusteringLocal,
        SNLIPairClassificationLocal,
    )
}
LOCAL_SUITE = tuple(LOCAL_TASKS)


def official_name(task_name: str) -> bool:
    """Whether a local task keeps an official MTEB name (same data, split and protocol as the leaderboard's)."""
    return task_name in {"SciFact", "Banking77Classification"}
