"""Does a state dict fit a model? The one check every weight loader of the course uses
(``load_bert_weights`` here, chapter 11's GPT-2 loader): the same names, and the same shape
under every name, or an error that says which name and which shape differ.

Example::

    check_state_dict_fits(model, mapped_state_dict, source="all-MiniLM-L6-v2")
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["StateDictMismatchError", "check_state_dict_fits"]


class StateDictMismatchError(ValueError):
    """A state dict does not fit a model: names missing or unexpected, or shapes that differ.
    ``.missing``, ``.unexpected`` and ``.shapes`` (``{name: (expected, got)}``) hold the details."""

    def __init__(
        self,
        message: str,
        missing: list[str],
        unexpected: list[str],
        shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        super().__init__(message)
        self.missing, self.unexpected, self.shapes = missing, unexpected, shapes


def check_state_dict_fits(
    model: nn.Module | Mapping[str, Tensor],
    state_dict: Mapping[str, Tensor],
    *,
    source: str = "the state dict",
    hint: str = "",
) -> None:
    """Raise :class:`StateDictMismatchError` unless ``state_dict`` has exactly the names of
    ``model``'s state dict (or of a mapping given instead of a model) with the same shapes.
    The message names the first missing and the first unexpected key, how many there are of
    each, and the first shape that differs; ``source`` says where the weights came from and
    ``hint`` is appended (how to fix it)."""
    expected = model.state_dict() if isinstance(model, nn.Module) else model
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shapes = {
        k: (tuple(expected[k].shape), tuple(torch.as_tensor(state_dict[k]).shape))
        for k in expected
        if k in state_dict
        and tuple(expected[k].shape) != tuple(torch.as_tensor(state_dict[k]).shape)
    }
    if not (missing or unexpected or shapes):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), the first is {missing[0]!r}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), the first is {unexpected[0]!r}")
    if shapes:
        name, (want, got) = next(iter(shapes.items()))
        problems.append(
            f"{len(shapes)} shape(s) differ, the first is {name!r}: the model has {want}, "
            f"{source} has {got}"
        )
    message = f"{source} does not fit the model: " + "; ".join(problems) + "."
    if hint:
        message += " " + hint
    raise StateDictMismatchError(message, missing, unexpected, shapes)
