"""Choosing a device and a precision, seeding every random number generator, describing the
environment, and comparing the installed packages with the course's lock file.

Typical start of a notebook::

    from helpers.device import get_device, seed_everything
    seed_everything(42)
    device = get_device()          # cuda, mps, xpu or cpu, whichever this machine has
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from torch import nn

#: Environment variable that overrides the automatic choice, e.g. ``COURSE_DEVICE=cpu``.
DEVICE_ENV_VAR = "COURSE_DEVICE"

_KNOWN_TYPES = ("cuda", "mps", "xpu", "cpu")


def _accelerator_type() -> str | None:
    """The type of the best accelerator torch can use here, or ``None`` on a plain CPU."""
    accel = getattr(torch, "accelerator", None)
    if accel is not None and accel.is_available():  # torch >= 2.6
        return accel.current_accelerator().type
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    if hasattr(torch, "xpu") and torch.xpu.is_available():
        return "xpu"
    return None


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best device on this machine: CUDA, then Apple MPS, then Intel XPU, then CPU.

    ``prefer`` (or the ``COURSE_DEVICE`` environment variable) forces a device type, for
    example ``"cpu"`` to compare speeds or to debug. Asking for a device this machine does
    not have raises a ``RuntimeError`` that says which devices are available.

    Example::

        >>> get_device("cpu")
        device(type='cpu')
    """
    wanted = prefer or os.environ.get(DEVICE_ENV_VAR) or None
    best = _accelerator_type()
    if wanted is None:
        return torch.device(best or "cpu")
    kind = wanted.split(":")[0]
    if kind not in _KNOWN_TYPES:
        raise ValueError(f"Unknown device {wanted!r}; use one of {', '.join(_KNOWN_TYPES)}.")
    if kind != "cpu" and kind != best:
        have = ", ".join(t for t in (best, "cpu") if t)
        raise RuntimeError(
            f"Device {wanted!r} was requested but this machine only has: {have}. "
            f"Unset {DEVICE_ENV_VAR} or pass prefer=None to choose automatically."
        )
    return torch.device(wanted)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a model with neither.
    The training loop moves every batch there.

    Example::

        >>> model_device(nn.Linear(2, 1))
        device(type='cpu')
    """
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the ``with`` block with ``model`` in evaluation mode (dropout off, batch norm using
    its running statistics) and without recording gradients, then put the model back in the
    mode it had, even after an error. Every evaluation loop of the course uses it.

    Example::

        with eval_mode(model):
            logits = model(x)
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def choose_amp(amp: bool | str, device: torch.device | str) -> tuple[torch.dtype | None, bool]:
    """The course's one mixed-precision policy: the autocast dtype for ``amp`` on ``device``,
    and whether a ``GradScaler`` is needed.

    ``False`` is full float32. ``True`` means "whatever is right here": bfloat16 on a GPU that
    supports it (no scaler needed: bf16 has float32's range); float16 with a ``GradScaler`` on
    a GPU without bf16, such as Colab's T4 (fp16 gradients underflow without loss scaling);
    float32 on a CPU and other devices, where bf16 is emulated on most processors, so it is
    slower and its results differ between CPUs. ``"bf16"`` and ``"fp16"`` ask for a dtype
    explicitly, on any device (fp16 always with a scaler).

    Example::

        >>> choose_amp(True, "cpu"), choose_amp("bf16", "cpu")
        ((None, False), (torch.bfloat16, False))
    """
    device = torch.device(device)
    if amp is False or amp is None:
        return None, False
    if amp is True:
        if device.type != "cuda":
            return None, False
        amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if amp in ("bf16", "bfloat16"):
        return torch.bfloat16, False
    if amp in ("fp16", "float16"):
        return torch.float16, True
    raise ValueError(f"amp must be False, True, 'bf16' or 'fp16', got {amp!r}.")


def seed_everything(seed: int = 42, deterministic: bool = False) -> int:
    """Seed Python, NumPy and torch (CPU and every GPU) so that a run can be repeated.

    With ``deterministic=True`` torch also refuses non-deterministic algorithms and cuDNN
    stops auto-tuning, which is slower but gives bit-identical results on a GPU. Returns the
    seed, so that it can be logged.

    Example::

        >>> seed_everything(0); a = torch.rand(2)
        0
        >>> seed_everything(0); bool((a == torch.rand(2)).all())
        0
        True
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    os.environ["PYTHONHASHSEED"] = str(seed)  # inherited by worker processes
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif torch.are_deterministic_algorithms_enabled():
        # Only switch it off when it is on: the call imports torch's compiler (seconds).
        torch.use_deterministic_algorithms(False)
    return seed


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: give each worker process reproducible
    NumPy and ``random`` streams derived from torch's per-worker seed."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def make_generator(seed: int = 42) -> torch.Generator:
    """A seeded ``torch.Generator`` for ``DataLoader(generator=...)`` or ``random_split``, so
    shuffling is reproducible without touching the global random state."""
    return torch.Generator().manual_seed(seed)


def is_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def environment_report() -> dict[str, str]:
    """Versions and hardware in one dictionary: Python, torch, CUDA, the chosen device, its
    name, CPU threads, and whether this is Colab. Print it at the top of a notebook so that
    anyone reading the outputs knows where they came from."""
    device = get_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple GPU (MPS)"
    else:
        name = platform.processor() or platform.machine()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "none",
        "device": device.type,
        "device_name": name,
        "cpu_threads": str(torch.get_num_threads()),
        "colab": str(is_colab()),
    }


class LockedPackage(TypedDict):
    """One row of :func:`compare_with_lock`."""

    package: str
    locked: str
    installed: str | None
    matches: bool


def compare_with_lock(lock_path: str | Path) -> list[LockedPackage]:
    """Compare the packages installed here with a lock file such as the course's
    ``requirements.lock`` (written by ``make lock``: one ``name==version`` line per package,
    followed by its ``--hash`` lines). Lines whose environment marker is false on this machine
    (``; sys_platform == 'darwin'`` on Linux, say) are skipped. Returns one row per remaining
    package, in the lock's order: its normalised ``package`` name, the ``locked`` version, the
    ``installed`` version (``None`` when it is missing) and whether the two ``matches`` (the
    same version string: ``2.14.1+cu126`` is a different build from ``2.14.1``).

    Example::

        >>> rows = compare_with_lock(helpers.REPO_ROOT / "requirements.lock")
        >>> [row["package"] for row in rows if not row["matches"]]   # after `make install`
        []
    """
    path = Path(lock_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No lock file at {path}: pass the path of the course's requirements.lock "
            "(helpers.REPO_ROOT / 'requirements.lock'), or write it with `make lock`."
        )
    rows: list[LockedPackage] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line[0] in " \t#-":  # hashes, comments, options: not packages
            continue
        try:
            req = Requirement(line.removesuffix("\\").strip())
        except InvalidRequirement as err:
            raise ValueError(
                f"{path}, line {number}: {err}. Regenerate it with `make lock`."
            ) from err
        pins = [spec.version for spec in req.specifier if spec.operator == "=="]
        if len(pins) != 1:
            raise ValueError(
                f"{path}, line {number}: {line!r} does not pin one exact version "
                "(name==version). Regenerate it with `make lock`."
            )
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed: str | None = version(req.name)
        except PackageNotFoundError:
            installed = None
        rows.append(
            {
                "package": canonicalize_name(req.name),
                "locked": pins[0],
                "installed": installed,
                "matches": installed == pins[0],
            }
        )
    return rows
