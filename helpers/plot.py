"""Every plot the course draws more than once: training curves, confusion matrices, image grids,
learning-rate schedules, attention maps, embedding projections, weight and gradient diagnostics,
and a torchinfo model summary.

Each function returns a ``matplotlib.figure.Figure`` with a title and labelled axes and never
calls ``plt.show()``. In a notebook, the recommended pattern is to **assign the figure and end
the cell there**, so the figure can still be saved or inspected afterwards::

    from helpers.plot import plot_history
    fig = plot_history(history)        # shown once, when the cell ends

Every other habit also shows the figure exactly once (the figures are ``CourseFigure`` objects, which
take themselves back from the inline backend when a cell echoes them): a bare
``plot_history(history)``, ``fig = ...`` followed by ``fig``, or ``fig`` again in a later cell.
Change a figure in the cell that creates it (``fig = plot_history(h); fig.axes[0].set_ylim(0, 1)``).
In a script call ``plt.show()`` or ``fig.savefig(path)`` yourself, and ``plt.close(fig)`` when
you draw many. Inputs may be torch tensors (any device, with or without gradients) or NumPy arrays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn
from torchinfo import ModelStatistics, summary

__all__ = [
    "plot_history",
    "plot_confusion_matrix",
    "show_images",
    "plot_lr_schedule",
    "plot_attention",
    "plot_embeddings",
    "plot_weight_histograms",
    "plot_grad_flow",
    "summarize_model",
]

#: Keys of ``fit``'s history that are bookkeeping rather than curves to compare.
_NOT_METRICS = {"epoch", "step", "lr", "seconds"}
#: Metric names where smaller is better (used to mark the best validation epoch).
_LOWER_IS_BETTER = ("loss", "error", "perplexity", "ppl", "mae", "mse", "rmse", "cer", "wer")


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """A NumPy copy of a tensor (any device, any dtype, with or without grad), array or list."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a tensor, a NumPy array or a list, got {type(x).__name__}.") from err


def _pretty(name: str) -> str:
    """'accuracy' -> 'Accuracy', 'f1_macro' -> 'F1 macro'."""
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def _named_tensors(source: Any, what: str) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) pairs from a module, a ``named_parameters()`` iterator or a state dict."""
    if isinstance(source, nn.Module):
        return list(source.named_parameters())
    if isinstance(source, Mapping):
        pairs = list(source.items())
    else:
        pairs = list(source)
    for item in pairs:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], torch.Tensor)):
            raise TypeError(
                f"{what} must be a model, model.named_parameters() or a state dict of tensors; "
                f"found the item {item!r:.80}."
            )
    return pairs


class CourseFigure(Figure):
    """The ``Figure`` every plot here returns. It displays exactly once in Jupyter: echoing it
    as a cell's result (or ``display(fig)``) shows it and hands it back from the inline backend,
    which would otherwise draw it a second time when the cell ends."""

    def __repr__(self) -> str:  # "<Figure size ...>", as nbval_sanitize.cfg expects
        return super().__repr__().replace(type(self).__name__, "Figure", 1)

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display
        from matplotlib._pylab_helpers import Gcf

        shell = get_ipython()
        if shell is None:
            return
        formatter = shell.display_formatter
        data, metadata = {}, {}
        for mime, format_one in formatter.formatters.items():
            if mime not in formatter.active_types:
                continue
            out = format_one(self)
            if isinstance(out, tuple):  # (data, metadata), e.g. retina PNGs
                out, metadata[mime] = out
            if out is not None:
                data[mime] = out
        display(data, metadata=metadata, raw=True)
        held = any(m.canvas.figure is self for m in Gcf.get_all_fig_managers())
        if held and "inline" in matplotlib.get_backend():
            plt.close(self)


def _subplots(*args: Any, **kwargs: Any) -> tuple[CourseFigure, Any]:
    """``plt.subplots`` that makes a ``CourseFigure`` with constrained layout."""
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(*args, FigureClass=CourseFigure, **kwargs)


# --------------------------------------------------------------------------- training curves


def _series(history: Mapping[str, Sequence[float]], quantity: str) -> list[tuple[str, str]]:
    """The (history key, legend label) pairs that hold ``quantity``."""
    pairs = [(f"train_{quantity}", "train"), (f"val_{quantity}", "validation")]
    found = [(k, lab) for k, lab in pairs if k in history and len(history[k]) > 0]
    if not found and quantity in history and len(history[quantity]) > 0:
        found = [(quantity, quantity)]
    return found


def plot_history(
    history: Mapping[str, Sequence[float]],
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    *,
    x_label: str | None = None,
    mark_best: bool = True,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Training curves from ``fit``'s history: one subplot per quantity (loss first, then each
    metric), train and validation on the same axes so that overfitting shows as the gap between
    them. ``metrics`` defaults to every ``train_<m>``/``val_<m>`` pair in the history; a plain
    key such as ``"lr"`` can be named too. The best validation epoch is starred. A bare
    ``{"train_loss": [...]}`` works as well (x = 1..n; pass ``x_label="step"`` for per-step losses).

    Example::

        fig = plot_history({"train_loss": [0.9, 0.5], "val_loss": [1.0, 0.7],
                            "train_accuracy": [0.6, 0.8], "val_accuracy": [0.55, 0.7]})
    """
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a dict of lists (fit's return value), got {type(history).__name__}.")
    if not any(len(v) > 0 for k, v in history.items() if k not in _NOT_METRICS):
        raise ValueError("history is empty: it has no recorded values. Train for at least one epoch first.")
    if metrics is None:
        names: list[str] = []
        for key in history:
            for prefix in ("train_", "val_"):
                if key.startswith(prefix) and key[len(prefix):] not in names:
                    names.append(key[len(prefix):])
        quantities = (["loss"] if "loss" in names else []) + [n for n in names if n != "loss"]
        if not quantities:
            quantities = [k for k in history if k not in _NOT_METRICS and len(history[k]) > 0]
    else:
        quantities = (["loss"] if _series(history, "loss") else []) + [m for m in metrics if m != "loss"]
    for q in quantities:
        if not _series(history, q):
            known = ", ".join(sorted(history))
            raise KeyError(f"history has no values for {q!r} (looked for train_{q}, val_{q}, {q}); keys: {known}.")

    epochs = list(history.get("epoch", []))
    label = x_label or "epoch"
    fig, axes = _subplots(1, len(quantities), figsize=figsize or (5 * len(quantities), 3.8), squeeze=False)
    for ax, q in zip(axes[0], quantities):
        for key, legend in _series(history, q):
            y = np.asarray(history[key], dtype=float)
            x = np.asarray(epochs if len(epochs) == len(y) else range(1, len(y) + 1), dtype=float)
            ax.plot(x, y, marker="o" if len(y) <= 30 else None, markersize=4, label=legend)
            if mark_best and key.startswith("val_") and np.isfinite(y).any():
                lower = any(word in q.lower() for word in _LOWER_IS_BETTER)
                best = int(np.nanargmin(y) if lower else np.nanargmax(y))
                ax.plot([x[best]], [y[best]], marker="*", markersize=14, color="gold",
                        markeredgecolor="black", linestyle="none",
                        label=f"best val ({label} {x[best]:g}: {y[best]:.3g})")
        ax.set(title=_pretty(q), xlabel=label, ylabel=q)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "Training history")
    return fig


# --------------------------------------------------------------------------- classification


def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[str],
    normalize: bool = False,
    title: str | None = None,
    ax: plt.Axes | None = None,
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
    from sklearn.metrics import confusion_matrix

    t, p = _to_numpy(y_true, "y_true").ravel(), _to_numpy(y_pred, "y_pred").ravel()
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} values but y_pred has {len(p)}; they must pair up one to one.")
    if len(t) == 0:
        raise ValueError("y_true and y_pred are empty: there is nothing to count.")
    names = list(labels)
    if t.dtype.kind in "iu" and p.dtype.kind in "iu":
        allowed = list(range(len(names)))
        bad = sorted(set(np.unique(np.concatenate([t, p])).tolist()) - set(allowed))
        if bad:
            raise ValueError(f"class indices {bad} are outside 0..{len(names) - 1} for labels {names}; "
                             "pass one name per class.")
    else:
        allowed = names
        bad = sorted(set(map(str, np.unique(np.concatenate([t, p])))) - set(map(str, names)))
        if bad:
            raise ValueError(f"values {bad} are not in labels {names}.")
    cm = confusion_matrix(t, p, labels=allowed, normalize="true" if normalize else None)
    accuracy = float(np.mean(t == p))
    if ax is None:
        side = max(4.0, 0.6 * len(names) + 2.5)
        fig, ax = _subplots(figsize=(side + 1, side))
    else:
        fig = ax.figure
    sns.heatmap(cm, annot=True, fmt=".2f" if normalize else "d", cmap=cmap, square=True,
                xticklabels=names, yticklabels=names, vmin=0, vmax=1 if normalize else None,
                cbar_kws={"label": "fraction of the true class" if normalize else "count"}, ax=ax)
    ax.set(xlabel="predicted label", ylabel="true label")
    ax.tick_params(axis="y", labelrotation=0)
    kind = "row-normalised: diagonal = recall" if normalize else "counts"
    ax.set_title(title or f"Confusion matrix ({kind})\naccuracy {accuracy:.3f} on {len(t)} examples")
    return fig


# --------------------------------------------------------------------------- images


def _image_list(images: Any) -> list[np.ndarray]:
    """HxW or HxWxC float/uint8 arrays from a batch tensor/array or a list of images."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        arr = _to_numpy(images, "images")
        if arr.ndim == 4:
            # Tensors are channels-first; NumPy arrays may be either.
            if isinstance(images, torch.Tensor) or (arr.shape[1] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4)):
                arr = arr.transpose(0, 2, 3, 1)
        elif arr.ndim != 3:
            raise ValueError(f"images must have shape (N, C, H, W) or (N, H, W), got {tuple(arr.shape)}.")
        items = list(arr)
    else:
        items = []
        for i, img in enumerate(images):
            a = _to_numpy(img, f"images[{i}]")  # PIL images convert through __array__
            if isinstance(img, torch.Tensor) and a.ndim == 3:
                a = a.transpose(1, 2, 0)
            items.append(a)
    out = []
    for i, a in enumerate(items):
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
            raise ValueError(f"image {i} has shape {a.shape}; expected H x W, or 1, 3 or 4 channels.")
        out.append(a)
    return out


def _names(values: Any, class_names: Sequence[str] | None, what: str, n: int) -> list[str] | None:
    if values is None:
        return None
    vals = _to_numpy(values, what).ravel().tolist()
    if len(vals) < n:
        raise ValueError(f"{what} has {len(vals)} entries but there are {n} images; give one per image.")
    if class_names is None:
        return [str(v) for v in vals[:n]]
    try:
        return [class_names[int(v)] if not isinstance(v, str) else v for v in vals[:n]]
    except IndexError:
        raise ValueError(f"{what} holds a class index outside 0..{len(class_names) - 1} (class_names).") from None


def show_images(
    images: Any,
    labels: Any = None,
    preds: Any = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    max_images: int = 64,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """A grid of images with the true label (and the prediction, red when wrong) under each.
    ``images`` is a tensor ``(N, C, H, W)`` or ``(N, H, W)``, a NumPy array, or a list of PIL
    images or ``(C, H, W)`` tensors. ``labels``/``preds`` are class indices (named through
    ``class_names``) or strings. Pass the ``mean``/``std`` of a ``Normalize`` transform to undo it.
Single-channel images are stretched to their own range unless ``vmin``/``vmax`` fix the range
of ``cmap`` for every panel (do that to compare panels, e.g. feature maps scaled to 0..1).

    Example::

        images, labels = next(iter(test_loader))
        fig = show_images(images[:16], labels[:16], preds[:16], class_names=["circle", "square"])
    """
    pics = _image_list(images)[:max_images]
    n = len(pics)
    if n == 0:
        raise ValueError("images is empty: pass at least one image.")
    true_names = _names(labels, class_names, "labels", n)
    pred_names = _names(preds, class_names, "preds", n)
    nrows, ncols = _grid(n, ncols)
    fig, axes = _subplots(nrows, ncols, figsize=(1.8 * ncols, 2.1 * nrows), squeeze=False)
    correct = 0
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            fig.delaxes(ax)
            continue
        img = pics[i].astype(float) if pics[i].dtype.kind == "f" else pics[i]
        if mean is not None and std is not None:
            img = img * np.asarray(std, dtype=float) + np.asarray(mean, dtype=float)
        if img.dtype.kind == "f":
            img = np.clip(img, 0.0, 1.0)
        if img.ndim == 2:
            ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
        else:
            ax.imshow(img)
        ax.set_xticks([])
        ax.set_yticks([])
        parts, color = [], "black"
        if true_names is not None:
            parts.append(true_names[i] if pred_names is None else f"true: {true_names[i]}")
        if pred_names is not None:
            parts.append(f"pred: {pred_names[i]}")
            if true_names is not None:
                right = pred_names[i] == true_names[i]
                correct += right
                color = "green" if right else "red"
        ax.set_xlabel("\n".join(parts), color=color, fontsize=9)
    if title is None:
        title = f"{n} images"
        if true_names is not None and pred_names is not None:
            title = f"Predictions: {correct}/{n} correct (wrong ones in red)"
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- optimisation


def plot_lr_schedule(
    lrs: Sequence[float] | None = None,
    *,
    scheduler_factory: Callable[[torch.optim.Optimizer], Any] | None = None,
    steps: int | None = None,
    title: str | None = None,
    lr: float = 1e-3,
    x_label: str = "step",
    log_y: bool = False,
) -> Figure:
    """The learning rate at every step, either from a list you recorded (``history["lr"]``) or by
    stepping a throwaway scheduler: ``scheduler_factory(optimizer)`` receives an SGD optimizer
    with learning rate ``lr`` on one dummy parameter and is stepped ``steps`` times, so you can
    see a schedule (warm-up, decay, restarts) before training with it.

    Example::

        fig = plot_lr_schedule(scheduler_factory=lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=1e-3, total_steps=100), steps=100)
    """
    name = ""
    if (lrs is None) == (scheduler_factory is None):
        raise ValueError("pass either lrs (a list of learning rates) or scheduler_factory with steps, not both or neither.")
    if scheduler_factory is not None:
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive int when scheduler_factory is given, got {steps!r}.")
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
        scheduler = scheduler_factory(optimizer)
        name = type(scheduler).__name__
        values = []
        for _ in range(steps):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    else:
        values = [float(v) for v in _to_numpy(lrs, "lrs").ravel()]
        if not values:
            raise ValueError("lrs is empty: record at least one learning rate.")
    y = np.asarray(values, dtype=float)
    x = np.arange(len(y)) if x_label == "step" else np.arange(1, len(y) + 1)
    fig, ax = _subplots(figsize=(7, 3.8))
    ax.plot(x, y, marker="o" if len(y) <= 30 else None, markersize=4)
    peak = int(np.argmax(y))
    ax.plot([x[peak]], [y[peak]], marker="o", color="tab:red", linestyle="none")
    ax.annotate(f"peak {y[peak]:.3g} at {x_label} {x[peak]}", (x[peak], y[peak]),
                textcoords="offset points", xytext=(8, -14))
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel=x_label, ylabel="learning rate")
    ax.set_title(title or (f"Learning-rate schedule ({name})" if name else "Learning-rate schedule"))
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------- transformers


def plot_attention(
    attention: Any,
    tokens: Sequence[str],
    heads: Sequence[int] | None = None,
    title: str | None = None,
    *,
    layer: int | None = None,
    ncols: int = 4,
    cmap: str = "viridis",
) -> Figure:
    """One layer's attention weights for one sentence, one heatmap per head: row *i* shows how
    much token *i* (the query) attends to every token (the keys). ``attention`` is
    ``(heads, seq, seq)``; a ``(1, heads, seq, seq)`` slice of a Hugging Face ``outputs.attentions[l]``
    or a single ``(seq, seq)`` map works too. ``tokens`` labels both axes; ``heads`` picks heads.

    Example::

        out = model(**batch, output_attentions=True)
        fig = plot_attention(out.attentions[0][0], tokenizer.convert_ids_to_tokens(batch["input_ids"][0]))
    """
    att = _to_numpy(attention, "attention").astype(float)
    if att.ndim == 4:
        if att.shape[0] != 1:
            raise ValueError(f"attention has a batch of {att.shape[0]} sentences {att.shape}; "
                             "pick one, e.g. outputs.attentions[layer][i].")
        att = att[0]
    if att.ndim == 2:
        att = att[None]
    if att.ndim != 3 or att.shape[1] != att.shape[2]:
        raise ValueError(f"attention must have shape (heads, seq, seq), got {tuple(att.shape)}.")
    tokens = [str(t) for t in tokens]
    if len(tokens) != att.shape[-1]:
        raise ValueError(f"{len(tokens)} tokens but the attention maps are {att.shape[-1]} x {att.shape[-1]}; "
                         "pass the tokens of this sentence (padding included, or slice the padding off both).")
    chosen = list(range(att.shape[0])) if heads is None else [int(h) for h in heads]
    if not chosen or any(not 0 <= h < att.shape[0] for h in chosen):
        raise ValueError(f"heads must be indices in 0..{att.shape[0] - 1}, got {list(heads or [])}.")
    nrows, ncols = _grid(len(chosen), ncols)
    side = max(3.0, 0.35 * len(tokens) + 1.5)
    fig, axes = _subplots(nrows, ncols, figsize=(side * ncols + 0.8, side * nrows), squeeze=False)
    vmax = float(att[chosen].max()) or 1.0
    for i, ax in enumerate(axes.ravel()):
        if i >= len(chosen):
            fig.delaxes(ax)
            continue
        sns.heatmap(att[chosen[i]], ax=ax, xticklabels=tokens, yticklabels=tokens, vmin=0.0, vmax=vmax,
                    cmap=cmap, square=True, cbar=False)
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
        ax.set(title=f"head {chosen[i]}", xlabel="key (attended to)", ylabel="query (attending)")
    fig.colorbar(axes.ravel()[0].collections[0], ax=[a for a in axes.ravel()[: len(chosen)]],
                 label="attention weight", shrink=0.8)
    where = f" in layer {layer}" if layer is not None else ""
    fig.suptitle(title or f"Attention weights{where}, one panel per head")
    return fig


def plot_embeddings(
    embeddings: Any,
    labels: Any,
    label_names: Sequence[str] | None = None,
    method: str = "pca",
    title: str | None = None,
    seed: int = 0,
    *,
    perplexity: float | None = None,
    ax: plt.Axes | None = None,
    alpha: float = 0.7,
) -> Figure:
    """High-dimensional vectors (sentence embeddings, hidden states) projected to 2-D with
    scikit-learn's PCA or t-SNE and scattered, one colour per label, so you can see whether the
    classes separate. PCA keeps global distances and shows the variance each axis explains;
    t-SNE (``method="tsne"``, seeded by ``seed``) keeps neighbourhoods, not distances.

    Example::

        fig = plot_embeddings(sentence_vectors, labels, label_names=["negative", "positive"])
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = _to_numpy(embeddings, "embeddings").astype(float)
    y = _to_numpy(labels, "labels").ravel()
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), one vector per row, got shape {tuple(x.shape)}.")
    if len(y) != len(x):
        raise ValueError(f"{len(x)} embeddings but {len(y)} labels; give one label per row.")
    if len(x) < 3 or x.shape[1] < 2:
        raise ValueError(f"need at least 3 vectors of dimension >= 2 to project, got shape {tuple(x.shape)}.")
    kind = method.lower().replace("-", "").replace("_", "")
    if kind == "pca":
        pca = PCA(n_components=2, random_state=seed)
        xy = pca.fit_transform(x)
        ratio = pca.explained_variance_ratio_
        axis_labels = (f"PC1 ({ratio[0]:.0%} of variance)", f"PC2 ({ratio[1]:.0%} of variance)")
        shown = "PCA"
    elif kind == "tsne":
        perp = perplexity if perplexity is not None else float(min(30.0, (len(x) - 1) / 3))
        xy = TSNE(n_components=2, perplexity=perp, random_state=seed, init="pca").fit_transform(x)
        axis_labels = ("t-SNE 1", "t-SNE 2")
        shown = "t-SNE"
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")
    if ax is None:
        fig, ax = _subplots(figsize=(6.5, 5))
    else:
        fig = ax.figure
    for value in np.unique(y):
        mask = y == value
        if label_names is not None and y.dtype.kind in "iu":
            if not 0 <= int(value) < len(label_names):
                raise ValueError(f"label {value} has no name in label_names (length {len(label_names)}).")
            name = label_names[int(value)]
        else:
            name = str(value)
        ax.scatter(xy[mask, 0], xy[mask, 1], s=18, alpha=alpha, label=f"{name} ({mask.sum()})")
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1])
    ax.set_title(title or f"{len(x)} embeddings of dimension {x.shape[1]}, projected to 2-D with {shown}")
    ax.legend(title="label")
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------- diagnostics


def _select(pairs: list[tuple[str, torch.Tensor]], layers: Sequence[str] | None, include_all: bool):
    """The tensors to plot: weight matrices (no biases, no 1-D norm scales) unless ``include_all``;
    ``layers`` keeps exact parameter names and the weights under module prefixes."""

    def is_weight(name: str, t: torch.Tensor) -> bool:
        return include_all or (t.ndim >= 2 and not name.endswith("bias"))

    if layers is None:
        return [(n, t) for n, t in pairs if is_weight(n, t)]
    missing = [l for l in layers if not any(n == l or n.startswith(l + ".") for n, _ in pairs)]
    if missing:
        raise KeyError(f"no parameter named {missing}; available: {', '.join(n for n, _ in pairs)}.")
    return [(n, t) for n, t in pairs
            if n in layers or (is_weight(n, t) and any(n.startswith(l + ".") for l in layers))]


def plot_weight_histograms(
    model_or_named_params: Any,
    layers: Sequence[str] | None = None,
    title: str | None = None,
    *,
    include_all: bool = False,
    bins: int = 50,
    ncols: int = 4,
) -> Figure:
    """One histogram per weight matrix, with its mean and standard deviation in the title: how
    initialisation scales with layer width, and how training moves (or fails to move) weights.
    Takes a model, ``model.named_parameters()`` or a state dict. Biases and 1-D (normalisation)
    tensors are skipped unless ``include_all=True``; ``layers`` names parameters or module prefixes.

    Example::

        fig = plot_weight_histograms(model, layers=["encoder.0", "head"])
    """
    pairs = _select(_named_tensors(model_or_named_params, "model_or_named_params"), layers, include_all)
    if not pairs:
        raise ValueError("no weight tensors to plot (only biases/1-D tensors?); pass include_all=True.")
    nrows, ncols = _grid(len(pairs), ncols)
    fig, axes = _subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= len(pairs):
            fig.delaxes(ax)
            continue
        name, tensor = pairs[i]
        values = _to_numpy(tensor, name).astype(float).ravel()
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_title(f"{name} {tuple(tensor.shape)}\nmean {values.mean():.3f}, std {values.std():.3f}", fontsize=9)
        ax.set(xlabel="weight value", ylabel="count")
    fig.suptitle(title or "Weight distributions per layer")
    return fig


def plot_grad_flow(
    named_parameters: Any,
    title: str | None = None,
    *,
    include_biases: bool = False,
) -> Figure:
    """Call after ``loss.backward()``: bars of the mean and the max absolute gradient of every
    weight, on a log scale, from the input layer (left) to the output (right). Bars shrinking
    towards the left mean vanishing gradients; a layer at zero gets no signal (frozen or
    disconnected); huge bars mean exploding gradients. Takes a model or ``model.named_parameters()``.

    Example::

        loss.backward()
        fig = plot_grad_flow(model.named_parameters())
    """
    pairs = [(n, p) for n, p in _named_tensors(named_parameters, "named_parameters")
             if p.requires_grad and p.grad is not None and (include_biases or not n.endswith("bias"))]
    if not pairs:
        raise ValueError("no parameter has a gradient: call loss.backward() before plot_grad_flow "
                         "(and do not zero the gradients in between).")
    names = [n for n, _ in pairs]
    grads = [p.grad.detach().abs().float() for _, p in pairs]
    means = np.array([g.mean().item() for g in grads])
    maxes = np.array([g.max().item() for g in grads])
    x = np.arange(len(names))
    fig, ax = _subplots(figsize=(max(6.0, 0.45 * len(names) + 2), 4.5))
    ax.bar(x, maxes, color="tab:cyan", alpha=0.6, label="max |grad|")
    ax.bar(x, means, color="tab:blue", alpha=0.9, width=0.5, label="mean |grad|")
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=90, fontsize=8)
    ax.set(xlabel="layer (parameter), input to output", ylabel="|gradient| (log scale)")
    ax.set_title(title or "Gradient flow: mean and max |grad| per layer")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return fig


def summarize_model(model: nn.Module, input_size: Any = None, input_data: Any = None, **kwargs: Any) -> ModelStatistics:
    """A torchinfo table of the model: every layer with its input and output shapes, parameter
    count and whether it trains, then the totals and the memory estimate. Returns torchinfo's
    ``ModelStatistics``; ``print`` it. Any torchinfo option can be passed (``depth=2``,
    ``dtypes=[torch.long]`` for token ids). Without input, only the parameter columns are shown.

    Example::

        print(summarize_model(model, input_size=(32, 1, 28, 28)))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summarize_model needs a torch.nn.Module, got {type(model).__name__}.")
    has_input = input_size is not None or input_data is not None
    options: dict[str, Any] = {
        "col_names": ("input_size", "output_size", "num_params", "trainable") if has_input
        else ("num_params", "trainable"),
        "row_settings": ("var_names",),
        "verbose": 0,
    }
    options.update(kwargs)
    stats = summary(model, input_size=input_size, input_data=input_data, **options)
    stats.__class__ = ModelSummary
    return stats


class ModelSummary(ModelStatistics):
    """torchinfo's ``ModelStatistics``, printed with units as "(M)" rather than "(Units.MEGABYTES)"
    (torchinfo 1.8 formats its unit enum with ``str()``, whose output changed in Python 3.11)."""

    def __repr__(self) -> str:
        return re.sub(r"\(Units\.(\w+)\)", lambda m: f"({_UNIT_SYMBOLS.get(m.group(1), m.group(1))})",
                      super().__repr__())


_UNIT_SYMBOLS = {"MEGABYTES": "M", "GIGABYTES": "G", "TERABYTES": "T"}
