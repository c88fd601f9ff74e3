"""Turning what learners pass to the plotting and logging helpers into plain data.

Two small functions that ``helpers.plot`` and ``helpers.tb`` share, so that every helper
accepts the same inputs and says the same thing when an input is wrong:

- :func:`to_numpy` copies a tensor (on any device, of any dtype, with or without gradients),
  a NumPy array or a list into a NumPy array;
- :func:`named_tensors` turns a model, ``model.named_parameters()``, a state dict or a dict
  such as ``{name: p.grad ...}`` into a list of ``(name, tensor)`` pairs.

Example::

    from helpers.tensors import named_tensors, to_numpy
    values = to_numpy(logits.softmax(dim=-1), "probabilities")   # (N, C) float32 array
    for name, weight in named_tensors(model, "model"):
        print(name, tuple(weight.shape))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["to_numpy", "named_tensors", "TensorSource"]

#: What :func:`named_tensors` accepts: a model, a dict of name -> tensor, or (name, tensor) pairs.
TensorSource = (
    nn.Module | Mapping[str, torch.Tensor | None] | Iterable[tuple[str, torch.Tensor | None]]
)


def to_numpy(x: Any, name: str = "x") -> np.ndarray:
    """A NumPy copy of ``x``: a tensor (detached from the graph and moved to the CPU; bfloat16
    and float16 become float32, which NumPy can hold), a NumPy array, a list, or anything
    ``np.asarray`` understands (a PIL image, a pandas column). ``name`` is the argument's name,
    used in the error message when ``x`` cannot be converted.

    Example::

        >>> to_numpy(torch.tensor([1.5, 2.0], requires_grad=True), "loss")
        array([1.5, 2. ], dtype=float32)
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"{name} must be a tensor, a NumPy array or a list, got {type(x).__name__}."
        ) from err


def named_tensors(source: TensorSource, what: str = "tensors") -> list[tuple[str, torch.Tensor]]:
    """The ``(name, tensor)`` pairs of ``source``: a model (its ``named_parameters()``),
    ``model.named_parameters()`` itself, a state dict, or any dict or list of name -> tensor
    such as ``{n: p.grad for n, p in model.named_parameters()}``. Entries whose tensor is
    ``None`` (a parameter that got no gradient) are left out. Anything else raises a
    ``TypeError`` that names the argument (``what``) and the offending item.

    Example::

        >>> named_tensors({"w": torch.ones(2), "b": None}, "gradients")
        [('w', tensor([1., 1.]))]
    """
    if isinstance(source, nn.Module):
        return list(source.named_parameters())
    items = list(source.items()) if isinstance(source, Mapping) else list(source)
    pairs = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(
                f"{what} must be a model, model.named_parameters() or a dict of "
                f"name -> tensor; found the item {item!r:.80}."
            )
        name, tensor = item
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{what}: {name!r} is a {type(tensor).__name__}, not a tensor.")
        pairs.append((name, tensor))
    return pairs
