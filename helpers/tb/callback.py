"""The ``fit`` callbacks that log to TensorBoard: the losses, metrics and learning rate
(``TensorBoardCallback``), and histograms of the weights and gradients (``HistogramCallback``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from tensorboardX import SummaryWriter
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from helpers.tb.writing import log_histograms
from helpers.train.callbacks import Callback

__all__ = ["TensorBoardCallback", "HistogramCallback"]


class TensorBoardCallback(Callback):
    """Log ``fit`` to a tensorboardX ``SummaryWriter`` under the course's tags: ``loss/train_step``
    for every optimiser step, ``<quantity>/train`` and ``<quantity>/val`` for every epoch
    (``loss/val``, ``accuracy/train``, ...) and ``lr``. The step losses are kept on the device
    and read once per epoch.

    Example::

        writer = create_writer("mlp", "baseline")
        fit(model, train_loader, val_loader, epochs=5, optimizer=optimizer,
            callbacks=[TensorBoardCallback(writer)])
    """

    def __init__(self, writer: SummaryWriter) -> None:
        self.writer = writer
        self._steps: list[int] = []
        self._losses: list[Tensor] = []

    def on_step_end(self, step: int, loss: Tensor) -> None:
        self._steps.append(step)
        self._losses.append(loss)

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> None:
        if self._losses:
            for step, value in zip(self._steps, torch.stack(self._losses).float().tolist()):
                self.writer.add_scalar("loss/train_step", value, step)
        self._steps, self._losses = [], []
        for key, value in row.items():
            split, _, quantity = key.partition("_")
            if split in ("train", "val") and quantity:
                self.writer.add_scalar(f"{quantity}/{split}", value, epoch)
        self.writer.add_scalar("lr", row["lr"], epoch)
        self.writer.flush()


class HistogramCallback(Callback):
    """Log histograms of the weights and of the gradients (``weights/<name>``,
    ``gradients/<name>``) at the end of every ``every``-th epoch of ``fit``.

    ``fit`` clears the gradients after every optimiser step, so by the end of an epoch there
    are none left to look at. The callback therefore keeps a copy of each parameter's gradient
    as it is computed (a hook on the parameter; one extra gradient-sized buffer, fine for
    course-sized models) and logs the last step's gradients with the weights: as ``backward``
    computed them, so before any clipping, and multiplied by the loss scale under fp16 AMP.

    The hooks are attached when the callback is created, so it also works in a hand-written
    loop (call :meth:`on_epoch_end` yourself, then :meth:`remove`). In ``fit`` they are removed
    when training ends (``on_fit_end``) and attached again if the callback is used for
    another ``fit``, so the model is left as it was.

    Example::

        fit(model, train_loader, val_loader, epochs=5, optimizer=optimizer,
            callbacks=[TensorBoardCallback(writer), HistogramCallback(writer, model)])
    """

    def __init__(
        self, writer: SummaryWriter, model: nn.Module, every: int = 1, gradients: bool = True
    ) -> None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1 (log every N epochs), got {every!r}.")
        self.writer, self.every, self.gradients = writer, every, gradients
        self.last_gradients: dict[str, Tensor] = {}
        self._handles: list[RemovableHandle] = []
        self.attach(model)

    def attach(self, model: nn.Module) -> None:
        """Hook every trainable parameter of ``model`` so that its gradient is kept (nothing
        to do with ``gradients=False``, or when the hooks are attached already)."""
        if not self.gradients or self._handles:
            return
        for name, param in model.named_parameters():
            if param.requires_grad:
                self._handles.append(param.register_post_accumulate_grad_hook(self._keeper(name)))

    def _keeper(self, name: str) -> Callable[[Tensor], None]:
        """The hook for parameter ``name``: copy its gradient into ``last_gradients``."""

        def keep(param: Tensor) -> None:
            grad = param.grad.detach()
            kept = self.last_gradients.get(name)
            if kept is None or kept.shape != grad.shape or kept.dtype != grad.dtype:
                self.last_gradients[name] = grad.clone()
            else:
                kept.copy_(grad)

        return keep

    def on_fit_start(self, model: nn.Module, history: Mapping[str, Sequence[float]]) -> None:
        self.attach(model)

    def on_epoch_end(self, epoch: int, row: Mapping[str, float], model: nn.Module) -> None:
        if epoch % self.every:
            return
        log_histograms(self.writer, model, epoch, "weights")
        log_histograms(self.writer, self.last_gradients, epoch, "gradients")
        self.writer.flush()

    def on_fit_end(self, model: nn.Module, history: Mapping[str, Sequence[float]]) -> None:
        self.remove()

    def remove(self) -> None:
        """Detach the gradient hooks from the model (and free the kept gradients)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.last_gradients = {}
