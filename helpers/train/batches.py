"""How a batch reaches the model: the course's two batch formats and the forward pass.

A batch is an ``(inputs, targets)`` pair (``inputs`` a tensor, or a tuple passed as
``model(*inputs)``) or a Hugging Face style dict with a ``"labels"`` key, passed as
``model(**batch_without_labels)``; an output with a ``.logits`` attribute (as Hugging Face
models return) is unwrapped. Everything goes to the device the model is on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from helpers.train.checks import check_first_batch

__all__ = ["to_device", "split_batch", "model_logits", "forward_and_loss"]

LossFn = Callable[[Tensor, Tensor], Tensor]


def to_device(x: Any, device: torch.device) -> Any:
    """``x`` on ``device``: a tensor, or every tensor inside a dict, tuple or list."""
    if isinstance(x, Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, Mapping):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v, device) for v in x)
    return x


def split_batch(batch: Any, device: torch.device) -> tuple[Any, Tensor]:
    """``(inputs, targets)`` on ``device`` from a tuple batch or a dict batch with "labels"."""
    if isinstance(batch, Mapping):
        if "labels" not in batch:
            raise ValueError(
                f"A dict batch needs a 'labels' key (Hugging Face style); this one has "
                f"{sorted(batch)}. Rename the target key to 'labels' in the collate_fn."
            )
        inputs = {k: to_device(v, device) for k, v in batch.items() if k != "labels"}
        return inputs, to_device(torch.as_tensor(batch["labels"]), device)
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return to_device(batch[0], device), to_device(torch.as_tensor(batch[1]), device)
    kind = (
        f"a {type(batch).__name__} of length {len(batch)}"
        if isinstance(batch, (tuple, list))
        else f"a {type(batch).__name__}"
    )
    raise TypeError(
        f"Each batch must be an (inputs, targets) pair or a dict with 'labels'; the "
        f"loader gave {kind}. Make the dataset return (x, y) or fix the collate_fn."
    )


def model_logits(model: nn.Module, inputs: Any) -> Tensor:
    """Call the model the way the batch asks for and return the logits."""
    if isinstance(inputs, Mapping):
        out = model(**inputs)
    elif isinstance(inputs, (tuple, list)):
        out = model(*inputs)
    else:
        out = model(inputs)
    logits = getattr(out, "logits", out)
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"The model returned {type(out).__name__}; the loop needs a tensor of logits "
            f"or an object with a .logits tensor (as Hugging Face models return)."
        )
    return logits


def forward_and_loss(
    model: nn.Module, inputs: Any, targets: Tensor, loss_fn: LossFn | None, check: str | None
) -> tuple[Tensor, Tensor | None]:
    """Logits and loss of one batch; with ``check`` (the batch's name), the first-batch checks."""
    if check is not None:
        return check_first_batch(
            model, inputs, targets, loss_fn, lambda: model_logits(model, inputs), check
        )
    logits = model_logits(model, inputs)
    return logits, loss_fn(logits, targets) if loss_fn is not None else None
