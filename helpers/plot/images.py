"""Grids of images: a batch from a DataLoader, predictions, filters or feature maps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from helpers.plot.figure import grid_shape, new_figure
from helpers.tensors import to_numpy

__all__ = ["show_images"]


def _batch_as_list(images: torch.Tensor | np.ndarray) -> list[np.ndarray]:
    """The images of an ``(N, C, H, W)`` or ``(N, H, W)`` batch, channels last."""
    arr = to_numpy(images, "images")
    if arr.ndim == 4:
        # Tensors are channels-first; NumPy arrays may be either.
        channels_first = arr.shape[1] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4)
        if isinstance(images, torch.Tensor) or channels_first:
            arr = arr.transpose(0, 2, 3, 1)
    elif arr.ndim != 3:
        raise ValueError(
            f"images must have shape (N, C, H, W) or (N, H, W), got {tuple(arr.shape)}."
        )
    return list(arr)


def _image_list(images: Any) -> list[np.ndarray]:
    """HxW or HxWxC arrays from a batch tensor/array or a list of images."""
    if isinstance(images, (torch.Tensor, np.ndarray)):
        items = _batch_as_list(images)
    else:
        items = []
        for i, img in enumerate(images):
            a = to_numpy(img, f"images[{i}]")  # PIL images convert through __array__
            if isinstance(img, torch.Tensor) and a.ndim == 3:
                a = a.transpose(1, 2, 0)
            items.append(a)
    out = []
    for i, a in enumerate(items):
        if a.ndim == 3 and a.shape[-1] == 1:
            a = a[..., 0]
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
            raise ValueError(
                f"image {i} has shape {a.shape}; expected H x W, or 1, 3 or 4 channels."
            )
        out.append(a)
    return out


def _names(values: Any, class_names: Sequence[str] | None, what: str, n: int) -> list[str] | None:
    """One caption per image: the label strings, or class indices looked up in class_names."""
    if values is None:
        return None
    vals = to_numpy(values, what).ravel().tolist()
    if len(vals) < n:
        raise ValueError(
            f"{what} has {len(vals)} entries but there are {n} images; give one per image."
        )
    if class_names is None:
        return [str(v) for v in vals[:n]]
    try:
        return [v if isinstance(v, str) else class_names[int(v)] for v in vals[:n]]
    except IndexError:
        raise ValueError(
            f"{what} holds a class index outside 0..{len(class_names) - 1} (class_names)."
        ) from None


def _draw_image(
    ax: Axes,
    img: np.ndarray,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    cmap: str,
    vmin: float | None,
    vmax: float | None,
) -> None:
    """One image without ticks, its normalisation undone and floats clipped to [0, 1]."""
    if img.dtype.kind == "f":
        img = img.astype(float)
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


def _caption(ax: Axes, true: str | None, pred: str | None) -> bool:
    """Write the true label and the prediction under the image; True when they agree."""
    parts, color = [], "black"
    if true is not None:
        parts.append(true if pred is None else f"true: {true}")
    if pred is not None:
        parts.append(f"pred: {pred}")
        if true is not None:
            color = "green" if pred == true else "red"
    ax.set_xlabel("\n".join(parts), color=color, fontsize=9)
    return true is not None and pred == true


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
    ``class_names``) or strings. Pass the ``mean``/``std`` of a ``Normalize`` transform to undo
    it. Single-channel images are stretched to their own range unless ``vmin``/``vmax`` fix the
    range of ``cmap`` for every panel (do that to compare panels, e.g. feature maps in 0..1).

    Example::

        images, labels = next(iter(test_loader))
        fig = show_images(images[:16], labels[:16], preds[:16], class_names=["circle", "square"])
    """
    pics = _image_list(images)[:max_images]
    n = len(pics)
    if n == 0:
        raise ValueError("images is empty: pass at least one image.")
    true_names = _names(labels, class_names, "labels", n) or [None] * n
    pred_names = _names(preds, class_names, "preds", n) or [None] * n
    nrows, ncols = grid_shape(n, ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(1.8 * ncols, 2.1 * nrows))
    correct = 0
    for ax in axes.ravel()[n:]:
        fig.delaxes(ax)
    for ax, img, true, pred in zip(axes.ravel(), pics, true_names, pred_names):
        _draw_image(ax, img, mean, std, cmap, vmin, vmax)
        correct += _caption(ax, true, pred)
    if title is None:
        title = f"{n} images"
        if labels is not None and preds is not None:
            title = f"Predictions: {correct}/{n} correct (wrong ones in red)"
    fig.suptitle(title)
    return fig
