"""Callbacks: what ``fit`` does besides training, without touching the loop.

A callback is an object with up to five hooks that ``fit`` calls in this order::

    on_fit_start(model, history)            once (history is not empty after resume=)
      on_epoch_start(epoch, model)          every epoch
        on_step_end(step, loss)             after every optimiser step
      on_epoch_end(epoch, row, model)       after training and validation of the epoch
    on_fit_end(model, history)              once, also when training stopped early

``step`` counts optimiser steps from 1 over the whole fit; ``loss`` is that step's training
loss, a detached 0-d tensor still on the device (read it with ``.item()`` only when you need
the number: every read makes the CPU wait for the GPU). ``row`` is the epoch's line of the
history (``epoch``, ``train_loss``, ``val_loss``, metrics, ``lr``, ``seconds``). A hook that
returns ``True`` from ``on_fit_start`` or ``on_epoch_end`` asks ``fit`` to stop. Under
``torchrun`` only the main process calls the hooks.

Subclass :class:`Callback` and override the hooks you need; a plain function
``fn(epoch, row, model)`` is also accepted and called as ``on_epoch_end``. The course's own:
:class:`EarlyStopping`, :class:`ProgressBar` and :class:`LivePlot` here, and
``TensorBoardCallback`` and ``HistogramCallback`` in ``helpers.tb``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

__all__ = [
    "QUIET_ENV_VARS",
    "is_quiet",
    "Callback",
    "EarlyStopping",
    "ProgressBar",
    "LivePlot",
    "as_callbacks",
]

#: Environment variables that switch progress bars and live plots off (``make test``, CI).
QUIET_ENV_VARS: tuple[str, ...] = ("COURSE_QUIET", "CI")

History = Mapping[str, Sequence[float]]


def is_quiet() -> bool:
    """True when ``COURSE_QUIET`` or ``CI`` is set (to anything but ``""``, ``0``, ``false``,
    ``no``): then :class:`ProgressBar` and :class:`LivePlot` show nothing, so notebook outputs
    stay identical between runs."""
    return any(
        os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
        for name in QUIET_ENV_VARS
    )


class Callback:
    """The base class of every ``fit`` callback: each hook does nothing unless overridden.
    See the module docstring for when each hook runs and what it receives."""

    def on_fit_start(self, model: nn.Module, history: History) -> bool | None:
        """Before the first epoch (``history`` holds the resumed epochs, if any)."""

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        """Before the training pass of ``epoch`` (counted from 1)."""

    def on_step_end(self, step: int, loss: Tensor) -> None:
        """After optimiser step ``step`` (counted from 1 over the whole fit)."""

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> bool | None:
        """After the epoch's training and validation; return ``True`` to stop training."""

    def on_fit_end(self, model: nn.Module, history: History) -> None:
        """After the last epoch, also when a callback stopped training early."""


class _EpochFunction(Callback):
    """A plain function ``fn(epoch, row, model)`` used as an ``on_epoch_end`` hook."""

    def __init__(self, fn: Callable[[int, dict[str, float], nn.Module], Any]) -> None:
        self.fn = fn

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> bool | None:
        return self.fn(epoch, dict(row), model) is True


def as_callbacks(callbacks: Sequence[Callback | Callable]) -> list[Callback]:
    """``callbacks`` as :class:`Callback` objects: plain functions become ``on_epoch_end``
    hooks; anything else is refused with a hint."""
    out: list[Callback] = []
    for cb in callbacks:
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(_EpochFunction(cb))
        else:
            raise TypeError(
                f"callbacks must be Callback objects or functions fn(epoch, row, model); "
                f"got {type(cb).__name__}. Did you pass callbacks=HistogramCallback(...) "
                f"instead of callbacks=[HistogramCallback(...)]?"
            )
    return out


class EarlyStopping(Callback):
    """Stop ``fit`` when ``monitor`` (a history key, default ``val_loss``) has not improved by
    more than ``min_delta`` for ``patience`` epochs in a row. Keys with "loss" in their name are
    minimised, all others (accuracy, f1, ...) maximised. After ``resume=`` it continues from
    the resumed history, so a resumed run stops where an uninterrupted one would have.

    Example::

        fit(model, train_loader, val_loader, epochs=50, optimizer=optimizer,
            callbacks=[EarlyStopping(patience=3, monitor="val_accuracy")])
    """

    def __init__(
        self, patience: int = 3, min_delta: float = 0.0, monitor: str = "val_loss"
    ) -> None:
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience must be an int >= 1, got {patience!r}.")
        if not min_delta >= 0:
            raise ValueError(f"min_delta must be >= 0, got {min_delta!r}.")
        self.patience, self.min_delta, self.monitor = patience, float(min_delta), monitor
        self.values: list[float] = []

    def should_stop(self, values: Sequence[float]) -> bool:
        """True when the last ``patience`` values brought no improvement over the best before."""
        if len(values) <= self.patience:
            return False
        sign = 1.0 if "loss" in self.monitor else -1.0
        best_before = min(sign * v for v in values[: -self.patience])
        return all(sign * v >= best_before - self.min_delta for v in values[-self.patience :])

    def on_fit_start(self, model: nn.Module, history: History) -> bool:
        self.values = list(history.get(self.monitor, []))
        return self.should_stop(self.values)

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> bool:
        if self.monitor not in row:
            raise KeyError(
                f"EarlyStopping monitors {self.monitor!r}, which this fit does not record; "
                f"choose one of {sorted(k for k in row if k != 'epoch')} "
                f"(val_* needs a val_loader)."
            )
        self.values.append(float(row[self.monitor]))
        return self.should_stop(self.values)


def _summary(row: Mapping[str, float]) -> str:
    shown = [
        f"{k} {v:.4f}"
        for k, v in row.items()
        if k.startswith(("train_", "val_")) and math.isfinite(v)
    ]
    return f"epoch {int(row['epoch'])}: " + ", ".join(shown)


class ProgressBar(Callback):
    """A tqdm bar that counts the optimiser steps of each epoch, and one line per epoch with
    its losses and metrics. Shows nothing when :func:`is_quiet` (``make test``, CI).

    Example::

        fit(model, train_loader, val_loader, epochs=5, optimizer=optimizer,
            callbacks=[ProgressBar()])
    """

    def __init__(self) -> None:
        self.bar: Any = None

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        if not is_quiet():
            from tqdm import tqdm  # plain bars: tqdm.auto needs ipywidgets in notebooks

            self.bar = tqdm(desc=f"epoch {epoch}", unit="step", leave=False, dynamic_ncols=True)

    def on_step_end(self, step: int, loss: Tensor) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            from tqdm import tqdm

            tqdm.write(_summary(row))


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class LivePlot(Callback):
    """Redraw ``helpers.plot.plot_history`` in the notebook cell after every epoch. Shows
    nothing outside a notebook or when :func:`is_quiet`.

    Example::

        fit(model, train_loader, val_loader, epochs=10, optimizer=optimizer,
            callbacks=[LivePlot()])
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}

    def on_fit_start(self, model: nn.Module, history: History) -> None:
        self.history = {k: list(v) for k, v in history.items()}

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> None:
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        if is_quiet() or not _in_notebook():
            return
        import matplotlib.pyplot as plt
        from IPython.display import clear_output, display

        from helpers.plot import plot_history

        fig = plot_history(self.history, title=f"Training history (epoch {epoch})")
        clear_output(wait=True)
        display(fig)
        plt.close(fig)
