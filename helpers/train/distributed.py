"""Running the same loop in several processes with ``torchrun`` and ``DistributedDataParallel``.

Each process trains on its own shard of the data; DDP averages the gradients, so every
process takes the same optimiser step. The one sharding mechanism of the course: a loader
with ordinary batches gets a ``DistributedSampler``, a loader with the course's
``BucketBatchSampler`` gets a sampler that knows ``num_replicas`` and ``rank``.

To give every process the same number of batches, both pad their shard with repeats of a few
samples. That is harmless in training, but an evaluation that kept them would count those
samples twice: :func:`without_padding` drops them, so every sample is counted exactly once.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler

__all__ = [
    "setup_distributed",
    "cleanup_distributed",
    "is_main_process",
    "world",
    "unwrap",
    "distributed_loader",
    "without_padding",
    "gather_objects",
    "barrier",
]


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """True in a single process and on rank 0 of a distributed run: the one that logs and
    writes checkpoints."""
    return world()[0] == 0


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside ``DistributedDataParallel`` and/or ``torch.compile``."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):  # torch.compile
            model = model._orig_mod
        else:
            return model


def setup_distributed(backend: str | None = None) -> tuple[int, int, torch.device]:
    """Join the process group that ``torchrun`` set up and return ``(rank, world_size, device)``.

    Under ``torchrun --nproc_per_node N`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)
    it initialises ``torch.distributed`` with NCCL on GPUs (one GPU per process) or gloo on
    the CPU. Started as a plain ``python script.py`` it does nothing and returns
    ``(0, 1, get_device())``, so one script serves both.

    Example::

        rank, world_size, device = setup_distributed()
        model = DistributedDataParallel(model.to(device)) if world_size > 1 else model.to(device)
    """
    from helpers.device import DEVICE_ENV_VAR, get_device

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, get_device()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and os.environ.get(DEVICE_ENV_VAR, "cuda") != "cpu":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = backend or "nccl"
    else:
        device = torch.device("cpu")
        backend = backend or "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), device


def cleanup_distributed() -> None:
    """Leave the process group (call at the end of a ``torchrun`` script); a no-op otherwise.
    Every process waits for the others first: a process that tears down its gloo threads while
    another still writes its checkpoint can abort ("terminate called without an active
    exception") and fail the whole run after the work is done."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def distributed_loader(
    loader: DataLoader,
    *,
    shuffle: bool | None = None,
    seed: int = 0,
    num_replicas: int | None = None,
    rank: int | None = None,
) -> DataLoader:
    """The same ``DataLoader``, holding only this process's shard of the data. ``shuffle``
    defaults to whether ``loader`` shuffles; ``seed`` fixes the shuffle (``fit`` calls
    ``set_epoch``, so it changes every epoch). A ``BucketBatchSampler`` is sharded by batches,
    anything else gets a ``DistributedSampler``. Outside a distributed run (and without
    ``num_replicas``) the loader is returned unchanged.

    Example::

        train_loader = distributed_loader(DataLoader(train_ds, batch_size=32, shuffle=True))
    """
    if num_replicas is None and world()[1] == 1:
        return loader
    num_replicas = num_replicas if num_replicas is not None else world()[1]
    rank = rank if rank is not None else world()[0]
    if hasattr(loader.batch_sampler, "padding_batches"):  # the course's BucketBatchSampler
        sampler = copy.copy(loader.batch_sampler)
        sampler.num_replicas, sampler.rank = num_replicas, rank
        if shuffle is not None:
            sampler.shuffle = shuffle
        return DataLoader(
            loader.dataset,
            batch_sampler=sampler,
            collate_fn=loader.collate_fn,
            num_workers=loader.num_workers,
            pin_memory=loader.pin_memory,
            worker_init_fn=loader.worker_init_fn,
        )
    if not isinstance(loader.batch_sampler, BatchSampler):
        raise ValueError(
            f"distributed_loader cannot shard a loader with a custom batch_sampler "
            f"({type(loader.batch_sampler).__name__}). Build it with batch_size= and shuffle=, "
            f"or use helpers.data.BucketBatchSampler(..., num_replicas=, rank=)."
        )
    if shuffle is None:
        shuffle = isinstance(loader.sampler, RandomSampler)
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=num_replicas,
        rank=rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=loader.drop_last,
    )
    options: dict[str, Any] = {}
    if loader.num_workers > 0:
        options = {
            "prefetch_factor": loader.prefetch_factor,
            "persistent_workers": loader.persistent_workers,
        }
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        **options,
    )


def _real_samples(sampler: DistributedSampler) -> int:
    """How many of this rank's samples are real: ``DistributedSampler`` pads the index list to
    ``num_samples * num_replicas`` and gives rank r the positions r, r + R, r + 2R, ..."""
    n = len(sampler.dataset)  # type: ignore[arg-type]
    return min(sampler.num_samples, max(0, math.ceil((n - sampler.rank) / sampler.num_replicas)))


def _head(batch: Any, n: int) -> Any:
    """The first ``n`` samples of a batch (tensors sliced along the first dimension)."""
    if isinstance(batch, Tensor):
        return batch[:n]
    if isinstance(batch, dict):
        return {k: _head(v, n) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_head(v, n) for v in batch)
    return batch


def without_padding(loader: Iterable) -> Iterator[Any]:
    """The batches of ``loader`` without the samples that distributed sharding repeated to
    even out the shards (see the module docstring): every sample of the dataset then appears
    in exactly one process, once. Other loaders are passed through unchanged."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    sampler = getattr(loader, "sampler", None)
    if hasattr(batch_sampler, "padding_batches"):
        keep = len(batch_sampler) - batch_sampler.padding_batches()
        for i, batch in enumerate(loader):
            if i == keep:
                return
            yield batch
        return
    if not isinstance(sampler, DistributedSampler) or sampler.drop_last:
        yield from loader
        return
    left = _real_samples(sampler)
    for batch in loader:
        size = len(batch["labels"]) if isinstance(batch, dict) else len(batch[1])
        if left > 0:
            yield batch if size <= left else _head(batch, left)
        left -= size


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` from every process, in rank order (``[obj]`` outside a distributed run)."""
    if world()[1] == 1:
        return [obj]
    out: list[Any] = [None] * world()[1]
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait until every process arrives here (a no-op outside a distributed run)."""
    if world()[1] > 1:
        dist.barrier()
