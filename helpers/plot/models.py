"""Looking inside a model: its layers and sizes, its weights, and the gradients they get."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from torchinfo import ModelStatistics, Units, summary

from helpers.plot.figure import grid_shape, new_figure
from helpers.tensors import TensorSource, named_tensors, to_numpy

__all__ = ["plot_weight_histograms", "plot_grad_flow", "summarize_model", "ModelSummary"]

Pairs = list[tuple[str, torch.Tensor]]


def _under(name: str, layers: Sequence[str]) -> bool:
    """True when parameter ``name`` lies under one of the module prefixes in ``layers``."""
    return any(name.startswith(layer + ".") for layer in layers)


def _select(pairs: Pairs, layers: Sequence[str] | None, include_all: bool) -> Pairs:
    """The tensors to plot: weight matrices (no biases, no 1-D norm scales) unless
    ``include_all``; ``layers`` keeps exact parameter names and the weights under module
    prefixes."""

    def is_weight(name: str, t: torch.Tensor) -> bool:
        return include_all or (t.ndim >= 2 and not name.endswith("bias"))

    if layers is None:
        return [(n, t) for n, t in pairs if is_weight(n, t)]
    missing = [
        layer for layer in layers if not any(n == layer or _under(n, [layer]) for n, _ in pairs)
    ]
    if missing:
        raise KeyError(
            f"no parameter named {missing}; available: {', '.join(n for n, _ in pairs)}."
        )
    return [(n, t) for n, t in pairs if n in layers or (is_weight(n, t) and _under(n, layers))]


def plot_weight_histograms(
    model_or_named_params: TensorSource,
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
    tensors are skipped unless ``include_all=True``; ``layers`` names parameters or module
    prefixes.

    Example::

        fig = plot_weight_histograms(model, layers=["encoder.0", "head"])
    """
    pairs = named_tensors(model_or_named_params, "model_or_named_params")
    pairs = _select(pairs, layers, include_all)
    if not pairs:
        raise ValueError(
            "no weight tensors to plot (only biases/1-D tensors?); pass include_all=True."
        )
    nrows, ncols = grid_shape(len(pairs), ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows))
    for ax in axes.ravel()[len(pairs) :]:
        fig.delaxes(ax)
    for ax, (name, tensor) in zip(axes.ravel(), pairs):
        values = to_numpy(tensor, name).astype(float).ravel()
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_title(
            f"{name} {tuple(tensor.shape)}\nmean {values.mean():.3f}, std {values.std():.3f}",
            fontsize=9,
        )
        ax.set(xlabel="weight value", ylabel="count")
    fig.suptitle(title or "Weight distributions per layer")
    return fig


def plot_grad_flow(
    named_parameters: TensorSource,
    title: str | None = None,
    *,
    include_biases: bool = False,
) -> Figure:
    """Call after ``loss.backward()``: bars of the mean and the max absolute gradient of every
    weight, on a log scale, from the input layer (left) to the output (right). Bars shrinking
    towards the left mean vanishing gradients; a layer at zero gets no signal (frozen or
    disconnected); huge bars mean exploding gradients. Takes a model or
    ``model.named_parameters()``.

    Example::

        loss.backward()
        fig = plot_grad_flow(model.named_parameters())
    """
    pairs = [
        (n, p)
        for n, p in named_tensors(named_parameters, "named_parameters")
        if p.requires_grad and p.grad is not None and (include_biases or not n.endswith("bias"))
    ]
    if not pairs:
        raise ValueError(
            "no parameter has a gradient: call loss.backward() before "
            "plot_grad_flow (and do not zero the gradients in between)."
        )
    names = [n for n, _ in pairs]
    grads = [p.grad.detach().abs().float() for _, p in pairs]
    means = np.array([g.mean().item() for g in grads])
    maxes = np.array([g.max().item() for g in grads])
    x = np.arange(len(names))
    fig, axes = new_figure(figsize=(max(6.0, 0.45 * len(names) + 2), 4.5))
    ax = axes[0, 0]
    ax.bar(x, maxes, color="tab:cyan", alpha=0.6, label="max |grad|")
    ax.bar(x, means, color="tab:blue", alpha=0.9, width=0.5, label="mean |grad|")
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=90, fontsize=8)
    ax.set(xlabel="layer (parameter), input to output", ylabel="|gradient| (log scale)")
    ax.set_title(title or "Gradient flow: mean and max |grad| per layer")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return fig


class ModelSummary:
    """What :func:`summarize_model` returns: torchinfo's ``ModelStatistics`` (as ``.stats``)
    and the table it prints as (``str(summary)``, ``print(summary)``). ``total_params`` and
    ``trainable_params`` are there for quick checks; everything else is in ``.stats``."""

    def __init__(self, stats: ModelStatistics) -> None:
        self.stats = stats
        self.text = readable_units(str(stats))

    @property
    def total_params(self) -> int:
        """The number of parameters, trainable or not."""
        return self.stats.total_params

    @property
    def trainable_params(self) -> int:
        """The number of parameters with ``requires_grad=True``."""
        return self.stats.trainable_params

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:  # a cell that ends with the summary shows the table too
        return self.text


def readable_units(text: str) -> str:
    """torchinfo 1.8 prints its unit as ``(Units.MEGABYTES)`` on Python 3.11 and later (the
    ``str`` of an enum changed); write ``(M)``, as older Pythons did.

    Example::

        >>> readable_units("Total mult-adds (Units.MEGABYTES): 0.00")
        'Total mult-adds (M): 0.00'
    """
    for unit in Units:
        text = text.replace(f"(Units.{unit.name})", f"({unit.value})")
    return text


def summarize_model(
    model: nn.Module, input_size: Any = None, input_data: Any = None, **kwargs: Any
) -> ModelSummary:
    """A torchinfo table of the model: every layer with its input and output shapes, parameter
    count and whether it trains, then the totals and the memory estimate. ``print`` the result
    (a :class:`ModelSummary`). Any torchinfo option can be passed (``depth=2``,
    ``dtypes=[torch.long]`` for token ids). Without input, only the parameter columns are shown.

    Example::

        print(summarize_model(model, input_size=(32, 1, 28, 28)))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summarize_model needs a torch.nn.Module, got {type(model).__name__}.")
    has_input = input_size is not None or input_data is not None
    if has_input:
        columns = ("input_size", "output_size", "num_params", "trainable")
    else:
        columns = ("num_params", "trainable")
    options: dict[str, Any] = {"col_names": columns, "row_settings": ("var_names",), "verbose": 0}
    options.update(kwargs)
    return ModelSummary(summary(model, input_size=input_size, input_data=input_data, **options))
