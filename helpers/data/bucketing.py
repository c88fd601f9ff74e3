"""Length bucketing: batches of texts of similar length, so that dynamic padding adds little,
optionally sharded between the processes of a distributed (``torchrun``) run; and
:func:`padding_fraction`, which measures how much padding a batching leaves.

Example::

    sampler = BucketBatchSampler(ds.lengths, batch_size=32, seed=0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=pad_collate)
    padding_fraction(ds.lengths, sampler)        # about 0.01 instead of 0.5 for random batches
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch.utils.data import Sampler


def _check_replicas(num_replicas: int, rank: int) -> None:
    """Raise a clear error unless ``num_replicas >= 1`` and ``0 <= rank < num_replicas``."""
    valid = (
        isinstance(num_replicas, int)
        and not isinstance(num_replicas, bool)
        and isinstance(rank, int)
        and not isinstance(rank, bool)
        and num_replicas >= 1
        and 0 <= rank < num_replicas
    )
    if not valid:
        raise ValueError(
            f"Need an int num_replicas >= 1 and an int rank with 0 <= rank < "
            f"num_replicas, got num_replicas={num_replicas!r}, rank={rank!r}."
        )


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices whose items have similar lengths, so that dynamic padding adds
    little: what torchtext's ``BucketIterator`` did, as a ``batch_sampler`` for ``DataLoader``.

    With ``shuffle=True`` the indices are shuffled, cut into pools of ``pool_size`` items
    (default 100 batches, rounded up to whole batches), sorted by length inside each pool,
    cut into batches, and the batch order is shuffled, so batches stay random across epochs
    but hold similar lengths. ``shuffle=False`` keeps the index order for the pools and the
    batches (evaluation). The order depends only on ``seed`` and the epoch set with
    :meth:`set_epoch` (call it at the start of every epoch, as with ``DistributedSampler``).
    Only the last batch may be smaller; ``drop_last=True`` drops it.

    With ``num_replicas > 1`` (one sampler per process of a distributed run, each with its
    ``rank``) every process builds the same list of batches and keeps every
    ``num_replicas``-th one, from position ``rank``. For training (``shuffle=True``) the
    processes that come up short repeat the first batches of the list at the end of theirs,
    so that all of them take the same number of steps (DDP waits for every process at each
    step); :meth:`padding_batches` says how many such repeats end this process's list. For
    evaluation (``shuffle=False``) nothing is repeated: every item is seen exactly once
    across the processes, and their numbers of batches may differ by one.

    Example::

        >>> sampler = BucketBatchSampler(ds.lengths, batch_size=32, seed=0)
        >>> loader = DataLoader(ds, batch_sampler=sampler, collate_fn=pad_collate)
        >>> for epoch in range(3):
        ...     sampler.set_epoch(epoch)
        ...     for batch in loader: ...
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        pool_size: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        lengths = [int(n) for n in lengths]
        if not lengths:
            raise ValueError("BucketBatchSampler got no lengths; the dataset is empty.")
        if any(n < 0 for n in lengths):
            bad = next(i for i, n in enumerate(lengths) if n < 0)
            raise ValueError(f"Length at index {bad} is {lengths[bad]}; lengths must be >= 0.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
        if pool_size is None:
            pool_size = 100 * batch_size
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be None or an int >= 1, got {pool_size!r}.")
        _check_replicas(num_replicas, rank)
        self.lengths = lengths
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.pool_size = math.ceil(pool_size / batch_size) * batch_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the shuffle of ``epoch``."""
        self.epoch = epoch

    def _total_batches(self) -> int:
        """The number of batches of one epoch, all processes together, before any padding."""
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _own_batches(self) -> int:
        """How many of the epoch's batches fall to this rank (every ``num_replicas``-th)."""
        return len(range(self.rank, self._total_batches(), self.num_replicas))

    def padding_batches(self) -> int:
        """How many batches at the end of this rank's list are repeats of the epoch's first
        batches, added so that every rank takes the same number of steps: at most 1 with
        ``shuffle=True``, always 0 with ``shuffle=False`` or a single process. Code that
        must see every item once (an evaluation) drops that many batches from the end."""
        if not self.shuffle or self.num_replicas == 1:
            return 0
        return math.ceil(self._total_batches() / self.num_replicas) - self._own_batches()

    def __len__(self) -> int:
        """This rank's number of batches per epoch, padding included."""
        return self._own_batches() + self.padding_batches()

    def _epoch_batches(self) -> list[list[int]]:
        """All batches of the current epoch, in order: the same list in every process."""
        n = len(self.lengths)
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(n, generator=g).tolist() if self.shuffle else list(range(n))
        batches: list[list[int]] = []
        for start in range(0, n, self.pool_size):
            pool = sorted(order[start : start + self.pool_size], key=self.lengths.__getitem__)
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._epoch_batches()
        if self.shuffle and self.num_replicas > 1:  # as DistributedSampler pads its indices
            short = -len(batches) % self.num_replicas
            batches += [batches[k % len(batches)] for k in range(short)]
        return iter(batches[self.rank :: self.num_replicas])


def padding_fraction(lengths: Sequence[int], batches: Iterable[Sequence[int]]) -> float:
    """The share of positions that are padding when every batch of indices in ``batches``
    is padded to its own longest item (``lengths[i]`` is the length of item ``i``).

    Example::

        >>> padding_fraction([1, 3, 2, 2], [[0, 1], [2, 3]])   # 2 pads in 3 + 3 + 2 + 2
        0.2
    """
    lengths = list(lengths)
    real = total = 0
    for b, batch in enumerate(batches):
        batch = [int(i) for i in batch]
        if not batch:
            raise ValueError(f"Batch {b} is empty.")
        bad = [i for i in batch if not 0 <= i < len(lengths)]
        if bad:
            raise IndexError(f"Batch {b} has index {bad[0]}, outside the {len(lengths)} lengths.")
        sizes = [lengths[i] for i in batch]
        real += sum(sizes)
        total += max(sizes) * len(sizes)
    if total == 0:
        raise ValueError("No positions to measure: batches is empty or every length is 0.")
    return (total - real) / total
