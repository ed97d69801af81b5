"""Dense retrieval with Faiss (exact inner-product search on unit vectors) and nDCG@k, BEIR-style."""

from __future__ import annotations

import math

import numpy as np


def ndcg_at_k(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]], k: int = 10) -> float:
    """Mean nDCG@k over the queries of ``qrels`` (linear gains, as pytrec_eval / BEIR / MTEB)."""
    scores = []
    for qid, rels in qrels.items():
        dcg = sum(rels.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked.get(qid, [])[:k]))
        ideal = sorted(rels.values(), reverse=True)[:k]
        idcg = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
        scores.append(dcg / idcg if idcg > 0 else 0.0)
    return float(np.mean(scores))


def recall_at_k(ranked: dict[str, list[str]], qrels: dict[str, dict[str, int]], k: int = 100) -> float:
    """Mean Recall@k over the queries of ``qrels``: the share of a query's relevant documents (score > 0) in its
    top k (BEIR / MTEB)."""
    scores = []
    for qid, rels in qrels.items():
        relevant = {doc for doc, rel in rels.items() if rel > 0}
        if relevant:
            scores.append(len(relevant & set(ranked.get(qid, [])[:k])) / len(relevant))
    return float(np.mean(scores))


def search(query_emb: np.ndarray, doc_emb: np.ndarray, k: int = 10) -> np.ndarray:
    """Indices (Q, k) of the top-k documents by cosine, exact, with a Faiss ``IndexFlatIP``."""
    try:
        import faiss
    except ImportError as e:
        raise ImportError("Retrieval needs Faiss: pip install 'st-bertapprox[eval]' (faiss-cpu).") from e
    docs = np.ascontiguousarray(doc_emb, dtype=np.float32)
    queries = np.ascontiguousarray(query_emb, dtype=np.float32)
    faiss.normalize_L2(docs)
    faiss.normalize_L2(queries)
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs)
    return index.search(queries, k)[1]


def retrieval_ndcg(
    query_emb: np.ndarray,
    doc_emb: np.ndarray,
    query_ids: list[str],
    doc_ids: list[str],
    qrels: dict[str, dict[str, int]],
    k: int = 10,
) -> float:
    """nDCG@k of exact cosine search of ``query_emb`` over ``doc_emb``."""
    top = search(query_emb, doc_emb, k)
    ranked = {qid: [doc_ids[j] for j in row if j >= 0] for qid, row in zip(query_ids, top)}
    return ndcg_at_k(ranked, qrels, k)
