"""Curves over training: the history ``fit`` returns, and learning-rate schedules."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from helpers.plot.figure import new_figure, pretty_name
from helpers.tensors import to_numpy

__all__ = ["plot_history", "plot_lr_schedule"]

History = Mapping[str, Sequence[float]]

#: Keys of ``fit``'s history that are bookkeeping rather than curves to compare.
NOT_METRICS = frozenset({"epoch", "step", "lr", "seconds"})
#: Words in a metric's name that mean smaller is better (to star the best validation epoch).
LOWER_IS_BETTER = ("loss", "error", "perplexity", "ppl", "mae", "mse", "rmse", "cer", "wer")


def _series(history: History, quantity: str) -> list[tuple[str, str]]:
    """The (history key, legend label) pairs that hold ``quantity``."""
    pairs = [(f"train_{quantity}", "train"), (f"val_{quantity}", "validation")]
    found = [(key, label) for key, label in pairs if len(history.get(key, [])) > 0]
    if not found and len(history.get(quantity, [])) > 0:
        found = [(quantity, quantity)]
    return found


def _default_quantities(history: History) -> list[str]:
    """Every ``train_<m>``/``val_<m>`` quantity, loss first; else every non-bookkeeping key."""
    names: list[str] = []
    for key in history:
        for prefix in ("train_", "val_"):
            if key.startswith(prefix) and key.removeprefix(prefix) not in names:
                names.append(key.removeprefix(prefix))
    if not names:
        return [k for k in history if k not in NOT_METRICS and len(history[k]) > 0]
    return (["loss"] if "loss" in names else []) + [n for n in names if n != "loss"]


def _quantities(history: History, metrics: Sequence[str] | None) -> list[str]:
    """The quantities to draw, one panel each, checked against the history."""
    if not isinstance(history, Mapping):
        raise TypeError(
            f"history must be a dict of lists (fit's return value), got {type(history).__name__}."
        )
    if not any(len(v) > 0 for k, v in history.items() if k not in NOT_METRICS):
        raise ValueError(
            "history is empty: it has no recorded values. Train for at least one epoch first."
        )
    if metrics is None:
        quantities = _default_quantities(history)
    else:
        loss = ["loss"] if _series(history, "loss") else []
        quantities = loss + [m for m in metrics if m != "loss"]
    for q in quantities:
        if not _series(history, q):
            raise KeyError(
                f"history has no values for {q!r} (looked for train_{q}, val_{q}, "
                f"{q}); keys: {', '.join(sorted(history))}."
            )
    return quantities


def _star_best(ax: Axes, x: np.ndarray, y: np.ndarray, quantity: str, x_label: str) -> None:
    """Mark the best validation value: the lowest for losses and errors, else the highest."""
    lower = any(word in quantity.lower() for word in LOWER_IS_BETTER)
    best = int(np.nanargmin(y) if lower else np.nanargmax(y))
    ax.plot(
        [x[best]],
        [y[best]],
        marker="*",
        markersize=14,
        color="gold",
        markeredgecolor="black",
        linestyle="none",
        label=f"best val ({x_label} {x[best]:g}: {y[best]:.3g})",
    )


def plot_history(
    history: History,
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
    quantities = _quantities(history, metrics)
    epochs = list(history.get("epoch", []))
    label = x_label or "epoch"
    fig, axes = new_figure(1, len(quantities), figsize=figsize or (5 * len(quantities), 3.8))
    for ax, q in zip(axes[0], quantities):
        for key, legend in _series(history, q):
            y = np.asarray(history[key], dtype=float)
            x = np.asarray(epochs if len(epochs) == len(y) else range(1, len(y) + 1), dtype=float)
            ax.plot(x, y, marker="o" if len(y) <= 30 else None, markersize=4, label=legend)
            if mark_best and key.startswith("val_") and np.isfinite(y).any():
                _star_best(ax, x, y, q, label)
        ax.set(title=pretty_name(q), xlabel=label, ylabel=q)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "Training history")
    return fig


def _scheduled_lrs(
    scheduler_factory: Callable[[torch.optim.Optimizer], Any], steps: Any, lr: float
) -> tuple[list[float], str]:
    """The learning rate of each of ``steps`` steps of a throwaway scheduler, and its name."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(
            f"steps must be a positive int when scheduler_factory is given, got {steps!r}."
        )
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = scheduler_factory(optimizer)
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values, type(scheduler).__name__


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
    if (lrs is None) == (scheduler_factory is None):
        raise ValueError(
            "pass either lrs (a list of learning rates) or scheduler_factory "
            "with steps, not both or neither."
        )
    if scheduler_factory is not None:
        values, name = _scheduled_lrs(scheduler_factory, steps, lr)
    else:
        values, name = [float(v) for v in to_numpy(lrs, "lrs").ravel()], ""
        if not values:
            raise ValueError("lrs is empty: record at least one learning rate.")
    y = np.asarray(values, dtype=float)
    x = np.arange(len(y)) if x_label == "step" else np.arange(1, len(y) + 1)
    fig, axes = new_figure(figsize=(7, 3.8))
    ax = axes[0, 0]
    ax.plot(x, y, marker="o" if len(y) <= 30 else None, markersize=4)
    peak = int(np.argmax(y))
    ax.plot([x[peak]], [y[peak]], marker="o", color="tab:red", linestyle="none")
    ax.annotate(
        f"peak {y[peak]:.3g} at {x_label} {x[peak]}",
        (x[peak], y[peak]),
        textcoords="offset points",
        xytext=(8, -14),
    )
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel=x_label, ylabel="learning rate")
    ax.set_title(title or ("Learning-rate schedule" + (f" ({name})" if name else "")))
    ax.grid(alpha=0.3)
    return fig
