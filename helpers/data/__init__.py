"""Datasets and data pipelines: the course's review corpus, generated shape images, the
scikit-learn digits, text/image ``Dataset`` classes, padding, length bucketing, splits and
transform presets.

Every name is imported from ``helpers.data``; the code lives in one module per topic:

=====================  ======================================================================
``corpus``             the review corpus: ``load_sentiment_split``, ``load_sentiment_corpus``
                       (``classes=2`` or ``3``), ``sentiment_labels``, ``data_dir``,
                       ``SENTIMENT_LABELS``, ``SENTIMENT_LABELS_3``, ``SENTIMENT_DISPLAY_ORDER``,
                       ``SENTIMENT_SPLITS``
``text``               ``simple_tokenize``, ``Vocab``, ``build_vocab``,
                       ``TextClassificationDataset``, ``pad_collate``
``bucketing``          ``BucketBatchSampler`` (also for several processes), ``padding_fraction``
``images``             ``make_shapes_dataset``, ``DigitsDataset``, ``load_digits_dataset``,
                       ``split_dataset``, ``image_transforms``, ``denormalize``; real photo
                       patches in ``ImageFolder`` splits: ``make_photo_patches_dataset``,
                       ``load_source_photo``, ``PHOTO_SOURCES``, ``PHOTO_SPLIT_BANDS``
=====================  ======================================================================

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

from helpers.data.bucketing import BucketBatchSampler, padding_fraction
from helpers.data.corpus import (
    DATA_DIR_ENV_VAR,
    SENTIMENT_DISPLAY_ORDER,
    SENTIMENT_LABELS,
    SENTIMENT_LABELS_3,
    SENTIMENT_SPLITS,
    data_dir,
    load_sentiment_corpus,
    load_sentiment_split,
    sentiment_labels,
)
from helpers.data.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PHOTO_SOURCES,
    PHOTO_SPLIT_BANDS,
    SHAPE_CLASSES,
    DigitsDataset,
    denormalize,
    image_transforms,
    load_digits_dataset,
    load_source_photo,
    make_photo_patches_dataset,
    make_shapes_dataset,
    split_dataset,
)
from helpers.data.text import (
    TextClassificationDataset,
    Vocab,
    build_vocab,
    pad_collate,
    simple_tokenize,
)

__all__ = [
    "SENTIMENT_LABELS",
    "SENTIMENT_LABELS_3",
    "SENTIMENT_DISPLAY_ORDER",
    "SENTIMENT_SPLITS",
    "DATA_DIR_ENV_VAR",
    "SHAPE_CLASSES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "data_dir",
    "load_sentiment_split",
    "load_sentiment_corpus",
    "sentiment_labels",
    "simple_tokenize",
    "Vocab",
    "build_vocab",
    "TextClassificationDataset",
    "pad_collate",
    "BucketBatchSampler",
    "padding_fraction",
    "make_shapes_dataset",
    "DigitsDataset",
    "load_digits_dataset",
    "split_dataset",
    "image_transforms",
    "denormalize",
    "PHOTO_SOURCES",
    "PHOTO_SPLIT_BANDS",
    "load_source_photo",
    "make_photo_patches_dataset",
]
