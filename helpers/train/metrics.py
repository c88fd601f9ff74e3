"""Metrics of an epoch: the mean loss and scikit-learn scores of the predictions.

:class:`EpochStats` collects what a pass over a loader produced, batch by batch, without
reading anything from the device until the end (every ``.item()`` makes the CPU wait for the
GPU), then combines it over every process of a distributed run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from helpers.train.checks import check_finite

__all__ = ["METRICS", "MetricSpec", "predictions", "resolve_metrics", "EpochStats"]

#: How many batches run between two checks that the loss is finite (one read from the device).
CHECK_EVERY = 32

#: The metrics known by name, all from scikit-learn. ``f1``, ``precision`` and ``recall`` score
#: the positive class when the model has two classes (one or two logits) and average over the
#: classes (macro) when it has more: the model's output width decides, not the labels that
#: happen to occur in an epoch. Pass ``{"name": fn}`` with ``fn(y_true, y_pred)`` for any other.
METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_macro",
    "precision",
    "recall",
    "mcc",
)

MetricSpec = Sequence[str] | Mapping[str, Callable[[np.ndarray, np.ndarray], float]]


def predictions(logits: Tensor) -> Tensor:
    """Class ids: argmax over the last dimension, or ``logit > 0`` for a single output."""
    if logits.ndim > 1 and logits.shape[-1] > 1:
        return logits.argmax(dim=-1)
    return (logits > 0).long().reshape(logits.shape[0], -1).squeeze(-1)


def _named_metric(name: str, num_classes: int) -> Callable[[np.ndarray, np.ndarray], float]:
    from sklearn import metrics as sk  # imported on first use: it takes seconds

    labels = list(range(max(num_classes, 2)))
    average = {"average": "binary"} if num_classes <= 2 else {"average": "macro", "labels": labels}
    scores: dict[str, Callable] = {
        "accuracy": sk.accuracy_score,
        "balanced_accuracy": sk.balanced_accuracy_score,
        "f1": lambda t, p: sk.f1_score(t, p, zero_division=0, **average),
        "f1_macro": lambda t, p: sk.f1_score(t, p, average="macro", labels=labels, zero_division=0),
        "precision": lambda t, p: sk.precision_score(t, p, zero_division=0, **average),
        "recall": lambda t, p: sk.recall_score(t, p, zero_division=0, **average),
        "mcc": sk.matthews_corrcoef,
    }
    return scores[name]


def resolve_metrics(metrics: MetricSpec | None) -> dict[str, Callable | str]:
    """``metrics`` as ``{name: fn}``; names from :data:`METRICS` stay names until the number of
    classes is known. Unknown names raise a ``ValueError`` listing the known ones."""
    if not metrics:
        return {}
    if isinstance(metrics, Mapping):
        return dict(metrics)
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(
            f"Unknown metric(s) {unknown}; known: {', '.join(METRICS)}. For another "
            f"one pass a dict, e.g. metrics={{'top2': my_fn}} with my_fn(y_true, y_pred)."
        )
    return {m: m for m in metrics}


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochStats:
    """The running totals of one pass over ``where`` (a loader's name): the loss summed over
    samples, and the predictions and targets when metrics are wanted. :meth:`add` every batch,
    :meth:`results` at the end."""

    def __init__(
        self, where: str, metrics: Mapping[str, Callable | str], ignore_index: int | None = None
    ) -> None:
        self.where, self.metrics, self.ignore_index = where, metrics, ignore_index
        self.loss_sum: Tensor | float = 0.0
        self.count = 0
        self.batches = 0
        self.num_classes = 0
        self._unchecked: list[Tensor] = []
        self._preds: list[Tensor] = []
        self._targets: list[Tensor] = []

    def add(self, loss: Tensor, logits: Tensor, targets: Tensor) -> None:
        """Add one batch: its mean ``loss`` (weighted by the batch size), and its predictions."""
        loss = loss.detach()
        size = targets.shape[0] if targets.ndim else 1
        self.loss_sum = self.loss_sum + loss.float() * size
        self.count += size
        self.batches += 1
        self._unchecked.append(loss)
        if len(self._unchecked) == CHECK_EVERY:
            self.check()
        if self.metrics:
            self.num_classes = logits.shape[-1] if logits.ndim > 1 and logits.shape[-1] > 1 else 2
            self._preds.append(predictions(logits.detach()).reshape(-1))
            self._targets.append(targets.reshape(-1))

    def check(self) -> None:
        """Raise if a loss added since the last check is NaN or infinite (one device read)."""
        check_finite(self._unchecked, self.batches - len(self._unchecked) + 1, self.where)
        self._unchecked = []

    def results(self) -> dict[str, float]:
        """``{"loss": mean loss, <metric>: score, ...}``, combined over every process."""
        self.check()
        rank, world = _world()
        device = self.loss_sum.device if isinstance(self.loss_sum, Tensor) else "cpu"
        totals = torch.tensor(
            [float(self.loss_sum), float(self.count)], dtype=torch.float64, device=device
        )
        if world > 1:
            dist.all_reduce(totals)
        if totals[1] == 0:
            raise ValueError(
                f"{self.where} gave no batches (an empty dataset, or an iterable that "
                f"was already used up?)."
            )
        results = {"loss": float(totals[0] / totals[1])}
        if not self.metrics:
            return results
        y_true = torch.cat(self._targets).cpu().numpy()
        y_pred = torch.cat(self._preds).cpu().numpy()
        num_classes = self.num_classes
        if world > 1:
            gathered: list = [None] * world
            dist.all_gather_object(gathered, (y_true, y_pred, num_classes))
            y_true = np.concatenate([g[0] for g in gathered])
            y_pred = np.concatenate([g[1] for g in gathered])
            num_classes = max(g[2] for g in gathered)
        if self.ignore_index is not None:
            keep = y_true != self.ignore_index
            y_true, y_pred = y_true[keep], y_pred[keep]
        if y_true.dtype.kind == "f":  # BCE targets 0.0/1.0
            y_true = y_true.round().astype(np.int64)
        for name, fn in self.metrics.items():
            score = _named_metric(fn, num_classes) if isinstance(fn, str) else fn
            results[name] = float(score(y_true, y_pred))
        return results
