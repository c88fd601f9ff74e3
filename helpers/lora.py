"""LoRA (low-rank adaptation, Hu et al. 2021) written out: a frozen ``nn.Linear`` plus a
trainable low-rank update, injected into any model by module name, merged back for inference,
and saved on its own as a small adapter file.

A wrapped layer computes ``base(x) + (alpha / r) * B(A(dropout(x)))`` with ``A`` of shape
``(r, in_features)`` and ``B`` of shape ``(out_features, r)``. ``B`` starts at zero, so a freshly
wrapped model computes exactly what the original did; only ``A`` and ``B`` (and whatever
``also_train`` names, such as a new classification head) are trained.

Example::

    model = add_lora(model, targets=("query", "value"), r=8, alpha=16, also_train=("classifier",))
    ...                                                  # train as usual: only A, B and the head
    save_adapter(model, "artifacts/adapter.safetensors")  # kilobytes, not the model's megabytes
    model = merge_lora(model)                            # plain nn.Linear again, no overhead
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "BERT_ATTENTION",
    "LoRALinear",
    "add_lora",
    "lora_layers",
    "merge_lora",
    "adapter_state_dict",
    "save_adapter",
    "load_adapter",
    "finetuning_memory",
]

#: The four projections of every attention layer in Hugging Face's BERT (query, key, value and the
#: output projection), as ``add_lora`` targets. The course's three-class recipe adapts all four:
#: on validation they beat query and value alone (notebook 10, section 4).
BERT_ATTENTION = ("query", "key", "value", "attention.output.dense")


class LoRALinear(nn.Module):
    """An ``nn.Linear`` whose weight is frozen, plus a trainable update of rank ``r``.

    ``forward(x) = base(x) + scaling * dropout(x) @ A.T @ B.T`` with ``scaling = alpha / r``.
    ``A`` is initialised like ``nn.Linear``'s weight (Kaiming-uniform), ``B`` with zeros: the
    wrapped layer starts as the original one. Dropout acts on the input of the update only.
    :meth:`merged` returns the equivalent plain ``nn.Linear`` (``W + scaling * B @ A``).

    Example::

        layer = LoRALinear(nn.Linear(384, 384), r=8, alpha=16)
        layer.lora_A.shape, layer.lora_B.shape     # (8, 384), (384, 8)
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}.")
        if not isinstance(r, int) or isinstance(r, bool) or r < 1:
            raise ValueError(f"The rank r must be an int >= 1, got {r!r}.")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0 (the update is scaled by alpha / r), got {alpha}.")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        self.base = base.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, float(alpha), float(alpha) / r
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **factory))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, **factory))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> Tensor:
        """The frozen base weight (code that reads ``layer.weight`` keeps working)."""
        return self.base.weight

    @property
    def bias(self) -> Tensor | None:
        return self.base.bias

    def delta_weight(self) -> Tensor:
        """The update the adapter adds to the weight: ``scaling * B @ A``, shape of ``W``."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(self, x: Tensor) -> Tensor:
        update = self.dropout(x) @ self.lora_A.T @ self.lora_B.T
        return self.base(x) + self.scaling * update

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with ``W + scaling * B @ A`` (and the same bias): the same
        outputs, no extra matrix products at inference."""
        base = self.base
        linear = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        linear.to(device=base.weight.device, dtype=base.weight.dtype)
        linear.weight.copy_(base.weight + self.delta_weight().to(base.weight.dtype))
        if base.bias is not None:
            linear.bias.copy_(base.bias)
        return linear

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, scaling={self.scaling:g}"


def _matches(name: str, target: str) -> bool:
    """A module name matches a target when it is the target or ends with ``.target``."""
    return name == target or name.endswith("." + target)


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def add_lora(
    model: nn.Module,
    targets: Sequence[str] = ("query", "value"),
    r: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    *,
    also_train: Sequence[str] = (),
) -> nn.Module:
    """Freeze every parameter of ``model``, then wrap each ``nn.Linear`` whose name matches
    one of ``targets`` in a :class:`LoRALinear` (in place; the model is returned too).

    A target matches a module whose full name is the target or ends with ``.`` + target, so
    ``"query"`` finds ``encoder.layer.0.attention.self.query`` in every layer. Modules named by
    ``also_train`` (same matching, e.g. ``"classifier"``, a new head) stay trainable. A target
    that matches nothing, or matches a module that is not an ``nn.Linear``, raises a
    ``ValueError`` that lists the Linear layers' names to choose from.

    Example::

        add_lora(model, ("query", "value"), r=8, alpha=16, also_train=("classifier",))
    """
    if isinstance(targets, str):
        targets = (targets,)
    if not targets:
        raise ValueError("targets is empty; name the Linear layers to adapt, e.g. ('query',).")
    modules = dict(model.named_modules())
    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    _check_names(modules, targets, "target", linears, need_linear=True)
    _check_names(modules, also_train, "also_train name", linears, need_linear=False)
    for p in model.parameters():
        p.requires_grad_(False)
    for name in linears:
        if any(_matches(name, t) for t in targets):
            _set_module(model, name, LoRALinear(modules[name], r=r, alpha=alpha, dropout=dropout))
    for name, module in modules.items():
        if any(_matches(name, t) for t in also_train):
            module.requires_grad_(True)
    return model


def _check_names(
    modules: dict[str, nn.Module],
    names: Sequence[str],
    what: str,
    linears: list[str],
    need_linear: bool,
) -> None:
    """Raise a clear error for a name that matches no module (or, for a target, a non-Linear)."""
    examples = sorted({n.rsplit(".", 1)[-1] for n in linears})
    for target in names:
        hits = [n for n in modules if n and _matches(n, target)]
        if any(isinstance(modules[n], LoRALinear) for n in hits):
            raise ValueError(f"{target!r} is already wrapped in LoRALinear; add LoRA only once.")
        if not hits:
            raise ValueError(
                f"The {what} {target!r} matches no module of {type(modules['']).__name__}. "
                f"Names are matched as the full module name or its last parts; its Linear "
                f"layers end in: {', '.join(examples)}."
            )
        if need_linear and not any(isinstance(modules[n], nn.Linear) for n in hits):
            kinds = sorted({type(modules[n]).__name__ for n in hits})
            raise ValueError(
                f"The target {target!r} matches {', '.join(kinds)}, not nn.Linear: LoRA "
                f"here wraps Linear layers only. Choose among: {', '.join(examples)}."
            )


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every :class:`LoRALinear` in ``model`` by its module name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` by its merged ``nn.Linear`` (in place, returned):
    the model computes the same outputs (up to float rounding) with the original
    architecture, at the original cost. The merged weights are frozen like the rest."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError("The model has no LoRALinear layers to merge; call add_lora first.")
    for name, layer in layers.items():
        _set_module(model, name, layer.merged().requires_grad_(False))
    return model


def adapter_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """What an adapter file holds: every LoRA ``A`` and ``B`` and every other trainable
    parameter (the ``also_train`` modules, such as a new head), by name, on the CPU."""
    state = {
        name: p.detach().cpu().contiguous()
        for name, p in model.named_parameters()
        if p.requires_grad or ".lora_A" in name or ".lora_B" in name
    }
    if not any(".lora_" in name for name in state):
        raise ValueError("The model has no LoRA layers; call add_lora before saving an adapter.")
    return state


def _config(model: nn.Module) -> dict[str, object]:
    layers = lora_layers(model)
    first = next(iter(layers.values()))
    return {"targets": sorted(layers), "r": first.r, "alpha": first.alpha}


def save_adapter(model: nn.Module, path: str | Path) -> Path:
    """Write :func:`adapter_state_dict` to a safetensors file, with the LoRA settings (wrapped
    layers, ``r``, ``alpha``) in its metadata; atomic (a temporary file, then a rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = adapter_state_dict(model)
    metadata = {"lora": json.dumps(_config(model))}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_adapter(model: nn.Module, path: str | Path, dropout: float = 0.0) -> nn.Module:
    """Put a saved adapter into ``model`` (the same base model it was trained on): add the
    LoRA layers its metadata names (unless the model has them already), then copy every
    tensor in. Tensors the model lacks, or whose shape differs, raise a ``ValueError`` that
    names them; the rest of the model stays as it was."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No adapter file at {path}; write one with save_adapter().")
    with safe_open(str(path), framework="pt") as f:
        config = json.loads((f.metadata() or {}).get("lora", "null") or "null")
        state = {name: f.get_tensor(name) for name in f.keys()}
    if config is None:
        raise ValueError(f"{path} has no LoRA settings in its metadata: not a save_adapter file.")
    if not lora_layers(model):
        add_lora(model, config["targets"], r=config["r"], alpha=config["alpha"], dropout=dropout)
    params = dict(model.named_parameters())
    unexpected = [n for n in state if n not in params]
    wrong = [f"{n} {tuple(t.shape)} vs {tuple(params[n].shape)}" for n, t in state.items()
             if n in params and params[n].shape != t.shape]  # fmt: skip
    if unexpected or wrong:
        raise ValueError(
            f"The adapter {path} does not fit this model: unknown tensors {unexpected[:3]}, "
            f"shapes that differ {wrong[:3]}. Load it into the base model it was trained on."
        )
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    return model


def finetuning_memory(
    total: int, trainable: int, *, weight_bytes: int = 4, optimizer_states: int = 2
) -> dict[str, int]:
    """Bytes that training needs for the parameters alone (activations not counted): every
    weight (``total``), a gradient for every ``trainable`` one, and ``optimizer_states``
    numbers per trainable weight (AdamW keeps two: the running mean and variance), all of
    ``weight_bytes`` each (4 in float32). Keys: ``weights``, ``gradients``, ``optimizer``,
    ``total``.

    Example::

        >>> finetuning_memory(110_000_000, 110_000_000)["total"] / 2**30   # bert-base, fp32
        1.639...
    """
    if not 0 <= trainable <= total:
        raise ValueError(f"Need 0 <= trainable <= total, got trainable={trainable}, total={total}.")
    weights = total * weight_bytes
    gradients = trainable * weight_bytes
    optimizer = trainable * weight_bytes * optimizer_states
    return {
        "weights": weights,
        "gradients": gradients,
        "optimizer": optimizer,
        "total": weights + gradients + optimizer,
    }
