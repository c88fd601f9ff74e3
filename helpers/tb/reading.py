"""Reading TensorBoard logs back into pandas, smoothing them, and plotting them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from tbparse import SummaryReader

from helpers.plot.figure import grid_shape, new_figure

__all__ = ["SCALAR_COLUMNS", "read_scalars", "smooth", "plot_scalars"]

#: The columns of the DataFrame :func:`read_scalars` returns, in this order.
SCALAR_COLUMNS: tuple[str, ...] = ("run", "tag", "step", "value", "wall_time")


def read_scalars(logdir: str | Path) -> pd.DataFrame:
    """Every scalar of every run under ``logdir`` as a DataFrame with the columns ``run``,
    ``tag``, ``step``, ``value``, ``wall_time``, sorted by run, tag and step.

    A run is a folder holding event files, named as TensorBoard names it: by its path relative
    to ``logdir`` (``"."`` for ``logdir`` itself; grouped scalars from ``add_scalars`` are
    sub-runs such as ``lr_0.01/loss/train``). The files are read with tbparse, and nothing is
    sampled away: every logged point comes back. Values are stored as float32, so they equal
    what was logged to float32 precision. Close (or flush) the writers first; a folder without
    event files raises ``FileNotFoundError``.

    Example::

        df = read_scalars("runs/digits")
        val = df[(df.run == "lr_0.01") & (df.tag == "loss/val")]
    """
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise FileNotFoundError(
            f"No log folder at {logdir} (relative to {Path.cwd().name}/). "
            f"Train with a writer from create_writer first, or check the path."
        )
    if not any(logdir.rglob("events.out.tfevents.*")):
        raise FileNotFoundError(
            f"{logdir} holds no TensorBoard event files "
            f"(events.out.tfevents.*). Did the writer log anything, and was "
            f"it closed or flushed?"
        )
    scalars = SummaryReader(logdir, pivot=False, extra_columns={"dir_name", "wall_time"}).scalars
    if scalars.empty:  # event files, but no scalar in them
        return pd.DataFrame({column: [] for column in SCALAR_COLUMNS}).astype(
            {"run": str, "tag": str, "step": "int64", "value": "float64", "wall_time": "float64"}
        )
    df = pd.DataFrame(
        {
            "run": [Path(d).as_posix() if d else "." for d in scalars["dir_name"]],
            "tag": scalars["tag"].astype(str),
            "step": scalars["step"].astype("int64"),
            "value": scalars["value"].astype("float64"),
            "wall_time": scalars["wall_time"].astype("float64"),
        }
    )
    return df.sort_values(["run", "tag", "step", "wall_time"], kind="stable", ignore_index=True)


def smooth(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing slider: an exponential moving average with weight ``weight``
    (0 = raw values, 0.99 = very smooth), debiased so that the first points are not pulled
    towards zero. Non-finite values are passed through unchanged.

    Example::

        >>> smooth([1.0, 0.0, 0.0], 0.5).round(3).tolist()
        [1.0, 0.333, 0.143]
    """
    if not 0 <= weight < 1:
        raise ValueError(f"weight must be in [0, 1), got {weight!r}; TensorBoard's default is 0.6.")
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    last, count = 0.0, 0
    for i, value in enumerate(values):
        if not math.isfinite(value):
            out[i] = value
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        out[i] = last / (1 - weight**count)
    return out


def _selection(
    df: pd.DataFrame, tags: Sequence[str] | None, runs: Sequence[str] | None
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The rows of the chosen tags and runs, and those tags and runs in order (default: all)."""
    missing = [c for c in ("run", "tag", "step", "value") if c not in getattr(df, "columns", [])]
    if not isinstance(df, pd.DataFrame) or missing:
        raise TypeError(
            f"df must be the DataFrame read_scalars returns (columns "
            f"{SCALAR_COLUMNS}); missing columns: {missing or 'not a DataFrame'}."
        )
    all_tags, all_runs = list(dict.fromkeys(df["tag"])), list(dict.fromkeys(df["run"]))
    for wanted, known, what in ((tags, all_tags, "tag"), (runs, all_runs, "run")):
        unknown = [w for w in (wanted or []) if w not in known]
        if unknown:
            raise KeyError(f"No scalars for {what}(s) {unknown}; the data has the {what}s {known}.")
    tags = list(tags) if tags else all_tags
    runs = list(runs) if runs else all_runs
    data = df[df["tag"].isin(tags) & df["run"].isin(runs)]
    if data.empty:
        raise ValueError(f"Nothing to plot: none of the runs {runs} logged any of the tags {tags}.")
    return data, [t for t in tags if (data["tag"] == t).any()], runs


def plot_scalars(
    df: pd.DataFrame,
    tags: Sequence[str] | None = None,
    runs: Sequence[str] | None = None,
    *,
    smoothing: float = 0.0,
    title: str | None = None,
    ncols: int = 3,
    figsize: tuple[float, float] | None = None,
    xlabel: str = "step",
) -> Figure:
    """Plot scalars from :func:`read_scalars`: one panel per tag, one line per run (same
    colour for a run in every panel), step on the x axis, as TensorBoard's Scalars tab does.
    ``tags`` and ``runs`` select and order what is drawn (default: everything). With
    ``smoothing`` > 0 each line is smoothed like TensorBoard's slider (:func:`smooth`) and
    the raw values are drawn faintly behind it. TensorBoard calls the x axis "step" whatever
    the logged step counts; pass ``xlabel="epoch"`` for tags logged once per epoch.

    Example::

        fig = plot_scalars(read_scalars("runs/digits"), tags=["loss/train", "loss/val"],
                           xlabel="epoch")
    """
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be an int >= 1, got {ncols!r}.")
    data, tags, runs = _selection(df, tags, runs)
    colours = dict(zip(runs, plt.get_cmap("tab10" if len(runs) <= 10 else "tab20").colors))
    nrows, ncols = grid_shape(len(tags), ncols)
    fig, axes = new_figure(nrows, ncols, figsize=figsize or (4.8 * ncols, 3.6 * nrows))
    for ax, tag in zip(axes.flat, tags):
        for run in runs:
            points = data[(data["tag"] == tag) & (data["run"] == run)].sort_values("step")
            if points.empty:
                continue
            x, y = points["step"].to_numpy(), points["value"].to_numpy()
            if smoothing > 0:
                ax.plot(x, y, color=colours.get(run), alpha=0.25, linewidth=1)
                y = smooth(y, smoothing)
            ax.plot(
                x,
                y,
                color=colours.get(run),
                label=run,
                marker="o" if len(x) <= 20 else None,
                markersize=3,
            )
        ax.set(title=tag, xlabel=xlabel, ylabel=tag)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(tags) :]:
        ax.set_visible(False)
    fig.suptitle(title or "Scalars read back from the TensorBoard logs")
    return fig
