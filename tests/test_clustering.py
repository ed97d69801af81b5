"""Topic clustering (MTEB's protocol, V-measure) on known answers, against MTEB itself, and the news loaders."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import require_dataset

from st_bertapprox.data.shared import load_agnews, load_bbc
from st_bertapprox.evaluation import clustering_v_measure


def blobs(n_per: int, k: int, dim: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 10
    labels = np.repeat(np.arange(k), n_per)
    return centres[labels] + spread * rng.normal(size=(k * n_per, dim)), labels


def test_separated_blobs_score_one():
    x, y = blobs(50, 4, 16, spread=0.1)
    assert clustering_v_measure(x, y, runs=3, sample_size=400) == pytest.approx(1.0, abs=1e-9)


def test_label_names_do_not_matter():
    x, y = blobs(30, 3, 8, spread=0.1)
    names = np.array(["World", "Sports", "Business"])[y]
    assert clustering_v_measure(x, names, runs=2) == clustering_v_measure(x, y, runs=2)


def test_random_labels_or_embeddings_score_near_zero():
    x, y = blobs(100, 4, 16, spread=0.1)
    shuffled = np.random.default_rng(1).permutation(y)
    assert clustering_v_measure(x, shuffled, runs=3, sample_size=2000) < 0.02
    noise = np.random.default_rng(2).normal(size=x.shape)
    assert clustering_v_measure(noise, y, runs=3, sample_size=2000) < 0.02


def test_partial_structure_is_in_between():
    x, y = blobs(100, 4, 16, spread=15.0)  # overlapping blobs: V-measure ~0.75
    assert 0.3 < clustering_v_measure(x, y, runs=3) < 0.95


def test_equals_mtebs_own_bootstrapped_clustering():
    """Same embeddings, same seed: the number MTEB 2.x's AbsTaskClustering computes."""
    mteb_clustering = pytest.importorskip("mteb.abstasks.clustering")
    x, y = blobs(60, 5, 12, spread=6.0)
    scores, _ = mteb_clustering._evaluate_clustering_bootstrapped(
        x,
        [[label] for label in y],
        n_clusters=10,
        cluster_size=16_384,
        kmean_batch_size=512,
        max_depth=None,
        rng_state=random.Random(42),
        seed=42,
    )
    assert clustering_v_measure(x, y) == pytest.approx(np.mean(scores["v_measure"]["Level 0"]), abs=1e-12)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="N >= 2"):
        clustering_v_measure(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="non-finite"):
        clustering_v_measure(np.array([[0.0, np.nan], [1.0, 1.0]]), [0, 1])


def test_load_agnews():
    require_dataset("agnews")
    texts, labels = load_agnews()
    assert len(texts) == len(labels) == 7600
    assert {label: labels.count(label) for label in set(labels)} == dict.fromkeys(
        ["World", "Sports", "Business", "Sci/Tech"], 1900
    )
    # title, a space, description (as the HF ag_news dataset joins them)
    assert texts[0] == (
        "Fears for T N pension after talks Unions representing workers at Turner   Newall say they are "
        "'disappointed' after talks with stricken parent firm Federal Mogul."
    )
    assert labels[0] == "Business"


def test_load_bbc():
    require_dataset("bbc-news")
    texts, labels = load_bbc()
    assert len(texts) == len(labels) == 2225
    counts = {label: labels.count(label) for label in set(labels)}
    assert counts == {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}
    assert texts[0].startswith("Ad sales boost Time Warner profit Quarterly profits at US media giant TimeWarner")
    assert all(len(t.split()) > 30 for t in texts)  # whole articles, not titles
