"""Using a fine-tuned (or frozen) encoder: the pooled features its head reads, class
probabilities for new texts, and :func:`predict_sentiment`, which classifies texts with a
folder saved by ``save_pretrained`` (for example by ``scripts/finetune_sentiment.py``).

Example::

    labels, probs = predict_sentiment(["A joy from start to finish."], "artifacts/model")
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from helpers.bert.models import quiet_transformers
from helpers.data import pad_collate
from helpers.device import eval_mode, model_device


def _pooled(out: Any, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """One vector per text from the encoder's output: ``"cls"`` is what the classification
    head reads (``pooler_output``, else the [CLS] state), ``"mean"`` the average of the token
    vectors over the attention mask (padding left out), how sentence encoders are trained."""
    if pooling == "mean":
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        return (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)
    if getattr(out, "pooler_output", None) is not None:
        return out.pooler_output
    return out.last_hidden_state[:, 0]


def extract_features(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device | str | None = None,
    pooling: str = "cls",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the encoder of a ``...ForSequenceClassification`` model once over ``loader`` and
    return ``(features, labels)``, one row per text, on the CPU. ``pooling="cls"`` gives the
    pooled [CLS] vector that the model's own head reads (``pooler_output``); ``"mean"`` the
    mean of the token vectors over the attention mask, the sentence vector that encoders
    like all-MiniLM-L6-v2 were trained to produce. With a frozen encoder these features
    never change, so a head can be trained on them in seconds. The model runs in
    evaluation mode, without gradients (not ``inference_mode``: the features must be usable
    to train a head), and gets its mode back afterwards."""
    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}.")
    base = getattr(model, "base_model", None)
    if base is None or base is model:
        raise ValueError(
            f"{type(model).__name__} has no base_model (encoder) to extract features with."
        )
    device = torch.device(device) if device is not None else model_device(model)
    feats, labels = [], []
    with eval_mode(model):
        for batch in loader:
            inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
            out = base(**inputs)
            feats.append(_pooled(out, inputs["attention_mask"], pooling).float().cpu())
            labels.append(batch["labels"])
    return torch.cat(feats), torch.cat(labels)


def predict_proba(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    max_length: int = 128,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Class probabilities (softmax of the logits), shape ``(len(texts), num_labels)``, in
    the order of ``texts``. Texts are batched by length internally (little padding) and the
    rows put back in the original order; the model runs in evaluation mode, without
    gradients, and gets its mode back afterwards."""
    texts = list(texts)
    probs = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    if not texts:
        return probs
    device = torch.device(device) if device is not None else model_device(model)
    encoded = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    with eval_mode(model):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = pad_collate(
                [{"input_ids": encoded[i], "labels": 0} for i in idx],
                pad_id=int(tokenizer.pad_token_id),
            )
            logits = model(
                input_ids=batch["input_ids"].to(device),
                attention_mask=batch["attention_mask"].to(device),
            ).logits
            probs[idx] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return probs


@functools.lru_cache(maxsize=2)
def _load_for_inference(folder: str, stamp: float) -> tuple[nn.Module, Any]:
    """Model and tokenizer of a saved folder, cached by path and modification time."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model.eval(), tokenizer


def _lacking_files(present: list[str]) -> list[str]:
    """What a saved classifier folder holding the files ``present`` lacks, in words."""
    lacking = []
    if "config.json" not in present:
        lacking.append("config.json")
    if not any(n.endswith((".safetensors", ".bin")) for n in present):
        lacking.append("model.safetensors (or pytorch_model.bin)")
    if not ({"tokenizer.json", "vocab.txt"} & set(present)):
        lacking.append("tokenizer.json or vocab.txt")
    return lacking


def _check_model_dir(model_dir: str | Path) -> Path:
    """``model_dir`` as a ``Path``, after checking it holds a saved model and tokenizer."""
    folder = Path(model_dir)
    hint = (
        "Train and save one first, e.g. `python scripts/finetune_sentiment.py --output-dir "
        f"{folder}`, or pass the folder given to save_pretrained()."
    )
    if not folder.exists():
        raise FileNotFoundError(f"No model folder at {folder}. {hint}")
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{folder} is a file; model_dir must be the folder that save_pretrained() wrote. {hint}"
        )
    present = sorted(p.name for p in folder.iterdir())
    lacking = _lacking_files(present)
    if lacking:
        raise ValueError(
            f"{folder} is not a saved classifier folder: it lacks "
            f"{', '.join(lacking)} (it holds: {', '.join(present) or 'nothing'}). "
            f"Save both: model.save_pretrained(dir) and "
            f"tokenizer.save_pretrained(dir). {hint}"
        )
    return folder


def _check_texts(texts: str | Sequence[str]) -> list[str]:
    """``texts`` as a non-empty list of non-empty strings (a single string is one text)."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError(
            "predict_sentiment got no texts; pass a list of strings, e.g. ['I loved it.']."
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"Text at index {i} is a {type(text).__name__} ({text!r}); every "
                f"text must be a str."
            )
        if not text.strip():
            raise ValueError(f"Text at index {i} is empty; remove empty texts before predicting.")
    return texts


def predict_sentiment(
    texts: str | Sequence[str],
    model_dir: str | Path,
    *,
    batch_size: int = 64,
    max_length: int = 128,
    device: torch.device | str | None = None,
) -> tuple[list[str], np.ndarray]:
    """Classify ``texts`` with the fine-tuned classifier saved in ``model_dir`` and return
    ``(labels, probabilities)``: the predicted label name of every text (from the model's
    ``id2label``) and an array of shape ``(n_texts, n_labels)`` whose columns follow the
    label ids (for the course's models: negative, positive). A single string counts as one
    text.

    The model is loaded once and kept (until the folder changes). A missing folder, a folder
    without a saved model or tokenizer, empty input and empty texts raise errors that say
    what to do.

    Example::

        >>> labels, probs = predict_sentiment(["A joy from start to finish."], "artifacts/model")
        >>> labels, probs.round(2)                                  # doctest: +SKIP
        (['positive'], array([[0.02, 0.98]], dtype=float32))
    """
    texts = _check_texts(texts)
    folder = _check_model_dir(model_dir).resolve()
    stamp = (folder / "config.json").stat().st_mtime
    try:
        model, tokenizer = _load_for_inference(str(folder), stamp)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"{folder} holds files that do not load as a sequence classifier: {err}"
        ) from err
    if device is not None:
        model.to(device)
    probs = predict_proba(model, tokenizer, texts, batch_size=batch_size, max_length=max_length)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    return [id2label[int(i)] for i in probs.argmax(axis=1)], probs
