"""The training loop of notebook 04, as functions: ``train_one_epoch``, ``evaluate``, ``predict``
and ``fit``.

One epoch of training is the five lines every PyTorch loop has: forward, loss, backward,
optimiser step, zero the gradients. Around them, and only where asked: gradient accumulation,
mixed precision (``helpers.device.choose_amp``), gradient clipping and a scheduler. Everything
else ``fit`` can do comes from callbacks (``helpers.train.callbacks``), the first-batch
diagnostics from ``checks``, checkpoints from ``checkpoint`` and sharding from ``distributed``;
``batches`` says how a batch reaches the model. The model trains where it is: move it first
(``model.to(device)``); every batch follows it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from helpers.device import choose_amp, eval_mode, model_device
from helpers.train.batches import LossFn, forward_and_loss, split_batch
from helpers.train.callbacks import Callback, as_callbacks
from helpers.train.checkpoint import resume_training, save_training
from helpers.train.checks import check_metrics_suit_loss, check_not_empty
from helpers.train.distributed import gather_objects, is_main_process, unwrap, without_padding
from helpers.train.metrics import EpochStats, MetricSpec, predictions, resolve_metrics

__all__ = ["train_one_epoch", "evaluate", "predict", "fit"]


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn | None = None,
    *,
    metrics: MetricSpec = ("accuracy",),
    scheduler: Any = None,
    grad_clip: float | None = None,
    accumulation_steps: int = 1,
    amp: bool | str = False,
    scaler: torch.amp.GradScaler | None = None,
    epoch: int = 1,
    step: int = 0,
    callbacks: Sequence[Callback] = (),
) -> dict[str, float]:
    """One pass over ``loader`` in training mode: forward, loss, backward, optimiser step.

    Returns the mean training loss, the ``metrics`` computed once on the epoch's predictions,
    and ``steps``, the number of optimiser steps taken. ``scheduler`` (optional) is stepped
    after every optimiser step; ``grad_clip`` clips the gradient norm; with
    ``accumulation_steps=k`` the gradients of ``k`` batches are summed (each loss divided by
    ``k``) before one step; ``amp`` turns on autocast (``helpers.device.choose_amp``).
    ``callbacks`` get ``on_step_end`` after every optimiser step, numbered from ``step + 1``.
    The first batch is checked against the model and the loss (``helpers.train.checks``).

    Example::

        stats = train_one_epoch(model, train_loader, optimizer, nn.CrossEntropyLoss())
        print(f"loss {stats['loss']:.3f}, accuracy {stats['accuracy']:.3f}")
    """
    if not isinstance(accumulation_steps, int) or accumulation_steps < 1:
        raise ValueError(f"accumulation_steps must be an int >= 1, got {accumulation_steps!r}.")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be None or a positive max norm, got {grad_clip!r}.")
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    stats = _epoch_stats("train_loader", loader, metrics, loss_fn, f"train_loader in epoch {epoch}")
    device = model_device(model)
    dtype, needs_scaler = choose_amp(amp, device)
    scaler = scaler if scaler is not None or not needs_scaler else torch.amp.GradScaler(device.type)
    n_batches = _len_or_none(loader)
    first_step, losses = step, []

    model.train()
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loader):
        inputs, targets = split_batch(batch, device)
        ends_step = (i + 1) % accumulation_steps == 0 or i + 1 == n_batches
        check = f"batch 1 of train_loader (epoch {epoch})" if i == 0 else None
        with _gradient_sync(model, ends_step), _autocast(device, dtype):
            logits, loss = forward_and_loss(model, inputs, targets, loss_fn, check)
        _backward(loss / accumulation_steps, scaler)
        stats.add(loss, logits, targets)
        losses.append(loss.detach())
        if ends_step:
            step = _optimizer_step(model, optimizer, scheduler, scaler, grad_clip, step)
            _notify_step(callbacks, step, losses)
            losses = []
    if losses:  # a loader without len() ended in the middle of an accumulation
        step = _optimizer_step(model, optimizer, scheduler, scaler, grad_clip, step)
        _notify_step(callbacks, step, losses)
    results = stats.results()
    results["steps"] = float(step - first_step)
    return results


def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss_fn: LossFn | None = None,
    *,
    metrics: MetricSpec = ("accuracy",),
    amp: bool | str = False,
    name: str = "val_loader",
) -> dict[str, float]:
    """Mean loss and ``metrics`` of ``model`` on ``loader``, in eval mode and without gradients
    (``helpers.device.eval_mode``). In a distributed run every process evaluates its shard and
    the results are combined, each sample counted once.

    Example::

        >>> evaluate(model, test_loader, metrics=("accuracy", "f1"))   # doctest: +SKIP
        {'loss': 0.412, 'accuracy': 0.861, 'f1': 0.857}
    """
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    stats = _epoch_stats(name, loader, metrics, loss_fn)
    for logits, targets, loss in _eval_batches(model, loader, loss_fn, amp, name):
        stats.add(loss, logits, targets)
    return stats.results()


def predict(model: nn.Module, loader: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """``(y_true, y_pred)`` as NumPy arrays for every batch of ``loader``: the labels and the
    predicted class ids (argmax of the logits, or ``logit > 0`` for one output), ready for
    ``sklearn.metrics.classification_report`` or ``plot_confusion_matrix``.

    Example::

        y_true, y_pred = predict(model, test_loader)
        print(classification_report(y_true, y_pred))
    """
    check_not_empty(loader, "loader")
    pairs = [
        (targets, predictions(logits))
        for logits, targets, _ in _eval_batches(model, loader, None, False, "loader")
    ]
    return (
        torch.cat([t.reshape(-1) for t, _ in pairs]).cpu().numpy(),
        torch.cat([p.reshape(-1) for _, p in pairs]).cpu().numpy(),
    )


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn | None = None,
    metrics: MetricSpec = ("accuracy",),
    scheduler: Any = None,
    scheduler_step: str | None = None,
    grad_clip: float | None = None,
    accumulation_steps: int = 1,
    amp: bool | str = False,
    checkpoint_path: str | Path | None = None,
    resume: str | Path | None = None,
    callbacks: Sequence[Callback | Callable] = (),
) -> dict[str, list[float]]:
    """Train ``model`` for ``epochs`` epochs and return the history.

    Each epoch runs :func:`train_one_epoch`, then :func:`evaluate` on ``val_loader`` (when
    given), and appends a row to the history: ``epoch``, ``train_loss``, ``train_<metric>``,
    ``val_loss``, ``val_<metric>``, ``lr`` (the learning rate the epoch started with) and
    ``seconds``. ``loss_fn`` defaults to ``CrossEntropyLoss``. A ``scheduler`` needs
    ``scheduler_step="batch"`` (stepped after every optimiser step) or ``"epoch"``; a
    ``ReduceLROnPlateau`` is stepped every epoch with ``val_loss`` (``train_loss`` without a
    ``val_loader``). ``checkpoint_path`` writes a checkpoint after every epoch;
    ``resume=path`` continues from one up to ``epochs`` in total, reaching the same weights as
    an uninterrupted run. ``callbacks`` (``helpers.train.callbacks``) add logging, progress
    bars, live plots and early stopping. Under ``torchrun``, pass a
    ``DistributedDataParallel`` model and sharded loaders (``distributed_loader``): losses and
    metrics are combined over the processes; only rank 0 writes checkpoints and calls callbacks.

    Example::

        history = fit(model, train_loader, val_loader, epochs=10, optimizer=optimizer,
                      scheduler=OneCycleLR(optimizer, 1e-2, total_steps=10 * len(train_loader)),
                      scheduler_step="batch", grad_clip=1.0,
                      callbacks=[EarlyStopping(patience=3)], checkpoint_path="checkpoints/run.pt")
    """
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}.")
    scheduler_step = _check_schedule(scheduler, scheduler_step)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    check_not_empty(train_loader, "train_loader")
    if val_loader is not None:
        check_not_empty(val_loader, "val_loader")
    callbacks = as_callbacks(callbacks) if is_main_process() else []
    needs_scaler = choose_amp(amp, model_device(model))[1]
    scaler = torch.amp.GradScaler(model_device(model).type) if needs_scaler else None
    history: dict[str, list[float]] = {}
    step = 0
    if resume is not None:
        history, step = resume_training(resume, model, optimizer, scheduler, scaler, train_loader)
    first_epoch = int(history["epoch"][-1]) + 1 if history.get("epoch") else 1
    stop = _agree(any([cb.on_fit_start(unwrap(model), history) for cb in callbacks]))

    for epoch in range(first_epoch, epochs + 1):
        if stop:
            break
        started, lr = time.perf_counter(), float(optimizer.param_groups[0]["lr"])
        _set_epoch(train_loader, epoch - 1)
        for cb in callbacks:
            cb.on_epoch_start(epoch, unwrap(model))
        train = train_one_epoch(
            model,
            train_loader,
            optimizer,
            loss_fn,
            metrics=metrics,
            amp=amp,
            scaler=scaler,
            scheduler=scheduler if scheduler_step == "batch" else None,
            grad_clip=grad_clip,
            accumulation_steps=accumulation_steps,
            epoch=epoch,
            step=step,
            callbacks=callbacks,
        )
        step += int(train.pop("steps"))
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in train.items()}}
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, metrics=metrics, amp=amp)
            row.update({f"val_{k}": v for k, v in val.items()})
        row.update(lr=lr, seconds=time.perf_counter() - started)
        _step_per_epoch(scheduler, scheduler_step, row)
        for key, value in row.items():
            history.setdefault(key, []).append(value)
        stop = _agree(any([cb.on_epoch_end(epoch, dict(row), unwrap(model)) for cb in callbacks]))
        if checkpoint_path is not None:
            save_training(
                checkpoint_path, model, optimizer, scheduler, scaler, history, step, train_loader
            )
    for cb in callbacks:
        cb.on_fit_end(unwrap(model), history)
    return history


# --------------------------------------------------------------------------- one step


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _gradient_sync(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """DDP averages gradients in every ``backward``; between accumulated batches it need not."""
    if isinstance(model, DistributedDataParallel) and not sync:
        return model.no_sync()
    return contextlib.nullcontext()


def _backward(loss: Tensor, scaler: torch.amp.GradScaler | None) -> None:
    (scaler.scale(loss) if scaler is not None else loss).backward()


def _optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    grad_clip: float | None,
    step: int,
) -> int:
    """Clip, step the optimiser (through the scaler under fp16), zero the gradients, step the
    scheduler; returns the new step count."""
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
    return step + 1


def _notify_step(callbacks: Sequence[Callback], step: int, losses: list[Tensor]) -> None:
    if callbacks:
        loss = losses[0] if len(losses) == 1 else torch.stack(losses).mean()
        for cb in callbacks:
            cb.on_step_end(step, loss)


# --------------------------------------------------------------------------- passes and epochs


def _len_or_none(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _epoch_stats(
    name: str, loader: Iterable, metrics: MetricSpec, loss_fn: LossFn, where: str | None = None
) -> EpochStats:
    check_not_empty(loader, name)
    resolved = resolve_metrics(metrics)
    check_metrics_suit_loss([m for m, fn in resolved.items() if isinstance(fn, str)], loss_fn)
    return EpochStats(where or name, resolved, getattr(loss_fn, "ignore_index", None))


def _eval_batches(
    model: nn.Module, loader: Iterable, loss_fn: LossFn | None, amp: bool | str, name: str
) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
    """The one evaluation loop: ``(logits, targets, loss)`` of every batch, in eval mode and
    without gradients. The plain module runs (no DDP: processes may hold different numbers of
    batches), on ``without_padding(loader)``, so every sample counts once."""
    model = unwrap(model)
    device = model_device(model)
    dtype, _ = choose_amp(amp, device)
    with eval_mode(model):
        for i, batch in enumerate(without_padding(loader)):
            inputs, targets = split_batch(batch, device)
            with _autocast(device, dtype):
                logits, loss = forward_and_loss(
                    model, inputs, targets, loss_fn, f"batch 1 of {name}" if i == 0 else None
                )
            yield logits, targets, loss


def _set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell a ``DistributedSampler`` or bucketing batch sampler which epoch it is (its shuffle)."""
    for obj in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


def _check_schedule(scheduler: Any, scheduler_step: str | None) -> str | None:
    """When to step ``scheduler``: there is no default, because both are common and a wrong
    guess trains silently with the wrong schedule."""
    meaning = (
        "scheduler_step='batch' steps it after every optimiser step (OneCycleLR, warm-up "
        "then linear or cosine decay over num_training_steps), scheduler_step='epoch' "
        "once per epoch (StepLR(step_size=2) then decays every 2 epochs; "
        "CosineAnnealingLR with T_max=epochs)"
    )
    if scheduler_step not in (None, "batch", "epoch"):
        raise ValueError(
            f"scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}: {meaning}."
        )
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if scheduler_step == "batch":
            raise ValueError(
                "ReduceLROnPlateau is stepped once per epoch with the validation "
                "loss; leave scheduler_step out or pass 'epoch'."
            )
        return "epoch"
    if scheduler is not None and scheduler_step is None:
        raise ValueError(
            f"fit needs to know when to step the {type(scheduler).__name__}: {meaning}."
        )
    return scheduler_step


def _step_per_epoch(scheduler: Any, scheduler_step: str | None, row: Mapping[str, float]) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(row.get("val_loss", row["train_loss"]))
    elif scheduler_step == "epoch":
        scheduler.step()


def _agree(stop: bool) -> bool:
    """Rank 0's decision to stop, shared with every process (callbacks run on rank 0 only)."""
    return bool(gather_objects(stop)[0])
