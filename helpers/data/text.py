"""Text as tensors: a simple tokenizer, a vocabulary, a dataset of encoded texts and the
collate function that pads each batch to its own longest text (dynamic padding).

Example::

    from helpers.data import build_vocab, TextClassificationDataset, pad_collate
    vocab = build_vocab(train.text, min_freq=2)
    ds = TextClassificationDataset(train.text, train.label, vocab.encode, max_length=256)
    loader = DataLoader(ds, batch_size=32, shuffle=True, collate_fn=pad_collate)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

_TOKEN_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def simple_tokenize(text: str) -> list[str]:
    """Split a text into lowercase words (keeping inner apostrophes) and single punctuation
    marks; whitespace is dropped. The tokenizer of the course's from-scratch text models.

    Example::

        >>> simple_tokenize("Don't miss it -- 10/10!")
        ["don't", 'miss', 'it', '-', '-', '10', '/', '10', '!']
    """
    if not isinstance(text, str):
        raise TypeError(f"simple_tokenize expects a str, got {type(text).__name__}: {text!r}.")
    return _TOKEN_RE.findall(text.lower())


class Vocab:
    """A token <-> id mapping with ``<pad>`` as id 0 and ``<unk>`` as id 1.

    ``tokens`` are the ordinary tokens (ids 2, 3, ...); ``tokenizer`` splits a text for
    :meth:`encode` (default :func:`simple_tokenize`). Usually built by :func:`build_vocab`.

    Example::

        >>> v = Vocab(["good", "bad"])
        >>> v.encode("Good, very good")
        [2, 1, 1, 2]
        >>> v.decode([2, 3, 0])
        'good bad'
    """

    pad_token, unk_token = "<pad>", "<unk>"
    pad_id, unk_id = 0, 1

    def __init__(
        self, tokens: Iterable[str], tokenizer: Callable[[str], list[str]] = simple_tokenize
    ) -> None:
        self.itos: list[str] = [self.pad_token, self.unk_token]
        self.stoi: dict[str, int] = {self.pad_token: 0, self.unk_token: 1}
        for token in tokens:
            if token in self.stoi:
                raise ValueError(
                    f"Token {token!r} appears twice (or is a special token); "
                    f"a vocabulary needs unique tokens."
                )
            self.stoi[token] = len(self.itos)
            self.itos.append(token)
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, first={self.itos[2:7]})"

    def encode(self, text: str) -> list[int]:
        """The ids of a text's tokens; unknown tokens become ``unk_id``."""
        return [self.stoi.get(token, self.unk_id) for token in self.tokenizer(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """The tokens of ``ids`` joined by spaces, with padding left out."""
        out = []
        for i in (int(i) for i in ids):
            if not 0 <= i < len(self.itos):
                raise IndexError(f"Token id {i} is outside this vocabulary (0..{len(self) - 1}).")
            if i != self.pad_id:
                out.append(self.itos[i])
        return " ".join(out)


def build_vocab(
    texts: Iterable[str],
    min_freq: int = 1,
    max_size: int | None = None,
    tokenizer: Callable[[str], list[str]] = simple_tokenize,
) -> Vocab:
    """Count the tokens of ``texts`` and keep the frequent ones in a :class:`Vocab`.

    Tokens seen fewer than ``min_freq`` times are dropped; ``max_size`` caps the size of
    the whole vocabulary, ``<pad>`` and ``<unk>`` included. Tokens are ordered by count
    (most frequent first), ties alphabetically, so the same texts always give the same ids.

    Example::

        >>> build_vocab(["a b b", "b c"], min_freq=2).itos
        ['<pad>', '<unk>', 'b']
    """
    if isinstance(texts, str):
        raise TypeError(
            "build_vocab expects an iterable of texts, not a single str; wrap it: [text]."
        )
    if not isinstance(min_freq, int) or min_freq < 1:
        raise ValueError(f"min_freq must be an int >= 1, got {min_freq!r}.")
    if max_size is not None and (not isinstance(max_size, int) or max_size < 2):
        raise ValueError(
            f"max_size must be None or an int >= 2 (room for <pad> and <unk>), got {max_size!r}."
        )
    counts = Counter(token for text in texts for token in tokenizer(text))
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    kept = [t for t in kept if t not in (Vocab.pad_token, Vocab.unk_token)]
    if max_size is not None:
        kept = kept[: max_size - 2]
    return Vocab(kept, tokenizer=tokenizer)


def _integer_labels(labels: Sequence[int], n_texts: int) -> list[int]:
    """``labels`` as a list of ints >= 0, one per text, or an error naming the bad one."""
    checked = list(labels)
    for i, y in enumerate(checked):
        try:
            checked[i] = int(y)
        except (TypeError, ValueError):
            raise ValueError(
                f"Label at index {i} is {y!r}; labels must be integer ids, e.g. "
                f"SENTIMENT_LABELS.index(name)."
            ) from None
    if n_texts != len(checked):
        raise ValueError(f"Got {n_texts} texts but {len(checked)} labels; they must pair up.")
    return checked


def _encode_one(
    encode: Callable[[str], list[int]], text: str, index: int, max_length: int | None
) -> Tensor:
    """The ids of one text as a 1-D long tensor cut to ``max_length``, never empty."""
    ids = encode(text)
    if isinstance(ids, Mapping):
        raise TypeError(
            "encode returned a mapping (a tokenizer's BatchEncoding?); make it "
            "return the ids only, e.g. lambda t: tok(t)['input_ids']."
        )
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()[:max_length]
    if ids.numel() == 0:
        raise ValueError(
            f"Text at index {index} encodes to no tokens: {text!r}. Remove empty "
            f"texts before building the dataset."
        )
    return ids


class TextClassificationDataset(Dataset):
    """Map-style dataset of encoded texts and integer labels.

    Every text is encoded once, up front, by ``encode`` (``Vocab.encode``, or a Hugging Face
    tokenizer: ``lambda t: tok(t, truncation=True, max_length=128)["input_ids"]``) and cut to
    ``max_length`` tokens when given. Item ``i`` is ``{"input_ids": LongTensor[L], "labels":
    LongTensor[]}``; :attr:`lengths` lists every ``L`` for
    :class:`~helpers.data.BucketBatchSampler`.

    Example::

        >>> ds = TextClassificationDataset(["good", "bad film"], [1, 0],
        ...                                Vocab(["good", "bad"]).encode)
        >>> ds[1]["input_ids"], ds.lengths
        (tensor([3, 1]), [1, 2])
    """

    def __init__(
        self,
        texts: Sequence[str],
        labels: Sequence[int],
        encode: Callable[[str], list[int]],
        max_length: int | None = None,
    ) -> None:
        texts = list(texts)
        labels = _integer_labels(labels, len(texts))
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ValueError(f"max_length must be None or an int >= 1, got {max_length!r}.")
        if any(y < 0 for y in labels):
            bad = next(i for i, y in enumerate(labels) if y < 0)
            raise ValueError(f"Label at index {bad} is {labels[bad]}; labels must be ids >= 0.")
        self.texts = texts
        self.labels = labels
        self._ids = [_encode_one(encode, text, i, max_length) for i, text in enumerate(texts)]

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"input_ids": self._ids[index], "labels": torch.tensor(self.labels[index])}

    @property
    def lengths(self) -> list[int]:
        """The number of tokens of every item, in dataset order."""
        return [len(ids) for ids in self._ids]


def _check_batch(batch: list[dict], pad_id: int) -> None:
    """Raise a clear error for a bad ``pad_id``, an empty batch or an item without keys."""
    if pad_id is None or isinstance(pad_id, bool) or not isinstance(pad_id, int):
        raise ValueError(
            f"pad_id must be an int, got {pad_id!r}. A tokenizer without a pad "
            f"token needs one first: tokenizer.pad_token = tokenizer.eos_token."
        )
    if len(batch) == 0:
        raise ValueError("pad_collate got an empty batch.")
    for i, item in enumerate(batch):
        if not isinstance(item, Mapping) or "input_ids" not in item or "labels" not in item:
            raise KeyError(
                f"Batch item {i} must be a dict with 'input_ids' and 'labels', got "
                f"{list(item) if isinstance(item, Mapping) else type(item).__name__}."
            )


def pad_collate(batch: list[dict], pad_id: int = 0) -> dict[str, Tensor]:
    """``DataLoader(collate_fn=pad_collate)``: pad a list of ``{"input_ids", "labels"}`` items
    to the longest sequence *of this batch* (dynamic padding).

    Returns ``{"input_ids": (B, L) long, "attention_mask": (B, L) long (1 = real token,
    0 = padding), "labels": (B,) long}``. For a Hugging Face model pass its pad id with
    ``functools.partial(pad_collate, pad_id=tokenizer.pad_token_id)``, which, unlike a lambda,
    can be sent to ``num_workers > 0`` worker processes.

    Example::

        >>> pad_collate([{"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor(1)},
        ...              {"input_ids": torch.tensor([8]), "labels": torch.tensor(0)}])["input_ids"]
        tensor([[5, 6, 7],
                [8, 0, 0]])
    """
    _check_batch(batch, pad_id)
    seqs = [torch.as_tensor(item["input_ids"], dtype=torch.long) for item in batch]
    lengths = torch.tensor([len(s) for s in seqs])
    input_ids = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=pad_id)
    attention_mask = (torch.arange(input_ids.shape[1]) < lengths[:, None]).long()
    labels = torch.stack([torch.as_tensor(item["labels"], dtype=torch.long) for item in batch])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
