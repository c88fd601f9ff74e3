"""Logging training runs with tensorboardX, and reading the logs back into pandas.

Every run is written to ``runs/<experiment>/<run>``, the layout TensorBoard understands:
``tensorboard --logdir runs/<experiment>`` shows the runs of one experiment side by side, and
:func:`read_scalars` returns every scalar of every run under a folder as one DataFrame, so the
curves can be compared, asserted and plotted in Python as well. Typical use::

    from helpers.tb import HistogramCallback, create_writer, log_hparams, read_scalars, plot_scalars
    with create_writer("digits", "lr_0.01") as writer:        # flushed and closed at the end
        history = fit(model, train_loader, val_loader, epochs=5, optimizer=optimizer,
                      writer=writer, callbacks=[HistogramCallback(writer, model)])
        log_hparams(writer, {"lr": 0.01}, {"val_loss": history["val_loss"][-1]})
    fig = plot_scalars(read_scalars("runs/digits"), tags=["loss/val"])

Runs are named as TensorBoard names them: the path of the folder holding the event files,
relative to the folder that was read (``"."`` for that folder itself). ``writer.add_scalars``
(grouped scalars: several series on one chart) writes each series into its own sub-folder, so
``add_scalars("loss", {"train": ..., "val": ...})`` in run ``lr_0.01`` gives the runs
``lr_0.01/loss/train`` and ``lr_0.01/loss/val``, both with the tag ``loss``.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from tensorboardX import SummaryWriter
from torch import Tensor, nn

__all__ = [
    "SCALAR_COLUMNS",
    "create_writer",
    "log_scalars",
    "log_histograms",
    "log_confusion_matrix",
    "log_embedding",
    "log_hparams",
    "HistogramCallback",
    "read_scalars",
    "smooth",
    "plot_scalars",
]

#: The columns of the DataFrame :func:`read_scalars` returns, in this order.
SCALAR_COLUMNS: tuple[str, ...] = ("run", "tag", "step", "value", "wall_time")

# Every writer gets a distinct event-file name. tensorboardX names files after the current
# second and the host, so two writers opened on one folder within a second would overwrite
# each other's file; the process id and a counter make that impossible.
_writer_ids = itertools.count()


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty string, got {name!r}.")
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"{what} {name!r} must be a relative name inside the runs folder (no "
                         f"absolute path, no '..'); use e.g. 'lr_0.01'. Pass root= to change "
                         f"where the runs folder is.")


# --------------------------------------------------------------------------- writing


def create_writer(experiment: str, run: str | None = None, root: str | Path = "runs", *,
                  overwrite: bool = False) -> SummaryWriter:
    """A tensorboardX ``SummaryWriter`` that logs to ``<root>/<experiment>/<run>``.

    ``run`` defaults to the current date and time (``20250131-142501``), which keeps repeated
    runs apart; pass an explicit name (``"lr_0.01"``) when the folder must be predictable, as
    in a notebook that reads its own logs. With ``overwrite=True`` an existing run folder is
    deleted first, so re-running gives one clean run instead of two runs' events mixed in one
    folder (which TensorBoard would draw as one zig-zagging line). Use the writer as a context
    manager (``with create_writer(...) as writer:``) or call ``writer.close()``: only then
    is everything on disk.

    Example::

        >>> with create_writer("demo", "first", overwrite=True) as writer:
        ...     writer.add_scalar("loss/train", 0.5, 1)
        >>> writer.logdir
        'runs/demo/first'
    """
    _check_name(experiment, "experiment")
    run = datetime.now().strftime("%Y%m%d-%H%M%S") if run is None else run
    _check_name(run, "run")
    logdir = Path(root) / experiment / run
    if logdir.exists() and not logdir.is_dir():
        raise NotADirectoryError(f"{logdir} exists and is a file; a run needs a folder there. "
                                 f"Remove the file or choose another run name.")
    if overwrite:
        shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(logdir=str(logdir), filename_suffix=f".{os.getpid()}.{next(_writer_ids)}")


def _as_float(value: Any, key: str) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"The scalar {key!r} is a tensor of shape {tuple(value.shape)}; log "
                             f"one number per tag (e.g. tensor.mean()).")
        return float(value.detach().cpu().item())
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"The scalar {key!r} must be a number or a one-element tensor, got "
                        f"{type(value).__name__} {value!r:.60}.") from err


def log_scalars(writer: SummaryWriter, scalars: Mapping[str, Any], step: int) -> None:
    """Log each ``tag: value`` of ``scalars`` at ``step``: losses, metrics, the learning rate.
    Values may be numbers or one-element tensors. Tags with a slash are grouped by TensorBoard
    under the part before it (``loss/train`` and ``loss/val`` sit in the ``loss`` section).

    Example::

        log_scalars(writer, {"loss/train": loss, "lr": scheduler.get_last_lr()[0]}, step)
    """
    if not isinstance(scalars, Mapping):
        raise TypeError(f"scalars must be a dict of tag -> value, got {type(scalars).__name__}.")
    for key, value in scalars.items():
        writer.add_scalar(str(key), _as_float(value, key), step)


def _named(tensors: nn.Module | Mapping[str, Tensor | None] | Iterable[tuple[str, Tensor | None]],
           ) -> list[tuple[str, Tensor]]:
    if isinstance(tensors, nn.Module):
        pairs = list(tensors.named_parameters())
    elif isinstance(tensors, Mapping):
        pairs = list(tensors.items())
    else:
        pairs = list(tensors)
    out = []
    for item in pairs:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(f"Expected (name, tensor) pairs (a model, model.named_parameters() or a "
                            f"dict), found {item!r:.60}.")
        name, tensor = item
        if tensor is None:
            continue
        if not isinstance(tensor, Tensor):
            raise TypeError(f"{name!r} is a {type(tensor).__name__}, not a tensor.")
        out.append((name, tensor))
    return out


def log_histograms(writer: SummaryWriter,
                   tensors: nn.Module | Mapping[str, Tensor | None] | Iterable[tuple[str, Tensor | None]],
                   step: int, prefix: str = "weights") -> int:
    """Log one histogram per named tensor as ``<prefix>/<name>``: a model (its parameters),
    ``model.named_parameters()``, or a dict such as ``{n: p.grad for n, p in ...}`` with
    ``prefix="gradients"`` (``None`` entries, e.g. parameters without a gradient, are skipped).
    Returns how many histograms were written. Over the epochs, TensorBoard's histogram tab
    shows each distribution drifting: weights that never move, or gradients that vanish or
    explode, stand out.

    Example::

        loss.backward()
        log_histograms(writer, {n: p.grad for n, p in model.named_parameters()}, step, "gradients")
    """
    count = 0
    for name, tensor in _named(tensors):
        values = tensor.detach().float().cpu()
        if values.numel() == 0:
            continue
        writer.add_histogram(f"{prefix}/{name}", values.numpy(), step)
        count += 1
    return count


def log_confusion_matrix(writer: SummaryWriter, y_true: Any, y_pred: Any, labels: Sequence[str],
                         step: int, tag: str = "confusion_matrix", normalize: bool = False) -> None:
    """Draw :func:`helpers.plot.plot_confusion_matrix` and log it as an image under ``tag``
    (TensorBoard's Images tab, one image per ``step``). The figure is closed after logging,
    so a notebook cell that logs it does not also display it.

    Example::

        log_confusion_matrix(writer, y_true, y_pred, labels=digits.classes, step=epoch)
    """
    from helpers.plot import plot_confusion_matrix

    fig = plot_confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    writer.add_figure(tag, fig, step, close=True)


def log_embedding(writer: SummaryWriter, features: Any, labels: Any, step: int, tag: str, *,
                  images: Any = None, label_names: Sequence[str] | None = None) -> Path:
    """Log one vector per example for TensorBoard's Projector tab, labelled by class and, with
    ``images`` (``(N, C, H, H)``, values in [0, 1], C = 1 or 3), drawn as thumbnails. Returns the
    folder holding the vectors, the labels and the sprite (the thumbnails in one square image).

    It wraps ``writer.add_embedding`` with checks that say what is wrong, and it writes the
    sprite itself: tensorboardX leaves the unused bottom rows of the sprite uninitialised
    (`pytorch/pytorch#34954 <https://github.com/pytorch/pytorch/issues/34954>`_), which puts
    random pixels in the file and, now and then, a RuntimeWarning on stderr. Here they are black.

    Example::

        log_embedding(writer, features, y_true, step=epoch, tag="test_features",
                      images=test_images, label_names=digits.classes)
    """
    import torch
    from PIL import Image
    from torchvision.utils import make_grid

    from helpers.plot import _to_numpy

    vectors = _to_numpy(features, "features").astype(float)
    ids = _to_numpy(labels, "labels").ravel()
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"features must be (N, D), one vector per example, got shape {vectors.shape}.")
    if len(ids) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(ids)} labels; give one label per vector.")
    if not isinstance(tag, str) or not tag or not all(c.isalnum() or c in "_-." for c in tag):
        raise ValueError(f"tag {tag!r} must be a non-empty name of letters, digits, '_', '-' or '.', "
                         f"e.g. 'test_features'; it becomes a folder name.")
    folder = Path(writer.logdir) / f"{step:05d}" / tag
    if folder.exists():
        raise FileExistsError(f"{folder} already holds an embedding: give each logged embedding "
                              f"its own step or tag (or create the writer with overwrite=True).")
    metadata = [label_names[int(i)] for i in ids] if label_names is not None else ids.tolist()
    thumbnails = None
    if images is not None:
        thumbnails = _to_numpy(images, "images").astype(float)
        if (thumbnails.ndim != 4 or len(thumbnails) != len(vectors) or thumbnails.shape[1] not in (1, 3)
                or thumbnails.shape[2] != thumbnails.shape[3]):
            raise ValueError(f"images must be (N, C, H, H) with N = {len(vectors)} and C = 1 or 3 "
                             f"(square thumbnails, one per vector), got shape {thumbnails.shape}.")
        if not np.isfinite(thumbnails).all() or thumbnails.min() < 0 or thumbnails.max() > 1:
            raise ValueError(f"images must hold values in [0, 1], got {thumbnails.min():.3g} to "
                             f"{thumbnails.max():.3g}: rescale them, e.g. (x - x.min()) / (x.max() - x.min()).")
    with np.errstate(over="ignore", invalid="ignore"):  # its sprite is rewritten below
        writer.add_embedding(vectors, metadata=metadata, label_img=thumbnails, global_step=step, tag=tag)
    if thumbnails is not None:
        # the layout tensorboardX records in the config: a square of ceil(sqrt(N)) thumbnails a
        # side, filled row by row; make_grid pads the last row with black, we pad the square
        per_row = math.ceil(math.sqrt(len(thumbnails)))
        grid = make_grid(torch.from_numpy(thumbnails), nrow=per_row, padding=0).numpy()
        sprite = np.zeros((3, grid.shape[2], grid.shape[2]))
        sprite[:, :grid.shape[1]] = grid
        Image.fromarray(np.uint8(np.round(sprite.transpose(1, 2, 0) * 255))).save(folder / "sprite.png")
    return folder


def log_hparams(writer: SummaryWriter, hparams: Mapping[str, Any], metrics: Mapping[str, Any],
                step: int | None = None) -> None:
    """Record the hyper-parameters of this run and its final metrics for TensorBoard's HParams
    tab, which lists the runs of a sweep in one table (sortable, filterable, with parallel
    coordinates). Metrics are logged as scalars ``hparam/<name>`` in the writer's own run
    (unlike ``writer.add_hparams``, which opens a sub-run), so :func:`read_scalars` finds them
    next to the training curves. Values of ``hparams`` must be numbers, strings or booleans.

    Example::

        log_hparams(writer, {"lr": 1e-3, "batch_size": 64},
                    {"val_loss": history["val_loss"][-1], "val_accuracy": history["val_accuracy"][-1]})
    """
    from tensorboardX.summary import hparams as hparams_summary

    clean: dict[str, bool | str | float | int] = {}
    for key, value in hparams.items():
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (np.generic,)):
            value = value.item()
        if not isinstance(value, (bool, str, int, float)):
            raise TypeError(f"Hyper-parameter {key!r} is a {type(value).__name__} ({value!r:.60}); "
                            f"TensorBoard stores numbers, strings and booleans only: log e.g. "
                            f"str(value) or one number per setting.")
        clean[str(key)] = value
    if not metrics:
        raise ValueError("metrics is empty: give at least one final metric, e.g. {'val_loss': 0.31}, "
                         "so the HParams table has something to compare.")
    tags = {f"hparam/{key}": _as_float(value, key) for key, value in metrics.items()}
    if writer.file_writer is None:
        raise ValueError("The writer is already closed: call log_hparams inside the "
                         "`with create_writer(...) as writer:` block, before writer.close().")
    for summary in hparams_summary(clean, tags):
        writer.file_writer.add_summary(summary)
    for tag, value in tags.items():
        writer.add_scalar(tag, value, step if step is not None else 0)
    writer.flush()


class HistogramCallback:
    """A ``fit(callbacks=[...])`` callback that logs histograms of the weights and of the
    gradients (``weights/<name>``, ``gradients/<name>``) every ``every`` epochs.

    ``fit`` clears the gradients after every optimiser step, so by the end of an epoch there
    are none left to look at. The callback therefore keeps a copy of each parameter's gradient
    as it is computed (a hook on the parameter; one extra gradient-sized buffer, fine for
    course-sized models) and logs the last step's gradients with the weights: as ``backward``
    computed them, so before any clipping, and multiplied by the loss scale under fp16 AMP.
    Create it with the model before training; ``remove()`` detaches the hooks afterwards.

    Example::

        histograms = HistogramCallback(writer, model)
        fit(model, train_loader, val_loader, epochs=5, optimizer=optimizer, writer=writer,
            callbacks=[histograms])
        histograms.remove()
    """

    def __init__(self, writer: SummaryWriter, model: nn.Module, every: int = 1,
                 gradients: bool = True) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1 (log every N epochs), got {every!r}.")
        self.writer, self.every = writer, every
        self.last_gradients: dict[str, Tensor] = {}
        self._handles = []
        if gradients:
            for name, param in model.named_parameters():
                if param.requires_grad:
                    self._handles.append(param.register_post_accumulate_grad_hook(self._keeper(name)))

    def _keeper(self, name: str) -> Callable[[Tensor], None]:
        def keep(param: Tensor) -> None:
            grad = param.grad.detach()
            kept = self.last_gradients.get(name)
            if kept is None or kept.shape != grad.shape or kept.dtype != grad.dtype:
                self.last_gradients[name] = grad.clone()
            else:
                kept.copy_(grad)
        return keep

    def __call__(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> None:
        if epoch % self.every:
            return
        log_histograms(self.writer, model, epoch, "weights")
        log_histograms(self.writer, self.last_gradients, epoch, "gradients")
        self.writer.flush()

    def remove(self) -> None:
        """Detach the gradient hooks from the model (and free the kept gradients)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.last_gradients = {}


# --------------------------------------------------------------------------- reading


def read_scalars(logdir: str | Path) -> pd.DataFrame:
    """Every scalar of every run under ``logdir`` as a DataFrame with the columns ``run``,
    ``tag``, ``step``, ``value``, ``wall_time``, sorted by run, tag and step.

    It reads the logs with TensorBoard's own ``EventMultiplexer``, so it sees the same runs
    TensorBoard shows: a run is a folder holding event files, named by its path relative to
    ``logdir`` (``"."`` for ``logdir`` itself; grouped scalars from ``add_scalars`` are
    sub-runs such as ``lr_0.01/loss/train``). Nothing is sampled away: every logged point comes
    back. Values are stored as float32 by TensorBoard, so they equal what was logged to float32
    precision. Close (or flush) the writers first; a folder without event files raises.

    Example::

        df = read_scalars("runs/digits")
        val = df[(df.run == "lr_0.01") & (df.tag == "loss/val")]
    """
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    logdir = Path(logdir)
    if not logdir.is_dir():
        raise FileNotFoundError(f"No log folder at {logdir} (relative to {Path.cwd().name}/). Train "
                                f"with a writer from create_writer first, or check the path.")
    mux = EventMultiplexer(size_guidance={"scalars": 0})  # 0 = keep every point
    mux.AddRunsFromDirectory(str(logdir))
    if not mux.Runs():
        raise FileNotFoundError(f"{logdir} holds no TensorBoard event files (events.out.tfevents.*). "
                                f"Did the writer log anything, and was it closed or flushed?")
    mux.Reload()
    rows = []
    for run, content in mux.Runs().items():
        name = Path(run).as_posix()
        for tag in content.get("scalars", []):
            rows.extend((name, tag, e.step, e.value, e.wall_time) for e in mux.Scalars(run, tag))
    df = pd.DataFrame(rows, columns=list(SCALAR_COLUMNS))
    df = df.astype({"run": str, "tag": str, "step": "int64", "value": "float64",
                    "wall_time": "float64"})
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
        out[i] = last / (1 - weight ** count)
    return out


def plot_scalars(
    df: pd.DataFrame,
    tags: Sequence[str] | None = None,
    runs: Sequence[str] | None = None,
    *,
    smoothing: float = 0.0,
    title: str | None = None,
    ncols: int = 3,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Plot scalars from :func:`read_scalars`: one panel per tag, one line per run (same
    colour for a run in every panel), step on the x axis, as TensorBoard's Scalars tab does.
    ``tags`` and ``runs`` select and order what is drawn (default: everything). With
    ``smoothing`` > 0 each line is smoothed like TensorBoard's slider (:func:`smooth`) and
    the raw values are drawn faintly behind it.

    Example::

        fig = plot_scalars(read_scalars("runs/digits"), tags=["loss/train", "loss/val"])
    """
    from helpers.plot import CourseFigure

    missing = [c for c in ("run", "tag", "step", "value") if c not in getattr(df, "columns", [])]
    if not isinstance(df, pd.DataFrame) or missing:
        raise TypeError(f"df must be the DataFrame read_scalars returns (columns {SCALAR_COLUMNS}); "
                        f"missing columns: {missing or 'not a DataFrame'}.")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be an int >= 1, got {ncols!r}.")
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
    tags = [t for t in tags if (data["tag"] == t).any()]
    colours = dict(zip(runs, plt.get_cmap("tab10" if len(runs) <= 10 else "tab20").colors))
    nrows, ncols = math.ceil(len(tags) / min(ncols, len(tags))), min(ncols, len(tags))
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=figsize or (4.8 * ncols, 3.6 * nrows), FigureClass=CourseFigure)
    for ax, tag in zip(axes.flat, tags):
        for run in runs:
            points = data[(data["tag"] == tag) & (data["run"] == run)].sort_values("step")
            if points.empty:
                continue
            x, y = points["step"].to_numpy(), points["value"].to_numpy()
            colour = colours.get(run)
            if smoothing > 0:
                ax.plot(x, y, color=colour, alpha=0.25, linewidth=1)
                y = smooth(y, smoothing)
            ax.plot(x, y, color=colour, label=run, marker="o" if len(x) <= 20 else None,
                    markersize=3)
        ax.set(title=tag, xlabel="step", ylabel=tag)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    for ax in list(axes.flat)[len(tags):]:
        ax.set_visible(False)
    fig.suptitle(title or "Scalars read back from the TensorBoard logs")
    return fig
