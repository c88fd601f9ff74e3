"""Build the fixed train/validation/test splits of the course's review corpus.

The reviews were written for this course and live, by genre, in ``data/sentiment/raw/*.tsv``
(``label<TAB>text``). This script is the only way the split files are made::

    python scripts/build_sentiment_splits.py   # writes data/sentiment/{train,validation,test}.csv

It normalises whitespace, drops exact and near duplicates (so that no review has a twin in
another split), and makes a stratified 70/15/15 split with a fixed seed. Reviews written after
the validation and test splits were fixed live in ``raw/train_only/*.tsv``: they join the
training split only (minus any that repeat, or nearly repeat, a review already in the corpus),
so that adding data never changes the reviews the course measures on. Running the script twice
gives byte-identical files; ``tests/test_corpus.py`` checks the committed splits are up to date.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "sentiment"
SEED = 2024
FRACTIONS = {"train": 0.70, "validation": 0.15, "test": 0.15}
#: Two reviews whose character n-gram TF-IDF vectors are at least this similar count as twins.
NEAR_DUPLICATE_COSINE = 0.6
#: The sub-folder of ``raw/`` whose reviews go to the training split only.
TRAIN_ONLY = "train_only"


def read_raw(folder: Path) -> pd.DataFrame:
    """All ``*.tsv`` files of ``folder`` as one DataFrame (text, label, source), whitespace
    normalised."""
    frames = []
    for path in sorted(folder.glob("*.tsv")):
        frame = pd.read_csv(
            path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False
        )
        bad = frame[~frame["label"].isin(["negative", "positive"])]
        if len(bad):
            raise ValueError(
                f"{path.name}: unknown label {bad['label'].iloc[0]!r} "
                f"on data row {bad.index[0] + 1}"
            )
        frame["source"] = path.stem
        frames.append(frame)
    if not frames:
        raise FileNotFoundError(f"No *.tsv files in {folder}")
    data = pd.concat(frames, ignore_index=True)
    data["text"] = data["text"].map(lambda t: re.sub(r"\s+", " ", t).strip())
    return data


def near_duplicate_pairs(
    texts: list[str], threshold: float = NEAR_DUPLICATE_COSINE
) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of texts at least ``threshold`` similar (character
    3-5 grams)."""
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit_transform(
        texts
    )
    sim = (vectors @ vectors.T).tocoo()  # nearly dense: filter with numpy, not a Python loop
    keep = (sim.row < sim.col) & (sim.data >= threshold)
    return sorted(zip(sim.row[keep].tolist(), sim.col[keep].tolist()))


def deduplicate(data: pd.DataFrame) -> pd.DataFrame:
    """Drop exact duplicates (ignoring case) and the later member of every near-duplicate pair."""
    data = data.loc[~data["text"].str.lower().duplicated()].reset_index(drop=True)
    drop = {j for _, j in near_duplicate_pairs(data["text"].tolist())}
    return data.drop(index=sorted(drop)).reset_index(drop=True)


def new_reviews(extra: pd.DataFrame, corpus: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``extra`` that are neither exact (ignoring case) nor near duplicates of a
    review in ``corpus`` or of an earlier row of ``extra``."""
    extra = deduplicate(extra)
    seen = set(corpus["text"].str.lower())
    extra = extra.loc[~extra["text"].str.lower().isin(seen)].reset_index(drop=True)
    pairs = near_duplicate_pairs(corpus["text"].tolist() + extra["text"].tolist())
    twins = {j - len(corpus) for i, j in pairs if i < len(corpus) <= j}
    return extra.drop(index=sorted(twins)).reset_index(drop=True)


def split(data: pd.DataFrame, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """Stratified (by label) 70/15/15 split with a fixed seed."""
    train, rest = train_test_split(
        data, train_size=FRACTIONS["train"], stratify=data["label"], random_state=seed
    )
    validation, test = train_test_split(
        rest, test_size=0.5, stratify=rest["label"], random_state=seed
    )
    return {"train": train, "validation": validation, "test": test}


def to_csv(frame: pd.DataFrame) -> str:
    """The split file's exact text: header ``text,label``, rows in a stable order."""
    out = io.StringIO()
    frame.sort_index()[["text", "label"]].to_csv(out, index=False, lineterminator="\n")
    return out.getvalue()


def build(raw_folder: Path = CORPUS / "raw") -> dict[str, str]:
    """The three split files' contents, built from the raw reviews: the 70/15/15 split of
    ``raw_folder/*.tsv``, then the new reviews of ``raw_folder/train_only/*.tsv`` (if any)
    appended to the training split."""
    corpus = deduplicate(read_raw(raw_folder))
    frames = split(corpus)
    if sorted((raw_folder / TRAIN_ONLY).glob("*.tsv")):
        extra = new_reviews(read_raw(raw_folder / TRAIN_ONLY), corpus)
        frames["train"] = pd.concat([frames["train"].sort_index(), extra], ignore_index=True)
    return {name: to_csv(frame) for name, frame in frames.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    for name, text in build().items():
        (args.out / f"{name}.csv").write_text(text, encoding="utf-8")
        rows = pd.read_csv(io.StringIO(text))
        counts = rows["label"].value_counts().to_dict()
        print(f"{name:<10} {len(rows):5d} reviews  {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
