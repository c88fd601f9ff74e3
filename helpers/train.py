"""The training loop: ``train_one_epoch``, ``evaluate``, ``predict`` and ``fit``.

``fit`` runs the epochs and returns a history (``dict[str, list[float]]`` with ``epoch``,
``train_loss``, ``val_loss``, ``train_<metric>``, ``val_<metric>``, ``lr``, ``seconds``). Every
extra is off by default and switched on by one keyword: a learning-rate scheduler, gradient
clipping, gradient accumulation, mixed precision, early stopping, checkpoints written
atomically (and ``resume=``), a tensorboardX writer, callbacks, progress bars and a live plot.
The same loop runs under ``torchrun`` with ``DistributedDataParallel``.

Typical use::

    from helpers.train import fit
    history = fit(model, train_loader, val_loader, epochs=5,
                  optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
                  metrics=("accuracy", "f1"), checkpoint_path="checkpoints/model.pt")

Batches are ``(inputs, targets)`` pairs (``inputs`` a tensor, or a tuple passed as
``model(*inputs)``) or Hugging Face style dicts with a ``"labels"`` key, passed as
``model(**batch_without_labels)``; an output with a ``.logits`` attribute is unwrapped.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm  # plain bars: tqdm.auto needs ipywidgets in notebooks

__all__ = [
    "METRICS", "QUIET_ENV_VARS", "EarlyStopping",
    "is_quiet", "choose_amp", "train_one_epoch", "evaluate", "predict", "fit",
    "save_checkpoint", "load_checkpoint",
    "setup_distributed", "cleanup_distributed", "is_main_process", "distributed_loader",
]

#: Environment variables that switch progress bars and live plots off (``make test``, CI).
QUIET_ENV_VARS: tuple[str, ...] = ("COURSE_QUIET", "CI")

#: How many batches run between two reads of the losses from the device. Reading a value
#: (``.item()``) makes the CPU wait for the GPU, so the loop reads them in windows.
_SYNC_EVERY = 32
_CHECKPOINT_FORMAT = 1


def _sklearn(name: str, binary_or_macro: bool = False, **options: Any) -> Callable[..., float]:
    """``sklearn.metrics.<name>(y_true, y_pred, **options)``, imported on first use (scikit-learn
    takes seconds to import). ``binary_or_macro`` scores the positive class for 0/1 labels and
    averages over the classes (macro) otherwise."""

    def metric(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        from sklearn import metrics as sk_metrics

        extra = dict(options)
        if binary_or_macro:
            binary = set(np.unique(y_true)) | set(np.unique(y_pred)) <= {0, 1}
            extra.update(average="binary" if binary else "macro", zero_division=0)
        return float(getattr(sk_metrics, name)(y_true, y_pred, **extra))

    metric.__name__ = name
    return metric


#: The metrics ``fit`` knows by name, all from scikit-learn; each takes ``(y_true, y_pred)``.
#: ``f1``, ``precision`` and ``recall`` score the positive class for 0/1 labels and average
#: over classes (macro) otherwise. Pass ``{"name": fn}`` to ``metrics=`` for any other one.
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _sklearn("accuracy_score"),
    "balanced_accuracy": _sklearn("balanced_accuracy_score"),
    "f1": _sklearn("f1_score", binary_or_macro=True),
    "f1_macro": _sklearn("f1_score", average="macro", zero_division=0),
    "precision": _sklearn("precision_score", binary_or_macro=True),
    "recall": _sklearn("recall_score", binary_or_macro=True),
    "mcc": _sklearn("matthews_corrcoef"),
}

MetricSpec = Sequence[str] | Mapping[str, Callable[[np.ndarray, np.ndarray], float]]


@dataclass(frozen=True)
class EarlyStopping:
    """Stop ``fit`` when the monitored value has not improved by more than ``min_delta`` for
    ``patience`` epochs in a row. ``fit(early_stopping=3)`` is short for
    ``EarlyStopping(patience=3)``; the value comes from ``fit(monitor=...)``."""

    patience: int = 3
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"patience must be an int >= 1, got {self.patience!r}.")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta!r}.")

    def should_stop(self, values: Sequence[float], lower_is_better: bool) -> bool:
        """True when the last ``patience`` values brought no improvement over the best before."""
        if len(values) <= self.patience:
            return False
        sign = 1.0 if lower_is_better else -1.0
        best_before = min(sign * v for v in values[: -self.patience])
        return all(sign * v >= best_before - self.min_delta for v in values[-self.patience:])


# --------------------------------------------------------------------------- small utilities


def is_quiet() -> bool:
    """True when ``COURSE_QUIET`` or ``CI`` is set (to anything but ``""``, ``0``, ``false``,
    ``no``): then ``fit`` shows no progress bar and no live plot, so notebook outputs stay
    identical between runs."""
    return any(os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
               for name in QUIET_ENV_VARS)


def choose_amp(amp: bool | str, device: torch.device | str) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype and whether a ``GradScaler`` is needed, for ``amp`` on ``device``.

    ``False`` gives ``(None, False)`` (full float32). ``True`` picks by device: bfloat16 on a
    GPU that supports it (no scaler needed: bf16 has float32's range), else float16 with a
    ``GradScaler`` (fp16 gradients underflow without loss scaling), and bfloat16 autocast on
    the CPU and other devices. ``"bf16"`` or ``"fp16"`` force a dtype (fp16 always with a scaler).

    Example::

        >>> choose_amp(True, "cpu")
        (torch.bfloat16, False)
    """
    device = torch.device(device)
    if amp is False or amp is None:
        return None, False
    if amp is True:
        if device.type == "cuda":
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            amp = "bf16"
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16, False
    if amp in ("fp16", "float16"):
        return torch.float16, True
    raise ValueError(f"amp must be False, True, 'bf16' or 'fp16', got {amp!r}.")


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside ``DistributedDataParallel`` and/or ``torch.compile``."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _resolve_metrics(metrics: MetricSpec | None) -> dict[str, Callable]:
    if not metrics:
        return {}
    if isinstance(metrics, str):
        metrics = (metrics,)
    if isinstance(metrics, Mapping):
        return dict(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; known: {', '.join(METRICS)}. For another "
                         f"one pass a dict, e.g. metrics={{'top2': my_fn}} with my_fn(y_true, y_pred).")
    return {m: METRICS[m] for m in metrics}


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _len_or_none(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _empty_error(name: str) -> ValueError:
    return ValueError(
        f"{name} has no batches: its dataset is empty, or batch_size is larger than the "
        f"dataset with drop_last=True. Check the split that built it (len(dataset)) and the "
        f"DataLoader's batch_size/drop_last."
    )


def _check_not_empty(loader: Iterable, name: str) -> None:
    if _len_or_none(loader) == 0:
        raise _empty_error(name)


_REGRESSION_LOSSES = (nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss, nn.HuberLoss)


def _check_metrics_suit_loss(metrics: MetricSpec | None, loss_fn: Callable) -> None:
    """Classification metrics on a regression loss would round the targets: refuse."""
    named = [m for m in ((metrics,) if isinstance(metrics, str) else metrics or ())
             if isinstance(m, str) and m in METRICS and not isinstance(metrics, Mapping)]
    if named and isinstance(loss_fn, _REGRESSION_LOSSES):
        raise ValueError(f"metrics={tuple(named)} are classification metrics but the loss is "
                         f"{type(loss_fn).__name__} (regression). Pass metrics=() or a dict of "
                         f"regression metrics, e.g. {{'mae': sklearn.metrics.mean_absolute_error}}.")


# --------------------------------------------------------------------------- one step


def _to_device(x: Any, device: torch.device) -> Any:
    if isinstance(x, Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, Mapping):
        return {k: _to_device(v, device) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_to_device(v, device) for v in x)
    return x


def _split_batch(batch: Any, device: torch.device) -> tuple[Any, Tensor]:
    """``(inputs, targets)`` on ``device`` from a tuple batch or a dict batch with "labels"."""
    if isinstance(batch, Mapping):
        if "labels" not in batch:
            raise ValueError(f"A dict batch needs a 'labels' key (Hugging Face style); this one has "
                             f"{sorted(batch)}. Rename the target key to 'labels' in the collate_fn.")
        inputs = {k: _to_device(v, device) for k, v in batch.items() if k != "labels"}
        return inputs, _to_device(torch.as_tensor(batch["labels"]), device)
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return _to_device(batch[0], device), _to_device(torch.as_tensor(batch[1]), device)
    kind = f"a {type(batch).__name__} of length {len(batch)}" if isinstance(batch, (tuple, list)) \
        else f"a {type(batch).__name__}"
    raise TypeError(f"Each batch must be an (inputs, targets) pair or a dict with 'labels'; the "
                    f"loader gave {kind}. Make the dataset return (x, y) or fix the collate_fn.")


def _describe(x: Any) -> str:
    if isinstance(x, Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(_describe(v) for v in x) + ")"
    return type(x).__name__


def _first_layer(model: nn.Module) -> str:
    for module in _unwrap(model).modules():
        if any(hasattr(module, a) for a in ("in_features", "in_channels", "num_embeddings")):
            return f" The model's first layer is {module!r}."
    return ""


def _forward(model: nn.Module, inputs: Any, where: str) -> Tensor:
    """Call the model the way the batch asks for and return the logits."""
    try:
        if isinstance(inputs, Mapping):
            out = model(**inputs)
        elif isinstance(inputs, (tuple, list)):
            out = model(*inputs)
        else:
            out = model(inputs)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, TypeError, IndexError, ValueError) as err:
        raise ValueError(
            f"The model could not process {where} (inputs: {_describe(inputs)}): the model and the "
            f"loader do not fit together.{_first_layer(model)} Make the first layer match the data "
            f"(in_features = number of input features, num_embeddings > the largest token id) or "
            f"fix the data pipeline. Original error: {err}"
        ) from err
    logits = getattr(out, "logits", out)
    if not isinstance(logits, Tensor):
        raise TypeError(f"The model returned {type(out).__name__} for {where}; fit needs a tensor of "
                        f"logits or an object with a .logits tensor (as Hugging Face models return).")
    return logits


_CLASS_LOSSES = (nn.CrossEntropyLoss, nn.NLLLoss)
_SAME_SHAPE_LOSSES = (nn.BCEWithLogitsLoss, nn.BCELoss, nn.MSELoss, nn.L1Loss, nn.SmoothL1Loss,
                      nn.HuberLoss)


def _check_targets(loss_fn: Callable, logits: Tensor, targets: Tensor, where: str) -> None:
    """Catch the mistakes that losses accept silently (broadcasting, labels outside [0, 1])
    or report badly (a device-side assert on the GPU). Runs on the first batch only."""
    if isinstance(loss_fn, _CLASS_LOSSES) and not targets.is_floating_point():
        n_classes = logits.shape[1] if logits.ndim > 1 else 1
        valid = targets[targets != loss_fn.ignore_index]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= n_classes):
            raise ValueError(
                f"Labels out of range for the loss in {where}: the model outputs {n_classes} class "
                f"scores (logits of shape {tuple(logits.shape)}), so {type(loss_fn).__name__} needs "
                f"labels 0..{n_classes - 1}, but the batch has labels from {int(valid.min())} to "
                f"{int(valid.max())}. Give the last layer one output per class, or map the labels "
                f"to 0..{n_classes - 1}."
            )
    if isinstance(loss_fn, _SAME_SHAPE_LOSSES) and logits.shape != targets.shape:
        raise ValueError(
            f"{type(loss_fn).__name__} got outputs of shape {tuple(logits.shape)} and targets of shape "
            f"{tuple(targets.shape)} in {where}; it would broadcast them into a wrong loss. Make "
            f"them equal, e.g. logits.squeeze(-1) in the model or targets.float().view(-1, 1)."
        )
    if isinstance(loss_fn, (nn.BCEWithLogitsLoss, nn.BCELoss)):
        if targets.numel() and (float(targets.min()) < 0 or float(targets.max()) > 1):
            raise ValueError(
                f"{type(loss_fn).__name__} needs targets in [0, 1], but {where} has targets from "
                f"{float(targets.min())} to {float(targets.max())}. For more than two classes use "
                f"CrossEntropyLoss with one output per class."
            )


def _loss(loss_fn: Callable, logits: Tensor, targets: Tensor, where: str) -> Tensor:
    try:
        return loss_fn(logits, targets)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, IndexError, ValueError) as err:
        values = ""
        if targets.numel():
            values = f", values {targets.min().item()}..{targets.max().item()}"
        raise ValueError(
            f"The loss {type(loss_fn).__name__} could not compare the model's output (shape "
            f"{tuple(logits.shape)}, {logits.dtype}) with the targets (shape {tuple(targets.shape)}, "
            f"{targets.dtype}{values}) in {where}. Labels for CrossEntropyLoss are class ids "
            f"0..C-1 (int64) with C = logits.shape[1]; BCEWithLogitsLoss needs float targets shaped "
            f"like the logits. Original error: {err}"
        ) from err


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Callable[[], Any]:
    """A factory of autocast contexts (a do-nothing context when ``dtype`` is None)."""
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def _predictions(logits: Tensor) -> Tensor:
    """Class ids: argmax over the last dimension, or ``logit > 0`` for a single output."""
    if logits.ndim > 1 and logits.shape[-1] > 1:
        return logits.argmax(dim=-1)
    return (logits > 0).long().reshape(logits.shape[0], -1).squeeze(-1)


class _LossWindow:
    """Losses kept on the device and read in one go every ``_SYNC_EVERY`` batches: the
    epoch's weighted mean, the per-step values for the writer, and the NaN/inf check."""

    def __init__(self, where: str, epoch: int, training: bool) -> None:
        self.where, self.epoch, self.training = where, epoch, training
        self.losses: list[Tensor] = []
        self.sizes: list[int] = []
        self.steps: list[int] = []
        self.total, self.count, self.batches = 0.0, 0, 0

    def add(self, loss: Tensor, size: int, step: int) -> None:
        self.losses.append(loss)
        self.sizes.append(size)
        self.steps.append(step)

    def flush(self, writer: Any = None) -> None:
        if not self.losses:
            return
        values = torch.stack(self.losses).float().tolist()
        for i, value in enumerate(values):
            if not math.isfinite(value):
                batch = self.batches + i + 1
                at = f"batch {batch} of {self.where} in epoch {self.epoch}"
                if self.training:
                    at += f" (optimisation step {self.steps[i] + 1})"
                raise FloatingPointError(
                    f"The loss became {value} at {at}; training stopped. Hints: lower the learning "
                    f"rate, clip the gradients (grad_clip=1.0), look for NaN/inf in the inputs "
                    f"(torch.isfinite(x).all()), and with fp16 use amp='bf16' or a GradScaler."
                )
        if writer is not None:
            per_step: dict[int, list[float]] = {}
            for value, step in zip(values, self.steps):
                per_step.setdefault(step, []).append(value)
            for step, vals in per_step.items():
                writer.add_scalar("loss/train_step", sum(vals) / len(vals), step + 1)
        self.total += sum(v * n for v, n in zip(values, self.sizes))
        self.count += sum(self.sizes)
        self.batches += len(values)
        self.losses, self.sizes, self.steps = [], [], []


def _epoch_results(window: _LossWindow, preds: list[Tensor], targets: list[Tensor],
                   metric_fns: dict[str, Callable], device: torch.device,
                   loss_fn: Callable | None = None) -> dict[str, float]:
    """Mean loss and the metrics of one pass, combined over every process when distributed."""
    rank, world = _world()
    totals = torch.tensor([window.total, float(window.count)], dtype=torch.float64, device=device)
    if world > 1:
        dist.all_reduce(totals)
    results = {"loss": float(totals[0] / totals[1])}
    if metric_fns:
        y_pred = torch.cat([p.reshape(-1) for p in preds]).cpu().numpy()
        y_true = torch.cat([t.reshape(-1) for t in targets]).cpu().numpy()
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, (y_true, y_pred))
            y_true = np.concatenate([g[0] for g in gathered])
            y_pred = np.concatenate([g[1] for g in gathered])
        ignore = getattr(loss_fn, "ignore_index", None)
        if ignore is not None:
            keep = y_true != ignore
            y_true, y_pred = y_true[keep], y_pred[keep]
        if y_true.dtype.kind == "f":
            y_true = y_true.round().astype(np.int64)
        for name, fn in metric_fns.items():
            results[name] = float(fn(y_true, y_pred))
    return results


def _set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell a ``DistributedSampler`` or bucketing batch sampler which epoch it is (its shuffle)."""
    for obj in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


# --------------------------------------------------------------------------- the loops


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    *,
    device: torch.device | str | None = None,
    metrics: MetricSpec = ("accuracy",),
    scheduler: Any = None,
    grad_clip: float | None = None,
    accumulation_steps: int = 1,
    amp: bool | str = False,
    scaler: torch.amp.GradScaler | None = None,
    writer: Any = None,
    global_step: int = 0,
    epoch: int = 1,
    progress: bool = False,
    _check_first_batch: bool = True,
) -> dict[str, float]:
    """One pass over ``loader`` in training mode: forward, loss, backward, optimiser step.

    Returns the mean training loss, the ``metrics`` computed once on the epoch's predictions,
    and ``steps``, the number of optimiser steps taken. ``scheduler`` (optional) is stepped
    after every optimiser step; ``grad_clip`` clips the gradient norm; with
    ``accumulation_steps=k`` the gradients of ``k`` batches are summed (each loss divided by
    ``k``) before one step; ``amp`` turns on autocast (see :func:`choose_amp`). ``writer``
    receives ``loss/train_step`` for every optimiser step, numbered from ``global_step + 1``.

    Example::

        stats = train_one_epoch(model, train_loader, optimizer, nn.CrossEntropyLoss())
        print(f"loss {stats['loss']:.3f}, accuracy {stats['accuracy']:.3f}")
    """
    device = torch.device(device) if device is not None else _model_device(model)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be an int >= 1, got {accumulation_steps!r}.")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be None or a positive max norm, got {grad_clip!r}.")
    _check_not_empty(loader, "train_loader")
    _check_metrics_suit_loss(metrics, loss_fn)
    metric_fns = _resolve_metrics(metrics)
    dtype, needs_scaler = choose_amp(amp, device)
    if needs_scaler and scaler is None:
        scaler = torch.amp.GradScaler(device.type)
    autocast = _autocast(device, dtype)
    n_batches = _len_or_none(loader)
    ddp = isinstance(model, DistributedDataParallel)

    model.train()
    optimizer.zero_grad(set_to_none=True)
    window = _LossWindow("train_loader", epoch, training=True)
    preds: list[Tensor] = []
    targs: list[Tensor] = []
    step, pending = global_step, 0
    bar = tqdm(loader, total=n_batches, desc=f"epoch {epoch} train", leave=False,
               disable=not progress, dynamic_ncols=True)

    def optimizer_step() -> None:
        nonlocal step, pending
        if grad_clip is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if scheduler is not None:
            scheduler.step()
        step += 1
        pending = 0

    for i, batch in enumerate(bar):
        where = f"batch {i + 1} of train_loader (epoch {epoch})"
        inputs, targets = _split_batch(batch, device)
        pending += 1
        last = pending == accumulation_steps or (n_batches is not None and i + 1 == n_batches)
        sync = model.no_sync() if ddp and not last else contextlib.nullcontext()
        with sync:
            with autocast():
                logits = _forward(model, inputs, where)
                if i == 0 and _check_first_batch:
                    _check_targets(loss_fn, logits, targets, where)
                loss = _loss(loss_fn, logits, targets, where)
            scaled = loss / accumulation_steps if accumulation_steps > 1 else loss
            if scaler is not None:
                scaled = scaler.scale(scaled)
            scaled.backward()
        window.add(loss.detach(), targets.shape[0] if targets.ndim else 1, step)
        if metric_fns:
            preds.append(_predictions(logits.detach()))
            targs.append(targets)
        if last:
            optimizer_step()
            if len(window.losses) >= _SYNC_EVERY:
                window.flush(writer)
                if progress:
                    bar.set_postfix(loss=f"{window.total / window.count:.4f}")
    if pending:  # a loader without len() ended in the middle of an accumulation
        optimizer_step()
    window.flush(writer)
    bar.close()
    if window.batches == 0:
        raise _empty_error("train_loader")
    results = _epoch_results(window, preds, targs, metric_fns, device, loss_fn)
    results["steps"] = float(step - global_step)
    return results


@torch.inference_mode()
def _run_eval(model: nn.Module, loader: Iterable, loss_fn: Callable, device: torch.device,
              dtype: torch.dtype | None, name: str, epoch: int,
              keep_predictions: bool) -> tuple[_LossWindow, list[Tensor], list[Tensor]]:
    was_training = model.training
    model.eval()
    window = _LossWindow(name, epoch, training=False)
    preds: list[Tensor] = []
    targs: list[Tensor] = []
    autocast = _autocast(device, dtype)
    try:
        for i, batch in enumerate(loader):
            where = f"batch {i + 1} of {name}"
            inputs, targets = _split_batch(batch, device)
            with autocast():
                logits = _forward(model, inputs, where)
                if i == 0:
                    _check_targets(loss_fn, logits, targets, where)
                loss = _loss(loss_fn, logits, targets, where)
            window.add(loss, targets.shape[0] if targets.ndim else 1, 0)
            if keep_predictions:
                preds.append(_predictions(logits))
                targs.append(targets)
            if len(window.losses) >= _SYNC_EVERY:
                window.flush()
        window.flush()
    finally:
        model.train(was_training)
    if window.batches == 0:
        raise _empty_error(name)
    return window, preds, targs


def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    *,
    device: torch.device | str | None = None,
    metrics: MetricSpec = ("accuracy",),
    amp: bool | str = False,
    epoch: int = 1,
    name: str = "val_loader",
) -> dict[str, float]:
    """Mean loss and ``metrics`` of ``model`` on ``loader``, in eval mode and without gradients
    (the model's train/eval mode is restored afterwards).

    Example::

        >>> evaluate(model, test_loader, metrics=("accuracy", "f1"))   # doctest: +SKIP
        {'loss': 0.412, 'accuracy': 0.861, 'f1': 0.857}
    """
    device = torch.device(device) if device is not None else _model_device(model)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    _check_not_empty(loader, name)
    _check_metrics_suit_loss(metrics, loss_fn)
    metric_fns = _resolve_metrics(metrics)
    dtype, _ = choose_amp(amp, device)
    window, preds, targs = _run_eval(model, loader, loss_fn, device, dtype, name, epoch,
                                     bool(metric_fns))
    return _epoch_results(window, preds, targs, metric_fns, device, loss_fn)


def predict(model: nn.Module, loader: Iterable, *,
            device: torch.device | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` as NumPy arrays for every batch of ``loader``: the labels and the
    predicted class ids (argmax of the logits, or ``logit > 0`` for one output), ready for
    ``sklearn.metrics.classification_report`` or ``plot_confusion_matrix``.

    Example::

        y_true, y_pred = predict(model, test_loader)
        print(classification_report(y_true, y_pred))
    """
    device = torch.device(device) if device is not None else _model_device(model)
    _check_not_empty(loader, "loader")
    _, preds, targs = _run_eval(model, loader, lambda logits, y: logits.new_zeros(()), device,
                                None, "loader", 1, True)
    return (torch.cat([t.reshape(-1) for t in targs]).cpu().numpy(),
            torch.cat([p.reshape(-1) for p in preds]).cpu().numpy())


# --------------------------------------------------------------------------- checkpoints


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],
                         "state": {"key": np.asarray(n["key"], dtype=np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _loader_generators(loader: Any) -> list[torch.Generator]:
    """The generators that decide a loader's shuffle, each once, in a fixed order."""
    found: list[torch.Generator] = []
    for owner in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None),
                  getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        g = getattr(owner, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not f for f in found):
            found.append(g)
    return found


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    epoch: int = 0,
    history: Mapping[str, list[float]] | None = None,
    extra: Mapping[str, Any] | None = None,
    rng: Any = None,
) -> Path:
    """Write a training checkpoint atomically: model, optimizer, scheduler, scaler, epoch,
    history and the random-number-generator states, saved to a temporary file in the same
    folder, flushed to disk, then renamed over ``path`` with ``os.replace``. A crash at any
    moment leaves either the previous checkpoint or the new one, never a half-written file.

    ``rng`` defaults to this process's RNG states; ``extra`` holds anything else (picklable by
    ``torch.save`` with plain types, e.g. ``{"global_step": 120}``). The model is saved without
    its ``DistributedDataParallel``/``torch.compile`` wrapper. Returns the path.

    Example::

        save_checkpoint("checkpoints/last.pt", model, optimizer, epoch=3, history=history)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": _CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "model": _unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": {k: list(v) for k, v in (history or {}).items()},
        "rng": rng if rng is not None else [_rng_state()],
        "extra": dict(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX only)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    map_location: str | torch.device = "cpu",
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and load its states into the
    objects given (each optional); returns the whole checkpoint dict (``epoch``, ``history``,
    ``extra``, ...). ``restore_rng=True`` also restores the random-number generators so that
    training continues exactly as it would have. Loading uses ``weights_only=True``.

    Example::

        ckpt = load_checkpoint("checkpoints/last.pt", model, optimizer)
        print("trained for", ckpt["epoch"], "epochs")
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}. Train with fit(..., checkpoint_path=...) "
                                f"first, or check the path (it is relative to {Path.cwd().name}/).")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable checkpoint (truncated, or not written by "
                         f"save_checkpoint): {err}") from err
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint written by helpers.train.save_checkpoint.")
    if model is not None:
        try:
            _unwrap(model).load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(f"The checkpoint {path} does not fit this model (a different "
                             f"architecture or size?): {err}") from err
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is None:
            continue
        if state[name] is None:
            raise ValueError(f"The checkpoint {path} has no {name} state; it was saved without one.")
        obj.load_state_dict(state[name])
    if restore_rng:
        rank, world = _world()
        states = state["rng"]
        _set_rng_state(states[rank] if len(states) == world else states[0])
    return state


# --------------------------------------------------------------------------- distributed


def setup_distributed(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` set up and return ``(rank, world_size, device)``.

    Under ``torchrun --nproc_per_node N`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)
    it initialises ``torch.distributed`` with NCCL on GPUs (one GPU per process) or gloo on
    the CPU. Started as a plain ``python script.py`` it does nothing and returns
    ``(0, 1, get_device())``, so one script serves both.

    Example::

        rank, world_size, device = setup_distributed()
        model = DistributedDataParallel(model.to(device)) if world_size > 1 else model.to(device)
    """
    from helpers.device import get_device

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, get_device()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and os.environ.get("COURSE_DEVICE", "cuda") != "cpu":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = backend or "nccl"
    else:
        device = torch.device("cpu")
        backend = backend or "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), device


def cleanup_distributed() -> None:
    """Leave the process group (call at the end of a ``torchrun`` script); a no-op otherwise."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True in a single process and on rank 0 of a distributed run: the one that logs and
    writes checkpoints."""
    return _world()[0] == 0


def distributed_loader(loader: DataLoader, *, shuffle: bool | None = None, seed: int = 0,
                       num_replicas: int | None = None, rank: int | None = None) -> DataLoader:
    """The same ``DataLoader`` with a ``DistributedSampler``, so each process sees its own
    shard. ``shuffle`` defaults to whether ``loader`` shuffles; ``seed`` fixes the shuffle
    (``fit`` calls ``set_epoch`` so it changes every epoch). Outside a distributed run (and
    without ``num_replicas``) the loader is returned unchanged.

    Example::

        train_loader = distributed_loader(DataLoader(train_ds, batch_size=32, shuffle=True))
    """
    if num_replicas is None and _world()[1] == 1:
        return loader
    if not isinstance(loader.batch_sampler, BatchSampler):
        raise ValueError(
            f"distributed_loader cannot shard a loader with a custom batch_sampler "
            f"({type(loader.batch_sampler).__name__}). Build it with batch_size= and shuffle= "
            f"instead, or give your batch sampler a rank-aware index list."
        )
    if shuffle is None:
        shuffle = isinstance(loader.sampler, RandomSampler)
    sampler = DistributedSampler(loader.dataset, num_replicas=num_replicas, rank=rank,
                                 shuffle=shuffle, seed=seed, drop_last=loader.drop_last)
    options: dict[str, Any] = {}
    if loader.num_workers > 0:
        options = {"prefetch_factor": loader.prefetch_factor,
                   "persistent_workers": loader.persistent_workers}
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                      pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      worker_init_fn=loader.worker_init_fn, generator=loader.generator, **options)


def _gather_objects(obj: Any) -> list[Any]:
    rank, world = _world()
    if world == 1:
        return [obj]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _barrier() -> None:
    if _world()[1] > 1:
        dist.barrier()


# --------------------------------------------------------------------------- live plot


class _LivePlot:
    """Redraws ``helpers.plot.plot_history`` in the notebook cell after every epoch."""

    def __init__(self) -> None:
        from IPython.display import clear_output, display

        from helpers.plot import plot_history

        self._clear, self._display, self._plot = clear_output, display, plot_history

    def update(self, history: Mapping[str, list[float]]) -> None:
        import matplotlib.pyplot as plt

        fig = self._plot(history, title=f"Training history (epoch {int(history['epoch'][-1])})")
        self._clear(wait=True)
        self._display(fig)
        plt.close(fig)


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


# --------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    device: torch.device | str | None = None,
    metrics: MetricSpec = ("accuracy",),
    scheduler: Any = None,
    scheduler_step: str = "batch",
    grad_clip: float | None = None,
    accumulation_steps: int = 1,
    amp: bool | str = False,
    early_stopping: int | EarlyStopping | None = None,
    monitor: str = "val_loss",
    checkpoint_path: str | Path | None = None,
    resume: str | Path | None = None,
    writer: Any = None,
    callbacks: Sequence[Callable[[int, dict[str, float], nn.Module], Any]] = (),
    progress: bool | None = None,
    live_plot: bool = False,
) -> dict[str, list[float]]:
    """Train ``model`` for ``epochs`` epochs and return the history.

    Each epoch runs :func:`train_one_epoch` then (when ``val_loader`` is given) :func:`evaluate`
    and appends a row to the history: ``epoch``, ``train_loss``, ``train_<metric>``,
    ``val_loss``, ``val_<metric>``, ``lr`` (the learning rate the epoch started with) and
    ``seconds``. ``loss_fn`` defaults to ``CrossEntropyLoss``; ``device`` defaults to where
    the model already is (given, the model is moved there). The options, all off by default:

    - ``scheduler`` stepped after every optimiser step (``scheduler_step="batch"``) or every
      epoch (``"epoch"``); a ``ReduceLROnPlateau`` is stepped every epoch with ``monitor``.
    - ``grad_clip`` (max gradient norm), ``accumulation_steps``, ``amp`` (see :func:`choose_amp`;
      fp16 gets a ``GradScaler``).
    - ``early_stopping``: patience in epochs (or an :class:`EarlyStopping`) on ``monitor``, a
      history key; keys containing "loss" are minimised, others maximised.
    - ``checkpoint_path``: an atomic checkpoint after every epoch; ``resume=path`` loads one
      (model, optimizer, scheduler, scaler, history, RNG states) and continues with the next
      epoch up to ``epochs`` in total, reaching the same weights as an uninterrupted run.
    - ``writer``: a tensorboardX ``SummaryWriter``; ``callbacks``: ``fn(epoch, row, model)``
      after every epoch; ``progress`` bars and ``live_plot`` (a notebook plot redrawn every
      epoch), both silent when :func:`is_quiet`.

    Under ``torchrun`` pass a ``DistributedDataParallel`` model and loaders from
    :func:`distributed_loader`: losses and metrics are combined over all processes, and only
    rank 0 writes checkpoints, logs, bars and plots (and calls ``callbacks``).

    Example::

        history = fit(model, train_loader, val_loader, epochs=10, optimizer=optimizer,
                      scheduler=torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2,
                                                                    total_steps=10 * len(train_loader)),
                      grad_clip=1.0, early_stopping=3, checkpoint_path="checkpoints/run.pt")
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}.")
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}.")
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau:
        scheduler_step = "epoch"
    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=early_stopping)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    _check_metrics_suit_loss(metrics, loss_fn)
    metric_fns = _resolve_metrics(metrics)
    expected = {"train_loss", "lr", *(f"train_{m}" for m in metric_fns)}
    if val_loader is not None:
        expected |= {"val_loss", *(f"val_{m}" for m in metric_fns)}
    if (early_stopping is not None or plateau) and monitor not in expected:
        raise ValueError(f"monitor={monitor!r} is not recorded by this fit; choose one of "
                         f"{sorted(expected)} (val_* needs a val_loader).")
    _check_not_empty(train_loader, "train_loader")
    if val_loader is not None:
        _check_not_empty(val_loader, "val_loader")
    if device is not None:
        device = torch.device(device)
        model.to(device)
    else:
        device = _model_device(model)
    dtype, needs_scaler = choose_amp(amp, device)
    scaler = torch.amp.GradScaler(device.type) if needs_scaler else None
    main = is_main_process()
    quiet = is_quiet()
    show_progress = (progress if progress is not None else True) and not quiet and main
    plotter = _LivePlot() if live_plot and not quiet and main and _in_notebook() else None
    writer = writer if main else None
    lower_is_better = "loss" in monitor

    history: dict[str, list[float]] = {}
    start_epoch, global_step = 1, 0
    if resume is not None:
        ckpt = load_checkpoint(resume, model, optimizer, scheduler, scaler, restore_rng=True)
        history = {k: list(v) for k, v in ckpt["history"].items()}
        start_epoch = ckpt["epoch"] + 1
        global_step = int(ckpt["extra"].get("global_step", 0))
        for g, g_state in zip(_loader_generators(train_loader), ckpt["extra"].get("loader_rng", [])):
            g.set_state(g_state)
        if early_stopping is not None and early_stopping.should_stop(history.get(monitor, []),
                                                                     lower_is_better):
            return history

    epoch_bar = tqdm(range(start_epoch, epochs + 1), desc="fit", unit="epoch",
                     disable=not show_progress, dynamic_ncols=True)
    for epoch in epoch_bar:
        t0 = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        _set_epoch(train_loader, epoch - 1)
        train = train_one_epoch(
            model, train_loader, optimizer, loss_fn, device=device, metrics=metric_fns,
            scheduler=scheduler if scheduler_step == "batch" else None, grad_clip=grad_clip,
            accumulation_steps=accumulation_steps, amp=amp, scaler=scaler, writer=writer,
            global_step=global_step, epoch=epoch, progress=show_progress,
            _check_first_batch=epoch == start_epoch,
        )
        global_step += int(train.pop("steps"))
        row: dict[str, float] = {"epoch": epoch}
        row.update({f"train_{k}": v for k, v in train.items()})
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device=device, metrics=metric_fns, amp=amp,
                           epoch=epoch)
            row.update({f"val_{k}": v for k, v in val.items()})
        row["lr"] = lr
        row["seconds"] = time.perf_counter() - t0
        if plateau:
            scheduler.step(row[monitor])
        elif scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        for key, value in row.items():
            history.setdefault(key, []).append(value)

        if writer is not None:
            for key, value in row.items():
                for split in ("train", "val"):
                    if key.startswith(split + "_"):
                        writer.add_scalar(f"{key[len(split) + 1:]}/{split}", value, epoch)
            writer.add_scalar("lr", lr, epoch)
            writer.flush()
        if main:
            for callback in callbacks:
                callback(epoch, dict(row), _unwrap(model))
        if checkpoint_path is not None:
            rng = _gather_objects(_rng_state())
            if main:
                save_checkpoint(
                    checkpoint_path, model, optimizer, scheduler, scaler, epoch=epoch,
                    history=history, rng=rng,
                    extra={"global_step": global_step,
                           "loader_rng": [g.get_state() for g in _loader_generators(train_loader)]},
                )
            _barrier()
        if plotter is not None:
            plotter.update(history)
        if show_progress:
            epoch_bar.set_postfix({k: f"{row[k]:.4f}" for k in
                                   ("train_loss", "val_loss", f"val_{next(iter(metric_fns), '')}")
                                   if k in row})
        if early_stopping is not None and early_stopping.should_stop(history[monitor],
                                                                     lower_is_better):
            break
    epoch_bar.close()
    return history
