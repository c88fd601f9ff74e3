"""How well classes are told apart: confusion matrices, and embeddings projected to 2-D."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.plot.figure import new_figure
from helpers.tensors import to_numpy

__all__ = ["plot_confusion_matrix", "plot_embeddings"]


def _classes(t: np.ndarray, p: np.ndarray, names: list[str]) -> list[Any]:
    """The values that stand for the classes (indices or label strings), checked against t, p."""
    seen = np.unique(np.concatenate([t, p]))
    if t.dtype.kind in "iu" and p.dtype.kind in "iu":
        allowed = list(range(len(names)))
        bad = sorted(set(seen.tolist()) - set(allowed))
        if bad:
            raise ValueError(
                f"class indices {bad} are outside 0..{len(names) - 1} for labels "
                f"{names}; pass one name per class."
            )
        return allowed
    bad = sorted(set(map(str, seen)) - set(map(str, names)))
    if bad:
        raise ValueError(f"values {bad} are not in labels {names}.")
    return names


def _own_or_new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure with one subplot."""
    if ax is not None:
        return ax.figure, ax
    fig, axes = new_figure(figsize=figsize)
    return fig, axes[0, 0]


def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[str],
    normalize: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
    *,
    cmap: str = "Blues",
) -> Figure:
    """A confusion matrix as a seaborn heatmap: rows are the true classes, columns the predicted
    ones, so everything off the diagonal is a mistake and shows which classes get confused.
    ``y_true``/``y_pred`` hold class indices ``0..len(labels)-1`` (or the label strings).
    ``normalize=True`` divides each row by its total, so the diagonal is each class's recall.
    Pass ``ax`` to draw into an existing subplot (e.g. counts and normalised side by side).

    Example::

        fig = plot_confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], labels=["negative", "positive"])
    """
    from sklearn.metrics import confusion_matrix  # scikit-learn takes seconds to import

    t, p = to_numpy(y_true, "y_true").ravel(), to_numpy(y_pred, "y_pred").ravel()
    if len(t) != len(p):
        raise ValueError(
            f"y_true has {len(t)} values but y_pred has {len(p)}; they must pair up one to one."
        )
    if len(t) == 0:
        raise ValueError("y_true and y_pred are empty: there is nothing to count.")
    names = list(labels)
    cm = confusion_matrix(
        t, p, labels=_classes(t, p, names), normalize="true" if normalize else None
    )
    side = max(4.0, 0.6 * len(names) + 2.5)
    fig, ax = _own_or_new_axes(ax, figsize=(side + 1, side))
    sns.heatmap(
        cm,
        annot=True,
        fmt=".2f" if normalize else "d",
        cmap=cmap,
        square=True,
        xticklabels=names,
        yticklabels=names,
        vmin=0,
        vmax=1 if normalize else None,
        cbar_kws={"label": "fraction of the true class" if normalize else "count"},
        ax=ax,
    )
    ax.set(xlabel="predicted label", ylabel="true label")
    ax.tick_params(axis="y", labelrotation=0)
    kind = "row-normalised: diagonal = recall" if normalize else "counts"
    accuracy = float(np.mean(t == p))
    ax.set_title(
        title or f"Confusion matrix ({kind})\naccuracy {accuracy:.3f} on {len(t)} examples"
    )
    return fig


def _project(
    x: np.ndarray, method: str, seed: int, perplexity: float | None
) -> tuple[np.ndarray, tuple[str, str], str]:
    """``x`` projected to 2-D, the two axis labels and the method's display name."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    kind = method.lower().replace("-", "").replace("_", "")
    if kind == "pca":
        pca = PCA(n_components=2, random_state=seed)
        xy = pca.fit_transform(x)
        ratio = pca.explained_variance_ratio_
        return xy, (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%} of variance)"), "PCA"
    if kind == "tsne":
        perp = perplexity if perplexity is not None else float(min(30.0, (len(x) - 1) / 3))
        xy = TSNE(n_components=2, perplexity=perp, random_state=seed, init="pca").fit_transform(x)
        return xy, ("t-SNE 1", "t-SNE 2"), "t-SNE"
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")


def _label_name(value: Any, label_names: Sequence[str] | None, integer: bool) -> str:
    """The legend name of one label value."""
    if label_names is None or not integer:
        return str(value)
    if not 0 <= int(value) < len(label_names):
        raise ValueError(f"label {value} has no name in label_names (length {len(label_names)}).")
    return label_names[int(value)]


def plot_embeddings(
    embeddings: Any,
    labels: Any,
    label_names: Sequence[str] | None = None,
    method: str = "pca",
    title: str | None = None,
    seed: int = 0,
    *,
    perplexity: float | None = None,
    ax: Axes | None = None,
    alpha: float = 0.7,
) -> Figure:
    """High-dimensional vectors (sentence embeddings, hidden states) projected to 2-D with
    scikit-learn's PCA or t-SNE and scattered, one colour per label, so you can see whether the
    classes separate. PCA keeps global distances and shows the variance each axis explains;
    t-SNE (``method="tsne"``, seeded by ``seed``) keeps neighbourhoods, not distances.

    Example::

        fig = plot_embeddings(sentence_vectors, labels, label_names=["negative", "positive"])
    """
    x = to_numpy(embeddings, "embeddings").astype(float)
    y = to_numpy(labels, "labels").ravel()
    if x.ndim != 2:
        raise ValueError(
            f"embeddings must be (N, D), one vector per row, got shape {tuple(x.shape)}."
        )
    if len(y) != len(x):
        raise ValueError(f"{len(x)} embeddings but {len(y)} labels; give one label per row.")
    if len(x) < 3 or x.shape[1] < 2:
        raise ValueError(
            f"need at least 3 vectors of dimension >= 2 to project, got shape {tuple(x.shape)}."
        )
    xy, axis_labels, shown = _project(x, method, seed, perplexity)
    fig, ax = _own_or_new_axes(ax, figsize=(6.5, 5))
    for value in np.unique(y):
        mask = y == value
        name = _label_name(value, label_names, integer=y.dtype.kind in "iu")
        ax.scatter(xy[mask, 0], xy[mask, 1], s=18, alpha=alpha, label=f"{name} ({mask.sum()})")
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1])
    ax.set_title(
        title or f"{len(x)} embeddings of dimension {x.shape[1]}, projected to 2-D with {shown}"
    )
    ax.legend(title="label")
    ax.grid(alpha=0.3)
    return fig
