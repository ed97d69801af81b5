"""Topic clustering, MTEB's protocol: k-means on embeddings, scored by V-measure against the topic labels.

This is ``_evaluate_clustering_bootstrapped`` of MTEB 2.x's ``AbsTaskClustering`` (``mteb/abstasks/clustering.py``,
the "fast" protocol of the ``*.v2`` clustering tasks) on embeddings already computed: ``runs`` times, draw
``sample_size`` rows *with replacement* (``random.Random(seed).choices``), fit ``MiniBatchKMeans`` with as many
clusters as there are labels (``batch_size=512``, k-means++ init, ``n_init=1``, ``random_state=seed``) and score
the assignment with ``sklearn.metrics.v_measure_score``; the result is the mean over the runs. Same embeddings, same
seed: the same number as MTEB (tested). Sampling a corpus smaller than ``sample_size`` repeats rows, as MTEB does.

References: Rosenberg & Hirschberg, "V-Measure: A Conditional Entropy-Based External Cluster Evaluation Measure"
(EMNLP 2007); Muennighoff et al., "MTEB: Massive Text Embedding Benchmark" (EACL 2023).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

MTEB_SAMPLE_SIZE = 16_384  # AbsTaskClustering.max_documents_per_cluster
MTEB_RUNS = 10  # AbsTaskClustering.n_clusters (the number of clustering experiments, despite the name)
MTEB_KMEANS_BATCH_SIZE = 512  # AbsTaskClustering.k_mean_batch_size
MTEB_SEED = 42  # AbsTask's default seed


def clustering_v_measure(
    embeddings: np.ndarray,
    labels: Sequence,
    n_clusters: int | None = None,
    runs: int = MTEB_RUNS,
    sample_size: int = MTEB_SAMPLE_SIZE,
    seed: int = MTEB_SEED,
    batch_size: int = MTEB_KMEANS_BATCH_SIZE,
) -> float:
    """Mean V-measure of ``runs`` MiniBatchKMeans clusterings of bootstrap samples of ``embeddings``, MTEB-style.

    Args:
        embeddings: ``(N, D)`` embeddings (not normalised here: MTEB clusters what the model returns).
        labels: ``N`` gold topic labels (any hashable values).
        n_clusters: k; default the number of distinct labels (MTEB).
        runs: Clusterings averaged (MTEB: 10).
        sample_size: Rows drawn with replacement for each clustering (MTEB: 16,384, whatever N).
        seed: Seeds the row sampling (``random.Random``) and k-means' ``random_state`` (MTEB: 42 for both).
        batch_size: MiniBatchKMeans batch size (MTEB: 512).

    Returns:
        The mean V-measure, in [0, 1]: 1 when clusters and topics coincide, ~0 when independent.

    Raises:
        ValueError: shapes disagree, fewer than 2 rows, or non-finite embeddings.

    Example::

        >>> x = np.repeat(np.eye(3), 20, axis=0)          # three far-apart blobs
        >>> round(clustering_v_measure(x, np.repeat(["a", "b", "c"], 20)), 6)
        1.0
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics.cluster import v_measure_score

    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels)
    if embeddings.ndim != 2 or len(embeddings) != len(labels) or len(labels) < 2:
        raise ValueError(f"Need (N, D) embeddings and N >= 2 labels, got {embeddings.shape} and {labels.shape}.")
    if not np.isfinite(embeddings).all():
        raise ValueError("The embeddings have non-finite (NaN/inf) values.")
    kmeans = MiniBatchKMeans(
        n_clusters=n_clusters or np.unique(labels).size,
        batch_size=batch_size,
        init="k-means++",
        n_init=1,
        random_state=seed,
    )
    rng = random.Random(seed)
    scores = []
    for _ in range(runs):
        rows = rng.choices(range(len(embeddings)), k=sample_size)
        scores.append(v_measure_score(labels[rows], kmeans.fit_predict(embeddings[rows])))
    return float(np.mean(scores))
