"""Embedding-space analysis: how anisotropic a set of vectors is, how well it separates subjects, and a PCA picture.

Anisotropy (no labels needed), all on the L2-normalised rows (the directions cosine similarity sees):

* ``mean_cosine``: the mean cosine of two distinct random rows, computed exactly over all pairs. Near 0 for
  directions spread over the sphere, near 1 when they crowd into a narrow cone (Ethayarajh, "How Contextual are
  Contextualized Word Representations?", EMNLP 2019, uses it as the anisotropy baseline).
* ``top1_var`` / ``top10_var``: the share of the (centred) variance in the first 1 / 10 principal components, and
  ``effective_rank``: ``exp`` of the entropy of the normalised singular values (Roy & Vetterli, "The effective
  rank: a measure of effective dimensionality", EUSIPCO 2007): how many directions the variation really uses (at
  most the number of rows: compare views measured on the same texts).
* ``isotropy``: ``I(W) = min_c Z(c) / max_c Z(c)`` with the partition function ``Z(c) = sum_w exp(c . w)`` over the
  eigenvectors ``c`` of ``W^T W`` (Mu & Viswanath, "All-but-the-Top: Simple and Effective Postprocessing for Word
  Representations", ICLR 2018, after Arora et al., TACL 2016). 1 is isotropic, near 0 is one dominant direction.
  An eigenvector's sign is arbitrary, so both ``c`` and ``-c`` are used (else the score depends on the solver).

Subject separability (texts with subject labels):

* ``knn_accuracy``: leave-one-out k-nearest-neighbour vote (cosine, k=10, ties to the nearer neighbour);
* ``nn_confusion``: how often a text's nearest other text is of another subject, and the subject-by-subject
  confusion matrix of that nearest neighbour (rows: a text's subject, columns: its neighbour's; rows sum to 1);
* ``silhouette`` (cosine, ``sklearn.metrics.silhouette_score``);
* ``v_measure``: MTEB's clustering protocol (:func:`st_bertapprox.evaluation.clustering_v_measure`, k-means on what
  the model returns), and ``ari``: adjusted Rand index of one ``KMeans`` (n_init=10) of the same vectors.

:func:`bert_views` gives what the raw :class:`BertTransformer` offers before any pooling head, :func:`plot_pca` draws
one PCA panel per model, :func:`markdown_table` renders the figures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

from st_bertapprox.config import LabelledDataConfig
from st_bertapprox.data.corpus import Texts
from st_bertapprox.evaluation.agreement import unit_rows
from st_bertapprox.evaluation.clustering import clustering_v_measure
from st_bertapprox.modules.bert import BertTransformer
from st_bertapprox.persistence.saving import save_results

if TYPE_CHECKING:
    from st_bertapprox.modules.bert import BertTransformer

ANISOTROPY = ("mean_cosine", "top1_var", "top10_var", "effective_rank", "isotropy")


SEPARABILITY = ("knn_accuracy", "silhouette", "v_measure", "ari", "nn_confusion")


COLUMNS = {  # metric -> table header
    "mean_cosine": "mean cos (random pairs)",
    "top1_var": "PC1 var",
    "top10_var": "PC1-10 var",
    "effective_rank": "eff. rank",
    "isotropy": "isotropy I(W)",
    "knn_accuracy": "kNN acc",
    "silhouette": "silhouette",
    "v_measure": "V-measure",
    "ari": "ARI",
    "nn_confusion": "NN other subject",
}


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2 or not np.isfinite(x).all():
        raise ValueError(f"Need finite (N, D) vectors with N >= 2, got shape {x.shape}.")
    return unit_rows(x)


def mean_cosine(x: np.ndarray) -> float:
    """Mean cosine over all pairs of distinct rows (exact): ``(|sum u|^2 - N) / (N (N - 1))`` for unit rows ``u``."""
    u = _unit(x)
    n = len(u)
    return float((np.sum(u.sum(0) ** 2) - n) / (n * (n - 1)))


def isotropy(x: np.ndarray) -> float:
    """Mu & Viswanath's ``I(W)`` on the unit rows, over the eigenvectors of ``W^T W`` and their negatives."""
    u = _unit(x)
    _, vecs = np.linalg.eigh(u.T @ u)  # (D, D) columns: principal directions of the uncentred rows
    proj = u @ np.concatenate([vecs, -vecs], axis=1)  # (N, 2D)
    log_z = np.logaddexp.reduce(proj, axis=0)  # log Z(c) for every direction, overflow-safe
    return float(np.exp(log_z.min() - log_z.max()))


def anisotropy(x: np.ndarray) -> dict[str, float]:
    """The anisotropy figures of a set of vectors: mean cosine, PC variance shares, effective rank, isotropy."""
    u = _unit(x)
    s = np.linalg.svd(u - u.mean(0), compute_uv=False)  # singular values of the centred directions
    var = s**2 / np.sum(s**2)
    p = s / s.sum()
    return {
        "mean_cosine": mean_cosine(u),
        "top1_var": float(var[0]),
        "top10_var": float(var[:10].sum()),
        "effective_rank": float(np.exp(-np.sum(p[p > 0] * np.log(p[p > 0])))),
        "isotropy": isotropy(u),
    }


def separability(x: np.ndarray, labels: Sequence, k: int = 10, runs: int = 10, seed: int = 42) -> dict:
    """How well the vectors separate the subjects ``labels`` (see the module docstring).

    Returns:
        ``knn_accuracy``, ``silhouette``, ``v_measure``, ``ari``, ``nn_confusion`` (floats), ``subjects`` (sorted
        names) and ``confusion`` (the nearest-neighbour confusion matrix as nested lists, rows sum to 1).
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, confusion_matrix, silhouette_score
    from sklearn.neighbors import NearestNeighbors

    u = _unit(x)
    subjects, y = np.unique(np.asarray(labels), return_inverse=True)
    if len(y) != len(u) or len(subjects) < 2:
        raise ValueError(f"Need one label per vector and at least 2 subjects, got {len(y)} labels, {len(subjects)}.")
    k = min(k, len(u) - 1)
    idx = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(u).kneighbors(u, return_distance=False)
    # drop each row itself (not always first when rows are duplicated), keep k neighbours nearest first
    idx = np.array([[j for j in row if j != i][:k] for i, row in enumerate(idx)])
    votes = np.zeros((len(u), len(subjects)))
    np.add.at(votes, (np.arange(len(u))[:, None], y[idx]), 1.0 + 1e-6 * np.arange(k, 0, -1))  # ties: nearer wins
    nearest = y[idx[:, 0]]
    x = np.asarray(x, dtype=np.float32)
    clusters = KMeans(n_clusters=len(subjects), n_init=10, random_state=seed).fit_predict(x)
    return {
        "knn_accuracy": float(np.mean(votes.argmax(1) == y)),
        "silhouette": float(silhouette_score(u, y, metric="cosine")),
        "v_measure": clustering_v_measure(x, y, runs=runs, sample_size=len(x), seed=seed),
        "ari": float(adjusted_rand_score(y, clusters)),
        "nn_confusion": float(np.mean(nearest != y)),
        "subjects": [str(s) for s in subjects],
        "confusion": confusion_matrix(y, nearest, labels=range(len(subjects)), normalize="true").tolist(),
    }


@dataclass
class View:
    """One set of vectors to analyse: a name, the vectors, and the subject labels (None: anisotropy only)."""

    name: str
    vectors: np.ndarray
    labels: Sequence | None = None
    metrics: dict = field(default_factory=dict)

    def analyze(self, **kwargs: int) -> View:
        """Fill ``metrics`` with the anisotropy figures and, with labels, the separability figures.

        ``kwargs`` (``k``, ``runs``, ``seed``) go to :func:`separability`; returns ``self``.
        """
        self.metrics = anisotropy(self.vectors)
        if self.labels is not None:
            self.metrics.update(separability(self.vectors, self.labels, **kwargs))
        return self


@torch.no_grad()
def bert_views(
    bert: BertTransformer, texts: list[str], batch_size: int = 32, max_tokens: int = 5000, seed: int = 0
) -> dict:
    """What a raw :class:`~st_bertapprox.modules.bert.BertTransformer` gives for ``texts``, before any pooling head.

    Returns:
        ``{"cls": (N, C) last-layer [CLS] vectors, "mean": (N, C) mean of the last layer's token vectors (padding
        excluded), "static": (N, C) mean of the input word embeddings (the table rows of the text's word pieces),
        "tokens": (<= max_tokens, C) a seeded sample of the individual last-layer token vectors,
        "table": (V, C) the input word-embedding table}``.
    """
    was_training = bert.training
    bert.eval()
    out = {"cls": [], "mean": [], "static": [], "tokens": []}
    for start in range(0, len(texts), batch_size):
        features = bert.preprocess(texts[start : start + batch_size])
        ids, mask = features["input_ids"], features["attention_mask"]
        hidden, _ = bert.bert(ids, mask, features.get("token_type_ids"))  # (B, T, C)
        m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        words = bert.bert.embeddings.word_embeddings(ids)  # (B, T, C)
        out["cls"].append(hidden[:, 0])
        out["mean"].append((hidden * m).sum(1) / m.sum(1))
        out["static"].append((words * m).sum(1) / m.sum(1))
        out["tokens"].append(hidden[mask.bool()])  # (n_tokens, C)
    bert.train(was_training)
    views = {name: torch.cat(parts).float().numpy() for name, parts in out.items()}
    rng = np.random.default_rng(seed)
    if len(views["tokens"]) > max_tokens:
        views["tokens"] = views["tokens"][np.sort(rng.choice(len(views["tokens"]), max_tokens, replace=False))]
    views["table"] = bert.bert.embeddings.word_embeddings.weight.detach().float().numpy()
    return views


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def markdown_table(views: list[View]) -> str:
    """One row per view, every anisotropy and separability column (– where a view has no labels)."""
    keys = ANISOTROPY + SEPARABILITY
    lines = ["| vectors | " + " | ".join(COLUMNS[k] for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for v in views:
        lines.append(f"| {v.name} | " + " | ".join(_fmt(v.metrics.get(k)) for k in keys) + " |")
    return "\n".join(lines)


def worst_confusion(metrics: dict) -> str:
    """The most confused pair of subjects: ``"Business -> Sci/Tech 0.21"``."""
    c = np.array(metrics["confusion"])
    np.fill_diagonal(c, -1)
    i, j = np.unravel_index(c.argmax(), c.shape)
    return f"{metrics['subjects'][i]} -> {metrics['subjects'][j]} {c[i, j]:.2f}"


def plot_pca(views: list[View], path: str | os.PathLike, title: str = "", ncols: int | None = None) -> str:
    """A PNG with one PCA panel per labelled view: points coloured by subject, the view's figures in its title.

    Each panel is the 2-D PCA of the view's unit vectors (cosine geometry); colours are shared by all panels;
    ``ncols`` panels a row (default: 2 for 2 or 4 panels, else 3). Written atomically; returns the path.
    """
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend
    from matplotlib.lines import Line2D
    from sklearn.decomposition import PCA

    from st_bertapprox.modules.io import atomic_path

    views = [v for v in views if v.labels is not None]
    if not views:
        raise ValueError("plot_pca needs at least one view with labels.")
    subjects = sorted({str(s) for s in views[0].labels})
    colours = {s: f"C{i % 10}" for i, s in enumerate(subjects)}
    ncols = min(ncols or (2 if len(views) in (2, 4) else 3), len(views))
    nrows = -(-len(views) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 4.4 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, view in zip(axes, views):
        xy = PCA(n_components=2, random_state=0).fit_transform(_unit(view.vectors))
        labels = np.array([str(s) for s in view.labels])
        for s in subjects:
            ax.scatter(*xy[labels == s].T, s=7, alpha=0.65, c=colours[s], linewidths=0)
        m = view.metrics
        figures = [f"kNN {m['knn_accuracy']:.2f}", f"V {m['v_measure']:.2f}"] if "knn_accuracy" in m else []
        figures += [f"NN other {m['nn_confusion']:.2f}"] if "nn_confusion" in m else []
        figures += [f"mean cos {m['mean_cosine']:.2f}"] if "mean_cosine" in m else []
        ax.set_title(f"{view.name}\n" + " · ".join(figures), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(views) :]:
        ax.set_axis_off()
    handles = [Line2D([], [], marker="o", ls="", color=colours[s], label=s) for s in subjects]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(subjects), frameon=False)
    if title:
        fig.suptitle(title)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def encode(model: SentenceTransformer, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """``model``'s embeddings of ``texts`` as a numpy array (N, D), without a progress bar."""
    return model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)


def base_views(base: str, test: Texts) -> list[View]:
    """The raw BERT of ``base`` (word-embedding table, token vectors, static mean, [CLS]) and the base sentence model.

    The base sentence model is mean pooling + Normalize, i.e. the mean of the last layer's token vectors normalised:
    all-MiniLM-L6-v2 itself (to 1e-7), so no separate "mean" row is needed.
    """
    bert = BertTransformer(base)
    model = SentenceTransformer(modules=[bert, Pooling(bert.get_embedding_dimension(), "mean"), Normalize()])
    raw = bert_views(model[0], test[0])
    return [
        View("BERT input word-embedding table (rows)", raw["table"]),
        View("BERT last-layer token vectors (sample)", raw["tokens"]),
        View("BERT input word embeddings, mean over text", raw["static"], test[1]),
        View("BERT [CLS] vector (last layer)", raw["cls"], test[1]),
        View("base sentence model (mean pooling)", encode(model, test[0]), test[1]),
    ]


def write_analysis(output_dir: str, views: list[View], runs: dict, data: LabelledDataConfig, seconds: float) -> dict:
    """``results.json``, ``results.md`` and ``pca.png`` (the labelled views) in ``output_dir``."""
    name = data.data if data.data in ("agnews", "bbc") else Path(data.data).stem
    table = markdown_table(views)
    confusions = [f"{v.name}: {worst_confusion(v.metrics)}" for v in views if "confusion" in v.metrics]
    png = plot_pca(views, os.path.join(output_dir, "pca.png"), title=f"{name}: {data.test_texts} held-out documents")
    results = {
        "data": asdict(data),
        "table": table,
        "most_confused": confusions,
        "views": {v.name: v.metrics for v in views},
        "runs": runs,
        "png": png,
        "seconds": seconds,
    }
    return save_results(output_dir, results, table)
