"""Diagnostics of the training loop: mistakes that PyTorch reports late, badly or not at all.

They run on the **first batch** only (when the model, the loader and the loss meet for the
first time), plus a check that the loss stays finite. An error keeps PyTorch's own exception
and gets a note (``add_note``) that says what to check; later batches run without any check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "describe",
    "check_not_empty",
    "check_metrics_suit_loss",
    "check_first_batch",
    "check_targets",
    "check_finite",
]

_CLASS_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
_REGRESSION_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)
_SAME_SHAPE_LOSSES = (nn.BCEWithLogitsLoss, nn.BCELoss, *_REGRESSION_LOSSES)


def describe(x: Any) -> str:
    """A short description of a batch: dtypes and shapes of its tensors, nested as in the batch."""
    if isinstance(x, Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(describe(v) for v in x) + ")"
    return type(x).__name__


def check_not_empty(loader: Iterable, name: str) -> None:
    """Refuse a loader without batches before training starts (``len(loader) == 0``)."""
    try:
        empty = len(loader) == 0  # type: ignore[arg-type]
    except TypeError:  # an iterable without len(): the loop finds out
        return
    if empty:
        raise ValueError(
            f"{name} has no batches: its dataset is empty, or batch_size is larger "
            f"than the dataset with drop_last=True. Check the split that built it "
            f"(len(dataset)) and the DataLoader's batch_size/drop_last."
        )


def check_metrics_suit_loss(metric_names: Iterable[str], loss_fn: Callable) -> None:
    """Classification metrics on a regression loss would round the targets: refuse."""
    names = tuple(metric_names)
    if names and isinstance(loss_fn, _REGRESSION_LOSSES):
        raise ValueError(
            f"metrics={names} are classification metrics but the loss is "
            f"{type(loss_fn).__name__} (regression). Pass metrics=() or a dict of "
            f"regression metrics, e.g. {{'mae': sklearn.metrics.mean_absolute_error}}."
        )


def _first_layer(model: nn.Module) -> str:
    for module in model.modules():
        if any(hasattr(module, a) for a in ("in_features", "in_channels", "num_embeddings")):
            return f" The model's first layer is {module!r}."
    return ""


def check_first_batch(
    model: nn.Module,
    inputs: Any,
    targets: Tensor,
    loss_fn: Callable | None,
    forward: Callable[[], Tensor],
    where: str,
) -> tuple[Tensor, Tensor | None]:
    """Run ``forward()`` (the model on the first batch) and the loss, with diagnostics: an error
    in the model keeps its exception and gets a note on how model and loader must fit; wrong
    targets (see :func:`check_targets`) raise a ``ValueError`` before the loss sees them.
    Returns ``(logits, loss)`` (``loss`` is None without a ``loss_fn``)."""
    try:
        logits = forward()
    except Exception as err:
        err.add_note(
            f"helpers.train: the model failed on {where} (inputs: {describe(inputs)}). "
            f"If the error is about shapes or indices, the model and the loader do not "
            f"fit together.{_first_layer(model)} Make the first layer match the data "
            f"(in_features = number of input features, num_embeddings > the largest "
            f"token id), or fix the data pipeline."
        )
        raise
    if loss_fn is None:
        return logits, None
    check_targets(loss_fn, logits, targets, where)
    try:
        loss = loss_fn(logits, targets)
    except Exception as err:
        err.add_note(
            f"helpers.train: the loss {type(loss_fn).__name__} failed on {where}: outputs "
            f"of shape {tuple(logits.shape)} ({logits.dtype}), targets of shape "
            f"{tuple(targets.shape)} ({targets.dtype}). CrossEntropyLoss needs class ids "
            f"0..C-1 (int64) with C = logits.shape[1]; BCEWithLogitsLoss needs float "
            f"targets shaped like the logits."
        )
        raise
    return logits, loss


def check_targets(loss_fn: Callable, logits: Tensor, targets: Tensor, where: str) -> None:
    """Catch the mistakes that losses accept silently (broadcasting, labels outside [0, 1])
    or report badly (a device-side assert on the GPU)."""
    name = type(loss_fn).__name__
    if isinstance(loss_fn, _CLASS_LOSSES) and not targets.is_floating_point():
        n_classes = logits.shape[1] if logits.ndim > 1 else 1
        valid = targets[targets != loss_fn.ignore_index]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= n_classes):
            raise ValueError(
                f"Labels out of range for the loss in {where}: the model outputs {n_classes} class "
                f"scores (logits of shape {tuple(logits.shape)}), so {name} needs labels "
                f"0..{n_classes - 1}, but the batch has labels from {int(valid.min())} to "
                f"{int(valid.max())}. Give the last layer one output per class, or map the labels "
                f"to 0..{n_classes - 1}."
            )
    if isinstance(loss_fn, _SAME_SHAPE_LOSSES) and logits.shape != targets.shape:
        raise ValueError(
            f"{name} got outputs of shape {tuple(logits.shape)} and targets of shape "
            f"{tuple(targets.shape)} in {where}; it would broadcast them into a wrong loss. Make "
            f"them equal, e.g. logits.squeeze(-1) in the model or targets.float().view(-1, 1)."
        )
    if isinstance(loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss)) and targets.numel():
        low, high = float(targets.min()), float(targets.max())
        if low < 0 or high > 1:
            raise ValueError(
                f"{name} needs targets in [0, 1], but {where} has targets from {low} to {high}. "
                f"For more than two classes use CrossEntropyLoss with one output per class."
            )


def check_finite(losses: list[Tensor], first_batch: int, where: str) -> None:
    """Raise ``FloatingPointError`` naming the batch if one of ``losses`` (the losses of the
    batches ``first_batch``, ``first_batch + 1``, ... of ``where``) is NaN or infinite. The
    losses are read from the device in one go."""
    if not losses:
        return
    values = torch.stack(losses).float()
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    i = int((~finite).nonzero()[0])
    raise FloatingPointError(
        f"The loss became {float(values[i])} at batch {first_batch + i} of {where}; training "
        f"stopped. Hints: lower the learning rate, clip the gradients (grad_clip=1.0), look for "
        f"NaN/inf in the inputs (torch.isfinite(x).all()), and with fp16 use amp='bf16'."
    )
