"""Embedding-space analysis: the metrics on constructed cases with known answers, the PCA picture, the raw BERT views
on real MiniLM weights, the labelled-data split, and a short contrastive run on real AG News texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import require_dataset

from st_bertapprox.config import ContrastiveConfig, LabelledDataConfig
from st_bertapprox.data.shared import load_labelled
from st_bertapprox.evaluation.analysis import (
    View,
    anisotropy,
    bert_views,
    mean_cosine,
    plot_pca,
    separability,
    worst_confusion,
)
from st_bertapprox.finetune.contrastive import (
    encode,
    finetune_contrastive,
    load_splits,
    training_dataset,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """k-means and PCA on a few hundred rows: extra OpenMP/BLAS threads only spin on a shared 2-core machine (5x)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def blobs(n_per: int, k: int, dim: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    labels = np.repeat(np.arange(k), n_per)
    return centres[labels] + spread * rng.normal(size=(k * n_per, dim)), labels


# --- anisotropy on known cases ------------------------------------------------------------------------------------


def test_isotropic_gaussian_vs_narrow_cone():
    rng = np.random.default_rng(0)
    gaussian = rng.normal(size=(2000, 32))
    cone = 5 * np.eye(32)[0] + 0.3 * rng.normal(size=(2000, 32))  # every vector near one direction
    iso, narrow = anisotropy(gaussian), anisotropy(cone)
    assert abs(iso["mean_cosine"]) < 0.01 and narrow["mean_cosine"] > 0.8
    assert iso["isotropy"] > 0.9 and narrow["isotropy"] < 0.3  # I(W): ~1 isotropic, -> 0 with a dominant direction
    assert iso["effective_rank"] > 30  # of 32 dimensions
    assert iso["top1_var"] < 0.06 and iso["top10_var"] < 0.45  # ~1/32 and ~10/32


def test_mean_cosine_is_the_mean_over_distinct_pairs():
    x = np.random.default_rng(1).normal(size=(50, 8)) + 1.0
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = u @ u.T
    assert mean_cosine(x) == pytest.approx(cos[~np.eye(50, dtype=bool)].mean(), abs=1e-12)
    assert mean_cosine(np.tile([1.0, 2.0], (10, 1))) == pytest.approx(1.0)  # all one direction


def test_low_rank_data_has_low_effective_rank():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 2)) @ rng.normal(size=(2, 64))  # a 2-D plane through the origin in 64-D
    a = anisotropy(x)
    assert a["top10_var"] == pytest.approx(1.0, abs=1e-6) and 1.5 < a["effective_rank"] < 2.5


def test_bad_vectors_are_refused():
    with pytest.raises(ValueError, match="finite"):
        anisotropy(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="2 subjects"):
        separability(np.eye(3), ["a", "a", "a"])


# --- separability on known cases ----------------------------------------------------------------------------------


def test_separated_vs_mixed_labels():
    x, y = blobs(60, 4, 16, spread=0.05)
    good = separability(x, y)
    assert good["knn_accuracy"] == 1.0 and good["nn_confusion"] == 0.0
    assert good["v_measure"] == pytest.approx(1.0) and good["ari"] == pytest.approx(1.0)
    assert good["silhouette"] > 0.8
    assert np.allclose(good["confusion"], np.eye(4))
    mixed = separability(x, np.random.default_rng(3).permutation(y))  # labels that ignore the geometry
    assert mixed["knn_accuracy"] < 0.4 and mixed["nn_confusion"] > 0.6  # chance: 0.25 and 0.75
    assert mixed["v_measure"] < 0.05 and abs(mixed["ari"]) < 0.05 and mixed["silhouette"] < 0.05


def test_confusion_names_the_overlapping_subjects():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(80, 8)) * 0.05 + np.eye(8)[0]  # subject a: its own region
    bc = rng.normal(size=(160, 8)) * 0.05 + np.eye(8)[1]  # subjects b and c: drawn from one region
    labels = ["a"] * 80 + ["b", "c"] * 80
    m = separability(np.vstack([a, bc]), labels)
    c = np.array(m["confusion"])
    assert m["subjects"] == ["a", "b", "c"] and np.allclose(c.sum(1), 1)
    assert c[0, 0] == 1.0  # a is never mistaken
    assert 0.3 < c[1, 2] < 0.7 and 0.3 < c[2, 1] < 0.7  # b and c are mistaken for each other about half the time
    assert worst_confusion(m).split(" -> ")[0] in ("b", "c")


# --- the picture --------------------------------------------------------------------------------------------------


def test_pca_picture_is_a_valid_png(tmp_path):
    from matplotlib.image import imread

    x, y = blobs(30, 3, 10, spread=0.1)
    views = [View("separated", x, y).analyze(), View("noise", np.random.default_rng(5).normal(size=x.shape), y)]
    views.append(View("table only", x))  # no labels: not drawn
    path = plot_pca(views, tmp_path / "sub" / "pca.png", title="test")
    data = (tmp_path / "sub" / "pca.png").read_bytes()
    assert path.endswith("pca.png") and data[:8] == PNG_MAGIC
    img = imread(path)
    assert img.ndim == 3 and img.shape[1] > img.shape[0] > 200  # two panels side by side
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name != "pca.png"]  # atomic: no temporary left


# --- real weights and real data -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def agnews_small():
    require_dataset("agnews")
    return load_splits(LabelledDataConfig(train_texts=128, dev_texts=0, test_texts=100))


def test_raw_bert_views_on_real_minilm(scratch_minilm, agnews_small):
    """The mean view is the sentence model; [CLS] and the static mean crowd into a cone, the sentence model doesn't."""
    texts, labels = agnews_small.test
    raw = bert_views(scratch_minilm[0], texts[:40], max_tokens=500)
    sentence = encode(scratch_minilm, texts[:40])
    mean = raw["mean"] / np.linalg.norm(raw["mean"], axis=1, keepdims=True)
    np.testing.assert_allclose(mean, sentence, atol=1e-5)
    assert raw["table"].shape == (30522, 384) and raw["tokens"].shape == (500, 384)
    assert anisotropy(raw["cls"])["mean_cosine"] > 0.4 and anisotropy(raw["static"])["mean_cosine"] > 0.4
    assert anisotropy(sentence)["mean_cosine"] < 0.2


def test_load_labelled_files_and_split(tmp_path):
    rows = [{"body": f"text {i}", "topic": "ab"[i % 2]} for i in range(40)] + [{"body": "text 0", "topic": "a"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    (tmp_path / "d.csv").write_text("body,topic\n" + "\n".join(f"{r['body']},{r['topic']}" for r in rows))
    for name in ("d.jsonl", "d.csv"):
        texts, labels = load_labelled(str(tmp_path / name), "body", "topic")
        assert len(texts) == 41 and set(labels) == {"a", "b"}
    config = LabelledDataConfig(data=str(tmp_path / "d.csv"), text_column="body", label_column="topic",
                                train_texts=20, dev_texts=6, test_texts=10)  # fmt: skip
    s = load_splits(config)
    parts = [set(s.train[0]), set(s.dev[0]), set(s.test[0])]
    assert [len(p) for p in parts] == [20, 6, 10] and not (parts[0] & parts[2] or parts[1] & parts[2])
    assert s.test[1].count("a") == 5  # stratified
    # the test documents do not depend on the train and dev sizes (analyze sees finetune-contrastive's test set)
    assert load_splits(LabelledDataConfig(**{**vars(config), "train_texts": 0, "dev_texts": 0})).test == s.test
    with pytest.raises(ValueError, match="distinct documents"):
        load_splits(LabelledDataConfig(**{**vars(config), "train_texts": 100}))
    with pytest.raises(ValueError, match="'missing'"):
        load_labelled(str(tmp_path / "d.csv"), "missing", "topic")


def test_training_datasets_use_each_text_once():
    texts = [f"t{i}" for i in range(40)]
    labels = ["abcd"[i % 4] for i in range(40)]
    subject = dict(zip(texts, labels))
    triplet = training_dataset(texts, labels, "batch-all-triplet")
    assert triplet.column_names == ["text", "label"] and sorted(set(triplet["label"])) == [0, 1, 2, 3]
    mnrl = training_dataset(texts, labels, "mnrl")
    assert all(subject[a] == subject[p] for a, p in zip(mnrl["anchor"], mnrl["positive"]))
    assert len(set(mnrl["anchor"]) | set(mnrl["positive"])) == 2 * len(mnrl) == 40
    pairs = training_dataset(texts, labels, "online-contrastive")
    same = [subject[a] == subject[b] for a, b in zip(pairs["sentence1"], pairs["sentence2"])]
    assert same == [bool(x) for x in pairs["label"]] and 0.3 < np.mean(same) < 0.7


@pytest.mark.slow
def test_short_contrastive_run_raises_separability(minilm_path, agnews_small, scratch_minilm, tmp_path):
    """128 AG News training texts, 4 steps of BatchAllTripletLoss: the held-out test documents separate better."""
    texts, labels = agnews_small.test
    before = View("base", encode(scratch_minilm, texts), labels).analyze().metrics
    recipe = ContrastiveConfig(learning_rate=1e-4, max_seq_length=48)  # a few steps need a larger step size
    model, info = finetune_contrastive(minilm_path, agnews_small, recipe, str(tmp_path))
    after = View("fine-tuned", encode(model, texts), labels).analyze().metrics
    assert info["train_texts"] == 128 and info["dev_before"] is None
    assert model.max_seq_length == scratch_minilm.max_seq_length  # evaluation length restored after training
    assert after["v_measure"] > before["v_measure"] + 0.1, (before, after)
    assert after["silhouette"] > before["silhouette"] + 0.05
    assert after["knn_accuracy"] >= before["knn_accuracy"] and after["nn_confusion"] < before["nn_confusion"]
