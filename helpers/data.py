"""Datasets and data pipelines: the course's review corpus, generated shape images, the
scikit-learn digits, text/image ``Dataset`` classes, padding, length bucketing, splits and
transform presets.

Typical text pipeline::

    from torch.utils.data import DataLoader
    from helpers.data import (load_sentiment_split, build_vocab, TextClassificationDataset,
                              BucketBatchSampler, pad_collate)

    train = load_sentiment_split("train")
    vocab = build_vocab(train.text, min_freq=2)
    ds = TextClassificationDataset(train.text, train.label, vocab.encode, max_length=256)
    loader = DataLoader(ds, batch_sampler=BucketBatchSampler(ds.lengths, batch_size=32),
                        collate_fn=pad_collate)

Typical image pipeline::

    from torchvision.datasets import ImageFolder
    root = make_shapes_dataset("artifacts/shapes")
    train_ds = ImageFolder(root, transform=image_transforms(train=True))
"""

from __future__ import annotations

import colorsys
import csv
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw
from torch import Tensor
from torch.utils.data import Dataset, Sampler, Subset, random_split
from torchvision.transforms import v2

from helpers import REPO_ROOT
from helpers.device import make_generator

__all__ = [
    "SENTIMENT_LABELS", "SENTIMENT_SPLITS", "DATA_DIR_ENV_VAR", "SHAPE_CLASSES",
    "IMAGENET_MEAN", "IMAGENET_STD",
    "data_dir", "load_sentiment_split", "load_sentiment_corpus",
    "simple_tokenize", "Vocab", "build_vocab",
    "TextClassificationDataset", "pad_collate", "BucketBatchSampler", "padding_fraction",
    "make_shapes_dataset", "DigitsDataset", "load_digits_dataset", "split_dataset",
    "image_transforms", "denormalize",
]

#: Label names of the review corpus; the label id is the position (0 = negative, 1 = positive).
SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
#: The splits of the review corpus, one CSV file each.
SENTIMENT_SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Environment variable that points the course at another data folder.
DATA_DIR_ENV_VAR = "COURSE_DATA_DIR"
#: Shapes that :func:`make_shapes_dataset` can draw.
SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
#: Channel statistics of ImageNet, what torchvision's pretrained models expect.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- the review corpus


def data_dir() -> Path:
    """The folder of the datasets that ship with the course: ``<repo>/data``, or the folder
    named by the ``COURSE_DATA_DIR`` environment variable when it is set (handy for a copy
    of the data elsewhere, or for tests)."""
    override = os.environ.get(DATA_DIR_ENV_VAR)
    return Path(override).expanduser() if override else REPO_ROOT / "data"


def load_sentiment_split(split: str, root: str | Path | None = None) -> pd.DataFrame:
    """Read one split of the review corpus, ``<root>/<split>.csv``, into a DataFrame with a
    ``text`` column (str) and a ``label`` column (int: 0 = negative, 1 = positive).

    ``root`` defaults to ``data_dir() / "sentiment"``. The CSV has the header ``text,label``
    and the label names of :data:`SENTIMENT_LABELS`. Every problem raises an error that
    names the file and, for a bad row, its line number: a missing folder or file, a wrong
    header, a row with the wrong number of fields or an empty text, an unknown label, and
    a split without any rows.

    Example::

        >>> df = load_sentiment_split("train")
        >>> df.columns.tolist()
        ['text', 'label']
    """
    if split not in SENTIMENT_SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {', '.join(SENTIMENT_SPLITS)}.")
    folder = Path(root) if root is not None else data_dir() / "sentiment"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"The review corpus folder {folder} does not exist. data/sentiment/ ships with "
            f"the course: run the notebooks from a full clone of the course repository, or "
            f"point {DATA_DIR_ENV_VAR} (or root=) at a folder that holds "
            f"{', '.join(s + '.csv' for s in SENTIMENT_SPLITS)}."
        )
    path = folder / f"{split}.csv"
    if not path.is_file():
        present = sorted(p.name for p in folder.glob("*.csv")) or ["no CSV files"]
        raise FileNotFoundError(
            f"{path} does not exist (the folder holds: {', '.join(present)}). data/sentiment/ "
            f"ships with the course clone; restore it with `git checkout -- data/`."
        )
    texts: list[str] = []
    labels: list[int] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty; expected the header 'text,label' and rows.")
        if [h.strip() for h in header] != ["text", "label"]:
            raise ValueError(f"{path}, line 1: header is {','.join(header)!r}; expected 'text,label'.")
        for row in reader:
            line = reader.line_num
            if not row:  # a blank line
                continue
            if len(row) != 2:
                raise ValueError(
                    f"{path}, line {line}: malformed row with {len(row)} fields {row!r}; expected "
                    f"2 (text,label). Quote texts that contain commas: \"a, b\",positive."
                )
            text, label = row[0], row[1].strip()
            if not text.strip():
                raise ValueError(f"{path}, line {line}: the text is empty.")
            if label not in SENTIMENT_LABELS:
                raise ValueError(
                    f"{path}, line {line}: unknown label {label!r}; allowed labels are "
                    f"{', '.join(SENTIMENT_LABELS)}."
                )
            texts.append(text)
            labels.append(SENTIMENT_LABELS.index(label))
    if not texts:
        raise ValueError(f"{path}: the {split!r} split has a header but no rows.")
    return pd.DataFrame({"text": pd.Series(texts, dtype=str),
                         "label": pd.Series(labels, dtype="int64")})


def load_sentiment_corpus(root: str | Path | None = None) -> dict[str, pd.DataFrame]:
    """All three splits of the review corpus, ``{"train": df, "validation": df, "test": df}``,
    each read (and checked) by :func:`load_sentiment_split`."""
    return {split: load_sentiment_split(split, root) for split in SENTIMENT_SPLITS}


# --------------------------------------------------------------------------- text


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

    def __init__(self, tokens: Iterable[str],
                 tokenizer: Callable[[str], list[str]] = simple_tokenize) -> None:
        self.itos: list[str] = [self.pad_token, self.unk_token]
        self.stoi: dict[str, int] = {self.pad_token: 0, self.unk_token: 1}
        for token in tokens:
            if token in self.stoi:
                raise ValueError(f"Token {token!r} appears twice (or is a special token); "
                                 f"a vocabulary needs unique tokens.")
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


def build_vocab(texts: Iterable[str], min_freq: int = 1, max_size: int | None = None,
                tokenizer: Callable[[str], list[str]] = simple_tokenize) -> Vocab:
    """Count the tokens of ``texts`` and keep the frequent ones in a :class:`Vocab`.

    Tokens seen fewer than ``min_freq`` times are dropped; ``max_size`` caps the size of
    the whole vocabulary, ``<pad>`` and ``<unk>`` included. Tokens are ordered by count
    (most frequent first), ties alphabetically, so the same texts always give the same ids.

    Example::

        >>> build_vocab(["a b b", "b c"], min_freq=2).itos
        ['<pad>', '<unk>', 'b']
    """
    if isinstance(texts, str):
        raise TypeError("build_vocab expects an iterable of texts, not a single str; wrap it: [text].")
    if not isinstance(min_freq, int) or min_freq < 1:
        raise ValueError(f"min_freq must be an int >= 1, got {min_freq!r}.")
    if max_size is not None and (not isinstance(max_size, int) or max_size < 2):
        raise ValueError(f"max_size must be None or an int >= 2 (room for <pad> and <unk>), "
                         f"got {max_size!r}.")
    counts = Counter(token for text in texts for token in tokenizer(text))
    kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    kept = [t for t in kept if t not in (Vocab.pad_token, Vocab.unk_token)]
    if max_size is not None:
        kept = kept[: max_size - 2]
    return Vocab(kept, tokenizer=tokenizer)


class TextClassificationDataset(Dataset):
    """Map-style dataset of encoded texts and integer labels.

    Every text is encoded once, up front, by ``encode`` (``Vocab.encode``, or a Hugging Face
    tokenizer: ``lambda t: tok(t, truncation=True, max_length=128)["input_ids"]``) and cut to
    ``max_length`` tokens when given. Item ``i`` is ``{"input_ids": LongTensor[L], "labels":
    LongTensor[]}``; :attr:`lengths` lists every ``L`` for :class:`BucketBatchSampler`.

    Example::

        >>> ds = TextClassificationDataset(["good", "bad film"], [1, 0], Vocab(["good", "bad"]).encode)
        >>> ds[1]["input_ids"], ds.lengths
        (tensor([3, 1]), [1, 2])
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[int],
                 encode: Callable[[str], list[int]], max_length: int | None = None) -> None:
        texts, labels = list(texts), list(labels)
        for i, y in enumerate(labels):
            try:
                labels[i] = int(y)
            except (TypeError, ValueError):
                raise ValueError(f"Label at index {i} is {y!r}; labels must be integer ids, e.g. "
                                 f"SENTIMENT_LABELS.index(name).") from None
        if len(texts) != len(labels):
            raise ValueError(f"Got {len(texts)} texts but {len(labels)} labels; they must pair up.")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ValueError(f"max_length must be None or an int >= 1, got {max_length!r}.")
        if any(y < 0 for y in labels):
            bad = next(i for i, y in enumerate(labels) if y < 0)
            raise ValueError(f"Label at index {bad} is {labels[bad]}; labels must be ids >= 0.")
        self.texts = texts
        self.labels = labels
        self._ids: list[Tensor] = []
        for i, text in enumerate(texts):
            ids = encode(text)
            if isinstance(ids, Mapping):
                raise TypeError("encode returned a mapping (a tokenizer's BatchEncoding?); make it "
                                "return the ids only, e.g. lambda t: tok(t)['input_ids'].")
            ids = torch.as_tensor(ids, dtype=torch.long).flatten()[:max_length]
            if ids.numel() == 0:
                raise ValueError(f"Text at index {i} encodes to no tokens: {text!r}. Remove empty "
                                 f"texts before building the dataset.")
            self._ids.append(ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"input_ids": self._ids[index], "labels": torch.tensor(self.labels[index])}

    @property
    def lengths(self) -> list[int]:
        """The number of tokens of every item, in dataset order."""
        return [len(ids) for ids in self._ids]


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
    if pad_id is None or isinstance(pad_id, bool) or not isinstance(pad_id, int):
        raise ValueError(f"pad_id must be an int, got {pad_id!r}. A tokenizer without a pad "
                         f"token needs one first: tokenizer.pad_token = tokenizer.eos_token.")
    if len(batch) == 0:
        raise ValueError("pad_collate got an empty batch.")
    for i, item in enumerate(batch):
        if not isinstance(item, Mapping) or "input_ids" not in item or "labels" not in item:
            raise KeyError(f"Batch item {i} must be a dict with 'input_ids' and 'labels', got "
                           f"{list(item) if isinstance(item, Mapping) else type(item).__name__}.")
    seqs = [torch.as_tensor(item["input_ids"], dtype=torch.long) for item in batch]
    lengths = torch.tensor([len(s) for s in seqs])
    input_ids = torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True, padding_value=pad_id)
    attention_mask = (torch.arange(input_ids.shape[1]) < lengths[:, None]).long()
    labels = torch.stack([torch.as_tensor(item["labels"], dtype=torch.long) for item in batch])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


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

    Example::

        >>> sampler = BucketBatchSampler(ds.lengths, batch_size=32, seed=0)
        >>> loader = DataLoader(ds, batch_sampler=sampler, collate_fn=pad_collate)
        >>> for epoch in range(3):
        ...     sampler.set_epoch(epoch)
        ...     for batch in loader: ...
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, pool_size: int | None = None) -> None:
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
        self.lengths = lengths
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.pool_size = math.ceil(pool_size / batch_size) * batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the shuffle of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(n, generator=g).tolist() if self.shuffle else list(range(n))
        batches: list[list[int]] = []
        for start in range(0, n, self.pool_size):
            pool = sorted(order[start:start + self.pool_size], key=self.lengths.__getitem__)
            batches += [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return iter(batches)


def padding_fraction(lengths: Sequence[int], batches: Iterable[Sequence[int]]) -> float:
    """The share of positions that are padding when every batch of indices in ``batches``
    is padded to its own longest item (``lengths[i]`` is the length of item ``i``).

    Example::

        >>> padding_fraction([1, 3, 2, 2], [[0, 1], [2, 3]])   # 2 pads in 3 + 3 + 2 + 2 positions
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


# --------------------------------------------------------------------------- images


def _shape_polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape of circumradius ``r`` centred at (cx, cy), rotated by ``angle``."""
    if kind == "square":  # slightly larger circumradii: similar areas, so size is no clue
        polar = [(1.1 * r, math.pi / 4 + k * math.pi / 2) for k in range(4)]
    elif kind == "triangle":
        polar = [(1.25 * r, -math.pi / 2 + k * 2 * math.pi / 3) for k in range(3)]
    elif kind == "star":
        polar = [(r if k % 2 == 0 else 0.45 * r, -math.pi / 2 + k * math.pi / 5) for k in range(10)]
    else:  # cross: a plus sign with arms of half-width w
        w = 0.3 * r
        pts = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
               (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        polar = [(math.hypot(x, y), math.atan2(y, x)) for x, y in pts]
    return [(cx + d * math.cos(a + angle), cy + d * math.sin(a + angle)) for d, a in polar]


def _render_shape(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image of ``kind``: random colours, position, scale and rotation, plus noise."""
    big = 4 * size  # draw large, then shrink: smooth (anti-aliased) edges
    bg = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.05, 0.35))
    fg = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.65, 1.0))
    r = rng.uniform(0.2, 0.38) * big
    margin = 1.3 * r
    cx, cy = rng.uniform(margin, big - margin, size=2)
    angle = rng.uniform(0, 2 * math.pi)
    img = Image.new("RGB", (big, big), tuple(int(255 * c) for c in bg))
    draw = ImageDraw.Draw(img)
    fill = tuple(int(255 * c) for c in fg)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_shape_polygon(kind, cx, cy, r, angle), fill=fill)
    small = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    noisy = small + rng.normal(0.0, 10.0, size=small.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mode="RGB")


def make_shapes_dataset(root: str | Path, n_per_class: int = 60, image_size: int = 32,
                        seed: int = 0, classes: Sequence[str] = ("circle", "square", "triangle")) -> Path:
    """Write a small image-classification dataset in ``ImageFolder`` layout and return ``root``.

    Each of ``classes`` (from :data:`SHAPE_CLASSES`) gets ``root/<class>/0000.png``,
    ``0001.png``, ... : ``n_per_class`` RGB images of ``image_size`` pixels, a shape in a
    random colour, position, scale and rotation on a random background, with pixel noise.
    Image ``i`` of a class depends only on ``seed``, the class and ``i``, so re-running with
    the same arguments writes byte-identical files. Numbered PNGs left in a class folder by
    an earlier, larger run are removed; nothing else in ``root`` is touched.

    Example::

        >>> root = make_shapes_dataset("artifacts/shapes", n_per_class=10)
        >>> sorted(p.name for p in root.iterdir())
        ['circle', 'square', 'triangle']
    """
    classes = list(classes)
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if not classes or unknown:
        raise ValueError(f"Unknown shape class(es) {unknown or classes}; choose from "
                         f"{', '.join(SHAPE_CLASSES)}.")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes has duplicates: {classes}.")
    if not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"n_per_class must be an int >= 1, got {n_per_class!r}.")
    if not isinstance(image_size, int) or image_size < 8:
        raise ValueError(f"image_size must be an int >= 8 pixels, got {image_size!r}.")
    root = Path(root)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("[0-9][0-9][0-9][0-9].png"):
            if int(stale.stem) >= n_per_class:
                stale.unlink()
        for i in range(n_per_class):
            rng = np.random.default_rng([seed, SHAPE_CLASSES.index(name), i])
            _render_shape(name, image_size, rng).save(folder / f"{i:04d}.png", format="PNG")
    return root


class DigitsDataset(Dataset):
    """The 1,797 handwritten digits that ship with scikit-learn as a map-style dataset:
    item ``i`` is ``(image, label)``, ``image`` a float tensor of shape (1, 8, 8) in [0, 1]
    (after ``transform`` when one is given), ``label`` an int 0-9. ``classes`` and
    ``targets`` follow torchvision's conventions."""

    def __init__(self, transform: Callable | None = None) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        self.images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        self.targets: list[int] = [int(t) for t in digits.target]
        self.classes: list[str] = [str(c) for c in digits.target_names]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]


def load_digits_dataset(transform: Callable | None = None) -> DigitsDataset:
    """scikit-learn's handwritten digits (no download: they ship with scikit-learn) as a
    :class:`DigitsDataset` of ``(image (1, 8, 8) in [0, 1], label)`` pairs.

    Example::

        >>> ds = load_digits_dataset()
        >>> len(ds), ds[0][0].shape, ds.classes[:3]
        (1797, torch.Size([1, 8, 8]), ['0', '1', '2'])
    """
    return DigitsDataset(transform)


def split_dataset(dataset: Dataset, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                  seed: int = 0) -> list[Subset]:
    """Split ``dataset`` at random into ``Subset``s of the given fractions (which must sum
    to 1), reproducibly: ``random_split`` with a generator seeded by ``seed``. Every part
    must get at least one item.

    Example::

        >>> train, val, test = split_dataset(load_digits_dataset(), (0.8, 0.1, 0.1))
        >>> len(train), len(val), len(test)
        (1438, 180, 179)
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise ValueError(f"fractions must be numbers in (0, 1], got {fractions}.")
    if not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ValueError(f"fractions {fractions} sum to {sum(fractions):.6g}; they must sum to 1.")
    n = len(dataset)
    # the sizes random_split gives fractions: floors, then the remainder one by one
    sizes = [math.floor(n * f) for f in fractions]
    for k in range(n - sum(sizes)):
        sizes[k % len(sizes)] += 1
    for k, size in enumerate(sizes):
        if size == 0:
            raise ValueError(f"Split {k} (fraction {fractions[k]}) of a dataset of {n} items would "
                             f"be empty; use a larger dataset or a larger fraction.")
    return random_split(dataset, sizes, generator=make_generator(seed))


def image_transforms(train: bool, size: int = 32, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """The course's transform presets (``torchvision.transforms.v2``) for a PIL image or an
    image tensor: the result is a float tensor (C, size, size), normalised by ``mean``/``std``.

    ``train=True`` adds random augmentation (resized crop, horizontal flip, rotation up to
    15 degrees, colour jitter), a new variant every call; ``train=False`` only resizes and
    centre-crops, so the same image always gives the same tensor. A PIL image is augmented
    before it becomes a tensor: PIL's single-threaded code is the fastest for small images
    (torch's multi-threaded kernels lose time coordinating threads on a busy CPU). For
    one-channel images pass one-element ``mean`` and ``std``, e.g. ``(0.5,)``.

    Example::

        >>> ImageFolder("artifacts/shapes", transform=image_transforms(train=True))[0][0].shape
        torch.Size([3, 32, 32])
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size!r}.")
    if len(mean) != len(std) or len(mean) == 0:
        raise ValueError(f"mean {tuple(mean)} and std {tuple(std)} need one value per channel each.")
    if any(s <= 0 for s in std):
        raise ValueError(f"std values must be > 0, got {tuple(std)}.")
    if train:
        geometry = [v2.RandomResizedCrop(size, scale=(0.7, 1.0), antialias=True),
                    v2.RandomHorizontalFlip(),
                    v2.RandomRotation(15, interpolation=v2.InterpolationMode.BILINEAR),
                    v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)]
    else:
        geometry = [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
    return v2.Compose([*geometry, v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(list(mean), list(std))])


def denormalize(images: Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """Undo ``Normalize(mean, std)`` for display: ``images * std + mean``, clipped to [0, 1].
    Works on one image (C, H, W) or a batch (B, C, H, W)."""
    if images.ndim not in (3, 4):
        raise ValueError(f"Expected an image (C, H, W) or a batch (B, C, H, W), got shape "
                         f"{tuple(images.shape)}.")
    channels = images.shape[-3]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"The images have {channels} channels but mean has {len(mean)} and std "
                         f"{len(std)} values.")
    m = torch.tensor(mean, dtype=images.dtype).view(-1, 1, 1)
    s = torch.tensor(std, dtype=images.dtype).view(-1, 1, 1)
    return (images * s + m).clamp(0, 1)
