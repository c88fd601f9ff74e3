"""Checkpoints: everything needed to continue training exactly where it stopped.

A checkpoint holds the model's weights and also the optimiser's state (Adam's moving
averages), the scheduler's, the gradient scaler's, the epoch, the history and the states of
every random-number generator, so that a resumed run reaches the same weights as an
uninterrupted one. It is written atomically (a crash never leaves half a file) and read with
``torch.load(..., weights_only=True)``, which cannot run code hidden in a file.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.train.distributed import barrier, gather_objects, is_main_process, unwrap, world

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "save_training",
    "resume_training",
    "rng_state",
    "loader_generators",
]

CHECKPOINT_FORMAT = 1


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's (CPU and GPU) random-number generators."""
    np_state = np.random.get_state(legacy=False)
    return {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": np_state["state"]["key"].tolist(),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": np.asarray(n["key"], dtype=np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The generators that decide a loader's shuffle, each once, in a fixed order."""
    found: list[torch.Generator] = []
    for owner in (
        loader,
        getattr(loader, "sampler", None),
        getattr(loader, "batch_sampler", None),
        getattr(getattr(loader, "batch_sampler", None), "sampler", None),
    ):
        g = getattr(owner, "generator", None)
        if isinstance(g, torch.Generator) and all(g is not f for f in found):
            found.append(g)
    return found


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    epoch: int = 0,
    history: Mapping[str, list[float]] | None = None,
    extra: Mapping[str, Any] | None = None,
    rng: Any = None,
) -> Path:
    """Write a training checkpoint atomically: model, optimizer, scheduler, scaler, epoch,
    history and the random-number-generator states, saved to a temporary file in the same
    folder, flushed to disk, then renamed over ``path`` with ``os.replace``. A crash at any
    moment leaves either the previous checkpoint or the new one, never a half-written file.

    ``rng`` defaults to this process's RNG states; ``extra`` holds anything else (picklable by
    ``torch.save`` with plain types, e.g. ``{"global_step": 120}``). The model is saved without
    its ``DistributedDataParallel``/``torch.compile`` wrapper. Returns the path.

    Example::

        save_checkpoint("checkpoints/last.pt", model, optimizer, epoch=3, history=history)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": CHECKPOINT_FORMAT,
        "epoch": int(epoch),
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "history": {k: list(v) for k, v in (history or {}).items()},
        "rng": rng if rng is not None else [rng_state()],
        "extra": dict(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX only)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: torch.amp.GradScaler | None = None,
    *,
    map_location: str | torch.device = "cpu",
    restore_rng: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and load its states into the
    objects given (each optional); returns the whole checkpoint dict (``epoch``, ``history``,
    ``extra``, ...). ``restore_rng=True`` also restores the random-number generators so that
    training continues exactly as it would have. Loading uses ``weights_only=True``.

    Example::

        ckpt = load_checkpoint("checkpoints/last.pt", model, optimizer)
        print("trained for", ckpt["epoch"], "epochs")
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No checkpoint at {path}. Train with fit(..., checkpoint_path=...) "
            f"first, or check the path (it is relative to {Path.cwd().name}/)."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(
            f"{path} is not a readable checkpoint (truncated, or not written by "
            f"save_checkpoint): {err}"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a checkpoint written by helpers.train.save_checkpoint.")
    if model is not None:
        try:
            unwrap(model).load_state_dict(state["model"])
        except RuntimeError as err:
            raise ValueError(
                f"The checkpoint {path} does not fit this model (a different "
                f"architecture or size?): {err}"
            ) from err
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if obj is None:
            continue
        if state[name] is None:
            raise ValueError(
                f"The checkpoint {path} has no {name} state; it was saved without one."
            )
        obj.load_state_dict(state[name])
    if restore_rng:
        rank, size = world()
        states = state["rng"]
        _set_rng_state(states[rank] if len(states) == size else states[0])
    return state


def save_training(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    history: Mapping[str, list[float]],
    step: int,
    train_loader: Iterable,
) -> None:
    """What ``fit`` saves after every epoch: :func:`save_checkpoint` with the optimiser step
    count and the shuffle state of ``train_loader`` in ``extra``, and the RNG states of every
    process. Rank 0 writes; the others wait until the file is there."""
    rng = gather_objects(rng_state())
    if is_main_process():
        generators = [g.get_state() for g in loader_generators(train_loader)]
        save_checkpoint(
            path,
            model,
            optimizer,
            scheduler,
            scaler,
            epoch=int(history["epoch"][-1]),
            history=history,
            rng=rng,
            extra={"global_step": step, "loader_rng": generators},
        )
    barrier()


def resume_training(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    train_loader: Iterable,
) -> tuple[dict[str, list[float]], int]:
    """Load a checkpoint written by :func:`save_training` into the objects, restore every
    random-number generator and the loader's shuffle, and return ``(history, step)``."""
    ckpt = load_checkpoint(path, model, optimizer, scheduler, scaler, restore_rng=True)
    for g, state in zip(loader_generators(train_loader), ckpt["extra"].get("loader_rng", [])):
        g.set_state(state)
    history = {k: list(v) for k, v in ckpt["history"].items()}
    return history, int(ckpt["extra"].get("global_step", 0))
