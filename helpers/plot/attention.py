"""Attention maps of a transformer: which tokens each token looks at, one panel per head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import seaborn as sns
from matplotlib.figure import Figure

from helpers.plot.figure import grid_shape, new_figure
from helpers.tensors import to_numpy

__all__ = ["plot_attention"]


def _heads_seq_seq(attention: Any) -> np.ndarray:
    """``attention`` as a float array of shape (heads, seq, seq)."""
    att = to_numpy(attention, "attention").astype(float)
    if att.ndim == 4:
        if att.shape[0] != 1:
            raise ValueError(
                f"attention has a batch of {att.shape[0]} sentences {att.shape}; "
                "pick one, e.g. outputs.attentions[layer][i]."
            )
        att = att[0]
    if att.ndim == 2:
        att = att[None]
    if att.ndim != 3 or att.shape[1] != att.shape[2]:
        raise ValueError(f"attention must have shape (heads, seq, seq), got {tuple(att.shape)}.")
    return att


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
    ``(heads, seq, seq)``; a ``(1, heads, seq, seq)`` slice of a Hugging Face
    ``outputs.attentions[l]`` or a single ``(seq, seq)`` map works too. ``tokens`` labels both
    axes; ``heads`` picks heads (default: all).

    Example::

        out = model(**batch, output_attentions=True)
        tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
        fig = plot_attention(out.attentions[0][0], tokens)
    """
    att = _heads_seq_seq(attention)
    tokens = [str(t) for t in tokens]
    if len(tokens) != att.shape[-1]:
        raise ValueError(
            f"{len(tokens)} tokens but the attention maps are {att.shape[-1]} x "
            f"{att.shape[-1]}; pass the tokens of this sentence (padding included, "
            f"or slice the padding off both)."
        )
    chosen = list(range(att.shape[0])) if heads is None else [int(h) for h in heads]
    if not chosen or any(not 0 <= h < att.shape[0] for h in chosen):
        raise ValueError(
            f"heads must be indices in 0..{att.shape[0] - 1}, got {list(heads or [])}."
        )
    nrows, ncols = grid_shape(len(chosen), ncols)
    side = max(3.0, 0.35 * len(tokens) + 1.5)
    fig, axes = new_figure(nrows, ncols, figsize=(side * ncols + 0.8, side * nrows))
    panels = list(axes.ravel()[: len(chosen)])
    for ax in axes.ravel()[len(chosen) :]:
        fig.delaxes(ax)
    vmax = float(att[chosen].max()) or 1.0
    for ax, head in zip(panels, chosen):
        sns.heatmap(
            att[head],
            ax=ax,
            xticklabels=tokens,
            yticklabels=tokens,
            vmin=0.0,
            vmax=vmax,
            cmap=cmap,
            square=True,
            cbar=False,
        )
        ax.tick_params(axis="x", labelrotation=90)
        ax.tick_params(axis="y", labelrotation=0)
        ax.set(title=f"head {head}", xlabel="key (attended to)", ylabel="query (attending)")
    fig.colorbar(panels[0].collections[0], ax=panels, label="attention weight", shrink=0.8)
    where = f" in layer {layer}" if layer is not None else ""
    fig.suptitle(title or f"Attention weights{where}, one panel per head")
    return fig
