"""The course's review corpus: short film reviews, one CSV file per split, read and checked
into pandas DataFrames. It has two views:

- ``classes=2`` (the default): negative and positive reviews, ``data/sentiment/*.csv``;
- ``classes=3``: the same reviews plus neutral ones, ``data/sentiment/three_class/*.csv``,
  split on its own (every two-class validation or test review stays out of its training split).

The label ids are the same in both views: 0 = negative, 1 = positive, 2 = neutral, so a
two-class model's ids never change. Plots and reports list the classes in the reading order
of :data:`SENTIMENT_DISPLAY_ORDER` (negative, neutral, positive).

Example::

    from helpers.data import load_sentiment_split
    train = load_sentiment_split("train")             # columns: text (str), label (0 or 1)
    train3 = load_sentiment_split("train", classes=3)  # label 0, 1 or 2
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd

from helpers import REPO_ROOT

#: Label names of the two-class corpus; the label id is the position (0 = negative, 1 = positive).
SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
#: Label names of the three-class corpus, by id: the two-class ids, then 2 = neutral.
SENTIMENT_LABELS_3: tuple[str, ...] = ("negative", "positive", "neutral")
#: The order in which plots and reports list the three classes (by sentiment, not by id).
SENTIMENT_DISPLAY_ORDER: tuple[str, ...] = ("negative", "neutral", "positive")
#: The splits of the review corpus, one CSV file each.
SENTIMENT_SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Environment variable that points the course at another data folder.
DATA_DIR_ENV_VAR = "COURSE_DATA_DIR"
#: The sub-folder of the corpus folder that holds the three-class view's split files.
THREE_CLASS_FOLDER = "three_class"


def data_dir() -> Path:
    """The folder of the datasets that ship with the course: ``<repo>/data``, or the folder
    named by the ``COURSE_DATA_DIR`` environment variable when it is set (handy for a copy
    of the data elsewhere, or for tests)."""
    override = os.environ.get(DATA_DIR_ENV_VAR)
    return Path(override).expanduser() if override else REPO_ROOT / "data"


def sentiment_labels(classes: int = 2) -> tuple[str, ...]:
    """The label names of the ``classes``-class view of the corpus, by id: ``("negative",
    "positive")`` for 2, ``("negative", "positive", "neutral")`` for 3. Any other number is an
    error that names the two views."""
    if classes == 2:
        return SENTIMENT_LABELS
    if classes == 3:
        return SENTIMENT_LABELS_3
    raise ValueError(
        f"classes must be 2 (negative, positive) or 3 (negative, positive, neutral), "
        f"got {classes!r}."
    )


def _split_path(split: str, root: str | Path | None, classes: int) -> Path:
    """The CSV file of ``split``, after checking that the split, its folder and file exist."""
    if split not in SENTIMENT_SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {', '.join(SENTIMENT_SPLITS)}.")
    folder = Path(root) if root is not None else data_dir() / "sentiment"
    if classes == 3:
        folder = folder / THREE_CLASS_FOLDER
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
    return path


def _parse_row(row: list[str], path: Path, line: int, labels: tuple[str, ...]) -> tuple[str, int]:
    """One CSV row ``[text, label name]`` as ``(text, label id)``, or an error naming the line."""
    if len(row) != 2:
        raise ValueError(
            f"{path}, line {line}: malformed row with {len(row)} fields {row!r}; expected "
            f'2 (text,label). Quote texts that contain commas: "a, b",positive.'
        )
    text, label = row[0], row[1].strip()
    if not text.strip():
        raise ValueError(f"{path}, line {line}: the text is empty.")
    if label not in labels:
        hint = " (neutral reviews belong to the classes=3 view)" if label == "neutral" else ""
        raise ValueError(
            f"{path}, line {line}: unknown label {label!r}; allowed labels are "
            f"{', '.join(labels)}{hint}."
        )
    return text, labels.index(label)


def _read_rows(path: Path, labels: tuple[str, ...]) -> list[tuple[str, int]]:
    """Every ``(text, label id)`` row of a corpus CSV file, after checking its header."""
    rows: list[tuple[str, int]] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty; expected the header 'text,label' and rows.")
        if [h.strip() for h in header] != ["text", "label"]:
            raise ValueError(
                f"{path}, line 1: header is {','.join(header)!r}; expected 'text,label'."
            )
        for row in reader:
            if row:  # skip blank lines
                rows.append(_parse_row(row, path, reader.line_num, labels))
    return rows


def load_sentiment_split(
    split: str, root: str | Path | None = None, *, classes: int = 2
) -> pd.DataFrame:
    """Read one split of the review corpus, ``<root>/<split>.csv``, into a DataFrame with a
    ``text`` column (str) and a ``label`` column (int: 0 = negative, 1 = positive, and with
    ``classes=3`` also 2 = neutral).

    ``root`` defaults to ``data_dir() / "sentiment"``; the three-class view is read from its
    ``three_class/`` sub-folder. The CSV has the header ``text,label`` and the label names of
    :func:`sentiment_labels`. Every problem raises an error that
    names the file and, for a bad row, its line number: a missing folder or file, a wrong
    header, a row with the wrong number of fields or an empty text, an unknown label, and
    a split without any rows.

    Example::

        >>> df = load_sentiment_split("train")
        >>> df.columns.tolist()
        ['text', 'label']
    """
    labels = sentiment_labels(classes)
    path = _split_path(split, root, classes)
    rows = _read_rows(path, labels)
    if not rows:
        raise ValueError(f"{path}: the {split!r} split has a header but no rows.")
    texts, labels = zip(*rows)
    return pd.DataFrame(
        {"text": pd.Series(list(texts), dtype=str), "label": pd.Series(list(labels), dtype="int64")}
    )


def load_sentiment_corpus(
    root: str | Path | None = None, *, classes: int = 2
) -> dict[str, pd.DataFrame]:
    """All three splits of the ``classes``-class view of the review corpus, ``{"train": df,
    "validation": df, "test": df}``, each read (and checked) by :func:`load_sentiment_split`."""
    return {split: load_sentiment_split(split, root, classes=classes) for split in SENTIMENT_SPLITS}
