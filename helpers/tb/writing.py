"""Writing TensorBoard logs: a writer per run, and what the course logs besides scalars
(histograms, figures, embeddings for the Projector, hyper-parameters for the HParams tab)."""

from __future__ import annotations

import itertools
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams as hparams_summary
from torch import Tensor

from helpers.plot import plot_confusion_matrix
from helpers.tensors import TensorSource, named_tensors, to_numpy

__all__ = [
    "create_writer",
    "log_histograms",
    "log_confusion_matrix",
    "log_embedding",
    "log_hparams",
]

# Every writer gets a distinct event-file name. tensorboardX names files after the current
# second and the host, so two writers opened on one folder within a second would overwrite
# each other's file; the process id and a counter make that impossible.
_writer_ids = itertools.count()


def _check_name(name: str, what: str) -> None:
    """Refuse an experiment or run name that is empty or leads out of the runs folder."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{what} must be a non-empty string, got {name!r}.")
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(
            f"{what} {name!r} must be a relative name inside the runs folder (no "
            f"absolute path, no '..'); use e.g. 'lr_0.01'. Pass root= to change "
            f"where the runs folder is."
        )


def create_writer(
    experiment: str, run: str | None = None, root: str | Path = "runs", *, overwrite: bool = False
) -> SummaryWriter:
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
        raise NotADirectoryError(
            f"{logdir} exists and is a file; a run needs a folder there. "
            f"Remove the file or choose another run name."
        )
    if overwrite:
        shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(logdir=str(logdir), filename_suffix=f".{os.getpid()}.{next(_writer_ids)}")


def log_histograms(
    writer: SummaryWriter, tensors: TensorSource, step: int, prefix: str = "weights"
) -> int:
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
    for name, tensor in named_tensors(tensors, "tensors"):
        if tensor.numel() == 0:
            continue
        writer.add_histogram(f"{prefix}/{name}", to_numpy(tensor, name).astype(np.float32), step)
        count += 1
    return count


def log_confusion_matrix(
    writer: SummaryWriter,
    y_true: Any,
    y_pred: Any,
    labels: Sequence[str],
    step: int,
    tag: str = "confusion_matrix",
    normalize: bool = False,
) -> None:
    """Draw :func:`helpers.plot.plot_confusion_matrix` and log it as an image under ``tag``
    (TensorBoard's Images tab, one image per ``step``). The figure is closed after logging,
    so a notebook cell that logs it does not also display it.

    Example::

        log_confusion_matrix(writer, y_true, y_pred, labels=digits.classes, step=epoch)
    """
    fig = plot_confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    writer.add_figure(tag, fig, step, close=True)


def _embedding_folder(writer: SummaryWriter, step: int, tag: str) -> Path:
    """Where ``add_embedding`` writes this step's and tag's files; refuse to overwrite them."""
    if not isinstance(tag, str) or not tag or not all(c.isalnum() or c in "_-." for c in tag):
        raise ValueError(
            f"tag {tag!r} must be a non-empty name of letters, digits, '_', '-' or "
            f"'.', e.g. 'test_features'; it becomes a folder name."
        )
    folder = Path(writer.logdir) / f"{step:05d}" / tag
    if folder.exists():
        raise FileExistsError(
            f"{folder} already holds an embedding: give each logged embedding "
            f"its own step or tag (or create the writer with overwrite=True)."
        )
    return folder


def _thumbnails(images: Any, n: int) -> np.ndarray:
    """``images`` as an ``(n, C, H, H)`` float array in [0, 1], C = 1 or 3, or an error."""
    thumbs = to_numpy(images, "images").astype(float)
    square = thumbs.ndim == 4 and thumbs.shape[2] == thumbs.shape[3]
    if not square or len(thumbs) != n or thumbs.shape[1] not in (1, 3):
        raise ValueError(
            f"images must be (N, C, H, H) with N = {n} and C = 1 or 3 (square "
            f"thumbnails, one per vector), got shape {thumbs.shape}."
        )
    if not np.isfinite(thumbs).all() or thumbs.min() < 0 or thumbs.max() > 1:
        raise ValueError(
            f"images must hold values in [0, 1], got {thumbs.min():.3g} to "
            f"{thumbs.max():.3g}: rescale them, e.g. "
            f"(x - x.min()) / (x.max() - x.min())."
        )
    return thumbs


def _save_sprite(thumbs: np.ndarray, path: Path) -> None:
    """Save the thumbnails as the Projector's sprite: the layout tensorboardX records in its
    config, a square of ceil(sqrt(N)) thumbnails a side filled row by row, the rest black."""
    n, _, size, _ = thumbs.shape
    per_row = math.ceil(math.sqrt(n))
    sprite = np.zeros((per_row * size, per_row * size, 3))
    for i, thumb in enumerate(thumbs):
        row, col = divmod(i, per_row)
        # (C, H, W) -> (H, W, C); one grey channel fills all three colours
        sprite[row * size : (row + 1) * size, col * size : (col + 1) * size] = thumb.transpose(
            1, 2, 0
        )
    Image.fromarray(np.uint8(np.round(sprite * 255))).save(path)


def log_embedding(
    writer: SummaryWriter,
    features: Any,
    labels: Any,
    step: int,
    tag: str,
    *,
    images: Any = None,
    label_names: Sequence[str] | None = None,
) -> Path:
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
    vectors = to_numpy(features, "features").astype(float)
    ids = to_numpy(labels, "labels").ravel()
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(
            f"features must be (N, D), one vector per example, got shape {vectors.shape}."
        )
    if len(ids) != len(vectors):
        raise ValueError(
            f"{len(vectors)} vectors but {len(ids)} labels; give one label per vector."
        )
    folder = _embedding_folder(writer, step, tag)
    metadata = [label_names[int(i)] for i in ids] if label_names is not None else ids.tolist()
    thumbs = None if images is None else _thumbnails(images, len(vectors))
    with np.errstate(over="ignore", invalid="ignore"):  # its sprite is replaced below
        writer.add_embedding(
            vectors, metadata=metadata, label_img=thumbs, global_step=step, tag=tag
        )
    if thumbs is not None:
        _save_sprite(thumbs, folder / "sprite.png")
    return folder


def _as_float(value: Any, key: str) -> float:
    """A metric as a float: a number or a one-element tensor."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"The metric {key!r} is a tensor of shape {tuple(value.shape)}; "
                f"log one number per metric (e.g. tensor.mean())."
            )
        return float(value.detach().cpu().item())
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"The metric {key!r} must be a number or a one-element tensor, got "
            f"{type(value).__name__} {value!r:.60}."
        ) from err


def _clean_hparams(hparams: Mapping[str, Any]) -> dict[str, bool | str | float | int]:
    """The hyper-parameters as plain Python numbers, strings and booleans, or an error."""
    clean: dict[str, bool | str | float | int] = {}
    for key, value in hparams.items():
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, np.generic):  # np.float64(0.1), np.int64(64), ...
            value = value.item()
        if not isinstance(value, (bool, str, int, float)):
            raise TypeError(
                f"Hyper-parameter {key!r} is a {type(value).__name__} "
                f"({value!r:.60}); TensorBoard stores numbers, strings and booleans "
                f"only: log e.g. str(value) or one number per setting."
            )
        clean[str(key)] = value
    return clean


def log_hparams(
    writer: SummaryWriter,
    hparams: Mapping[str, Any],
    metrics: Mapping[str, Any],
    step: int | None = None,
) -> None:
    """Record the hyper-parameters of this run and its final metrics for TensorBoard's HParams
    tab, which lists the runs of a sweep in one table (sortable, filterable, with parallel
    coordinates). Metrics are logged as scalars ``hparam/<name>`` in the writer's own run
    (unlike ``writer.add_hparams``, which opens a sub-run), so :func:`read_scalars` finds them
    next to the training curves. Values of ``hparams`` must be numbers, strings or booleans.

    Example::

        log_hparams(writer, {"lr": 1e-3, "batch_size": 64},
                    {"val_loss": history["val_loss"][-1],
                     "val_accuracy": history["val_accuracy"][-1]})
    """
    clean = _clean_hparams(hparams)
    if not metrics:
        raise ValueError(
            "metrics is empty: give at least one final metric, e.g. "
            "{'val_loss': 0.31}, so the HParams table has something to compare."
        )
    tags = {f"hparam/{key}": _as_float(value, key) for key, value in metrics.items()}
    if writer.file_writer is None:
        raise ValueError(
            "The writer is already closed: call log_hparams inside the "
            "`with create_writer(...) as writer:` block, before writer.close()."
        )
    for summary in hparams_summary(clean, tags):
        writer.file_writer.add_summary(summary)
    for tag, value in tags.items():
        writer.add_scalar(tag, value, step if step is not None else 0)
    writer.flush()
