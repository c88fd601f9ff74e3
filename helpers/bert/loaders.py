"""Text data for fine-tuning: the splits of the course corpus or SST-2, token lengths, and
``DataLoader``s with dynamic padding and length bucketing, optionally sharded between the
processes of a ``torchrun`` run.

Example::

    frames = load_splits("course")
    loaders = make_sentiment_loaders(tokenizer, frames, batch_size=32, max_length=96)
    batch = next(iter(loaders["train"]))      # input_ids, attention_mask, labels
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from helpers.bert.models import quiet_transformers
from helpers.data import (
    SENTIMENT_SPLITS,
    BucketBatchSampler,
    TextClassificationDataset,
    load_sentiment_split,
    pad_collate,
)
from helpers.device import make_generator
from helpers.train import distributed_loader

#: The dataset of the full (online, GPU) path.
HUB_DATASET_NAME = "stanfordnlp/sst2"
#: Labelled SST-2 sentences held out of the training split as the validation set of the full
#: path; SST-2's own validation split (872 sentences, the "dev" set papers report) is the test set.
SST2_VALIDATION_SIZE = 2000


def _sst2_splits() -> dict[str, pd.DataFrame]:
    """SST-2 from the Hub: train minus 2,000 held-out sentences, those, and the labelled dev set."""
    from datasets import load_dataset

    quiet_transformers()
    raw = load_dataset(HUB_DATASET_NAME)
    columns = {"sentence": "text"}
    train = raw["train"].to_pandas().rename(columns=columns)[["text", "label"]]
    held_out = train.sample(n=SST2_VALIDATION_SIZE, random_state=0)
    return {
        "train": train.drop(held_out.index).reset_index(drop=True),
        "validation": held_out.reset_index(drop=True),
        "test": raw["validation"].to_pandas().rename(columns=columns)[["text", "label"]],
    }


def load_splits(
    dataset: str = "course", limit: int | None = None, *, classes: int = 2
) -> dict[str, pd.DataFrame]:
    """The train/validation/test splits of ``dataset`` as DataFrames with ``text`` and
    ``label`` (0 = negative, 1 = positive, 2 = neutral) columns.

    ``"course"`` reads the ``classes``-class view (2 or 3) of the review corpus that ships
    with the course (:func:`helpers.data.load_sentiment_split`). ``"sst2"`` (two classes
    only) downloads SST-2 from the Hub with the ``datasets`` library: its train split minus
    2,000 held-out sentences (the validation set), and its labelled validation split (872
    sentences) as the test set, because the labels of SST-2's test split are hidden.
    ``limit`` keeps the first ``limit`` rows of every split (tiny test runs; the splits are
    already shuffled and stratified).
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be None or an int >= 1, got {limit!r}.")
    if dataset == "course":
        frames = {split: load_sentiment_split(split, classes=classes) for split in SENTIMENT_SPLITS}
    elif dataset == "sst2":
        if classes != 2:
            raise ValueError("SST-2 has two classes; use dataset='course' for classes=3.")
        frames = _sst2_splits()
    else:
        raise ValueError(f"Unknown dataset {dataset!r}; use 'course' (offline) or 'sst2' (Hub).")
    if limit is not None:
        frames = {
            split: frame.head(limit).reset_index(drop=True) for split, frame in frames.items()
        }
    return frames


def _encoder(tokenizer: Any, max_length: int) -> Callable[[str], list[int]]:
    """Text -> token ids with [CLS] and [SEP], truncated to ``max_length`` ids in total."""
    return lambda text: tokenizer(text, truncation=True, max_length=max_length)["input_ids"]


def token_lengths(texts: Sequence[str], tokenizer: Any) -> np.ndarray:
    """The number of tokens of every text (special tokens included, no truncation): look at
    its distribution before choosing ``max_length``."""
    if isinstance(texts, str):
        raise TypeError("token_lengths expects a list of texts, not a single str; wrap it: [text].")
    return np.array([len(ids) for ids in tokenizer(list(texts))["input_ids"]], dtype=np.int64)


def _check_loader_arguments(tokenizer: Any, max_length: int, num_replicas: int, rank: int) -> None:
    """Raise a clear error for a bad ``max_length``, rank, or a tokenizer without padding."""
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(
            f"max_length must be an int >= 2 (room for [CLS] and [SEP]), got {max_length!r}."
        )
    if not isinstance(num_replicas, int) or num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(
            f"Need num_replicas >= 1 and 0 <= rank < num_replicas, got "
            f"num_replicas={num_replicas!r}, rank={rank!r}."
        )
    if tokenizer.pad_token_id is None:
        raise ValueError(
            "The tokenizer has no pad token; set one first, e.g. "
            "tokenizer.pad_token = tokenizer.eos_token."
        )


def make_text_loader(
    texts: Sequence[str],
    labels: Sequence[int],
    tokenizer: Any,
    *,
    batch_size: int = 32,
    max_length: int = 128,
    bucketing: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
) -> DataLoader:
    """A ``DataLoader`` of ``{"input_ids", "attention_mask", "labels"}`` batches with dynamic
    padding: every text is tokenized once (truncated to ``max_length`` tokens) and each batch
    is padded only to its own longest text.

    ``bucketing=True`` also groups texts of similar length into the same batch
    (:class:`helpers.data.BucketBatchSampler`), so there is hardly any padding left;
    ``bucketing=False`` batches in random (``shuffle``) or dataset order. With
    ``num_replicas > 1`` (a ``torchrun`` process, see ``helpers.train.setup_distributed``) the
    loader yields only this ``rank``'s share. With bucketing that is every
    ``num_replicas``-th batch (see ``BucketBatchSampler``): for training (``shuffle=True``)
    every rank gets the same number of batches, one repeated if need be, and for evaluation
    nothing is repeated, so every text is seen exactly once across the ranks. Random batches
    are shared out by ``helpers.train.distributed_loader`` (a ``DistributedSampler``), which
    repeats up to ``num_replicas - 1`` texts so that every rank gets as many
    (``helpers.train``'s evaluation leaves the repeats out).

    Example::

        loader = make_text_loader(df.text, df.label, tokenizer, batch_size=32, max_length=96)
    """
    _check_loader_arguments(tokenizer, max_length, num_replicas, rank)
    dataset = TextClassificationDataset(list(texts), list(labels), _encoder(tokenizer, max_length))
    collate = functools.partial(pad_collate, pad_id=int(tokenizer.pad_token_id))
    if bucketing:
        sampler = BucketBatchSampler(
            dataset.lengths,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
        )
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate,
        generator=make_generator(seed) if shuffle else None,
    )
    if num_replicas > 1:  # a DistributedSampler instead of the loader's own
        loader = distributed_loader(
            loader, shuffle=shuffle, seed=seed, num_replicas=num_replicas, rank=rank
        )
    return loader


def make_sentiment_loaders(
    tokenizer: Any,
    frames: Mapping[str, pd.DataFrame] | None = None,
    *,
    batch_size: int = 32,
    max_length: int = 96,
    bucketing: bool = True,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
) -> dict[str, DataLoader]:
    """Loaders for the ``"train"``, ``"validation"`` and ``"test"`` splits in ``frames``
    (default: the course's review corpus, :func:`load_splits`), built by
    :func:`make_text_loader`. Only the training loader shuffles. With ``num_replicas > 1``
    every loader holds only this ``rank``'s share: the training loaders of all ranks take
    the same number of steps (a batch repeated where needed); the evaluation loaders repeat
    nothing with bucketing (with ``bucketing=False`` the few texts ``DistributedSampler``
    repeats are left out by ``helpers.train``'s evaluation), so that combining the results of
    all ranks (``helpers.train.evaluate`` does) counts every text of a split exactly once.

    Example::

        loaders = make_sentiment_loaders(tokenizer, batch_size=32, max_length=96)
        batch = next(iter(loaders["train"]))      # input_ids, attention_mask, labels
    """
    frames = frames if frames is not None else load_splits("course")
    missing = [s for s in SENTIMENT_SPLITS if s not in frames]
    if missing:
        raise KeyError(f"frames lacks the split(s) {missing}; it needs {list(SENTIMENT_SPLITS)}.")
    return {
        split: make_text_loader(
            frames[split]["text"],
            frames[split]["label"],
            tokenizer,
            batch_size=batch_size,
            max_length=max_length,
            bucketing=bucketing,
            shuffle=split == "train",
            seed=seed,
            num_replicas=num_replicas,
            rank=rank,
        )
        for split in SENTIMENT_SPLITS
    }
