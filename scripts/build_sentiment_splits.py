"""Build the fixed splits of the course's review corpus, in its two views.

The reviews were written for this course and live in ``data/sentiment/raw/`` as TSV files
(``label<TAB>text``). This script is the only way the split files are made::

    python scripts/build_sentiment_splits.py   # writes data/sentiment/{,three_class/}*.csv

**Two classes** (``data/sentiment/{train,validation,test}.csv``): the genre parts
``raw/*.tsv`` are de-duplicated and split 70/15/15, stratified by label, with a fixed seed.
Reviews written after that split was fixed live in ``raw/train_only/*.tsv``: they join the
training split only (minus any that repeat, or nearly repeat, a review already in the corpus),
so that adding data never changes the reviews the course measures on.

**Three classes** (``data/sentiment/three_class/*.csv``): all of the above plus the neutral
reviews of ``raw/neutral/*.tsv``, split on its own, 70/15/15 for every class. The two-class
validation and test reviews stay in the three-class validation and test splits; just enough
two-class training reviews move to them to make the negative and positive classes 15% each.

Running the script twice gives byte-identical files; ``tests/test_corpus.py`` checks that the
committed splits are up to date, and ``--report`` prints the figures of the datasheet.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "sentiment"
SEED = 2024
FRACTIONS = {"train": 0.70, "validation": 0.15, "test": 0.15}
#: Two reviews whose character n-gram TF-IDF vectors are at least this similar count as twins.
NEAR_DUPLICATE_COSINE = 0.6
#: The sub-folder of ``raw/`` whose reviews go to the two-class training split only.
TRAIN_ONLY = "train_only"
#: The sub-folder of ``raw/`` that holds the neutral reviews (three-class view only).
NEUTRAL = "neutral"
#: The sub-folder of the corpus folder that holds the three-class split files.
THREE_CLASS = "three_class"
#: The train-only parts added in version 2 of the corpus: reviews written to read like real
#: ones, and to use the words that version 1 had in one class only in the other class.
ADDED_IN_V2 = ("part_g", "part_h", "part_i", "part_j")
#: A word counts in ``one_class_words`` when at least this many training reviews contain it.
ARTIFACT_MIN_REVIEWS = 10


def read_raw(folder: Path, labels: tuple[str, ...] = ("negative", "positive")) -> pd.DataFrame:
    """All ``*.tsv`` files of ``folder`` as one DataFrame (text, label, source), whitespace
    normalised; a label outside ``labels`` is an error that names the file and row."""
    frames = []
    for path in sorted(folder.glob("*.tsv")):
        frame = pd.read_csv(
            path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False
        )
        bad = frame[~frame["label"].isin(labels)]
        if len(bad):
            raise ValueError(
                f"{path.name}: label {bad['label'].iloc[0]!r} on data row {bad.index[0] + 1} "
                f"does not belong in {folder.name}/ (allowed: {', '.join(labels)})"
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


def drop_twins(extra: pd.DataFrame, corpus: pd.DataFrame) -> pd.DataFrame:
    """``extra`` without the later row of every near-duplicate pair among its own rows, with the
    similarities computed on ``corpus`` and ``extra`` together (TF-IDF weights depend on the
    texts they are fitted on, so two rows that pass alone can be twins in the whole corpus).
    Repeats until no pair is left."""
    while True:
        pairs = near_duplicate_pairs(corpus["text"].tolist() + extra["text"].tolist())
        twins = {j - len(corpus) for _, j in pairs if j >= len(corpus)}
        if not twins:
            return extra
        extra = extra.drop(index=sorted(twins)).reset_index(drop=True)


def split(data: pd.DataFrame, by: str = "label", seed: int = SEED) -> dict[str, pd.DataFrame]:
    """Stratified (by the column ``by``) 70/15/15 split with a fixed seed."""
    train, rest = train_test_split(
        data, train_size=FRACTIONS["train"], stratify=data[by], random_state=seed
    )
    validation, test = train_test_split(rest, test_size=0.5, stratify=rest[by], random_state=seed)
    return {"train": train, "validation": validation, "test": test}


def two_class_splits(raw_folder: Path) -> dict[str, pd.DataFrame]:
    """The two-class splits: the 70/15/15 split of ``raw_folder/*.tsv``, then the new reviews
    of ``raw_folder/train_only/*.tsv`` appended to the training split (a ``source`` column
    says which file each review came from)."""
    corpus = deduplicate(read_raw(raw_folder))
    frames = {name: frame.sort_index() for name, frame in split(corpus).items()}
    extra = new_reviews(read_raw(raw_folder / TRAIN_ONLY), corpus)
    frames["train"] = pd.concat([frames["train"], extra], ignore_index=True)
    return frames


def three_class_splits(
    two_class: dict[str, pd.DataFrame], raw_folder: Path
) -> dict[str, pd.DataFrame]:
    """The three-class splits. The neutral reviews of ``raw_folder/neutral/`` (those that do
    not repeat, or nearly repeat, a two-class review or each other) are split 70/15/15 by
    source file. The two-class validation and test reviews stay in validation and test; from
    the two-class training split, a seeded sample of each label moves to validation and test,
    just enough for every label to be split 70/15/15. Rows are shuffled with the fixed seed."""
    binary = pd.concat(two_class.values(), ignore_index=True)
    neutral = new_reviews(read_raw(raw_folder / NEUTRAL, labels=("neutral",)), binary)
    neutral = drop_twins(neutral, binary)
    neutral_splits = split(neutral, by="source")
    train = two_class["train"]
    moved = {"validation": [], "test": []}
    for label, group in train.groupby("label", sort=True):
        total = (binary["label"] == label).sum()
        need = {
            name: max(0, round(FRACTIONS[name] * total) - (two_class[name]["label"] == label).sum())
            for name in moved
        }
        sample = group.sample(n=need["validation"] + need["test"], random_state=SEED)
        moved["validation"].append(sample.iloc[: need["validation"]])
        moved["test"].append(sample.iloc[need["validation"] :])
    leaving = pd.concat(moved["validation"] + moved["test"]).index
    parts = {
        "train": [train.drop(index=leaving)],
        "validation": [two_class["validation"], *moved["validation"]],
        "test": [two_class["test"], *moved["test"]],
    }
    return {
        name: pd.concat([*frames, neutral_splits[name]], ignore_index=True)
        .sample(frac=1, random_state=SEED)
        .reset_index(drop=True)
        for name, frames in parts.items()
    }


def to_csv(frame: pd.DataFrame) -> str:
    """The split file's exact text: header ``text,label``, rows in a stable order."""
    out = io.StringIO()
    frame.sort_index()[["text", "label"]].to_csv(out, index=False, lineterminator="\n")
    return out.getvalue()


def build_frames(raw_folder: Path = CORPUS / "raw") -> dict[str, pd.DataFrame]:
    """Every split of both views as DataFrames (text, label, source), keyed by the split
    file's path relative to the corpus folder: ``"train.csv"``, ...,
    ``"three_class/test.csv"``."""
    two_class = two_class_splits(raw_folder)
    three_class = three_class_splits(two_class, raw_folder)
    files = {f"{name}.csv": frame for name, frame in two_class.items()}
    files.update({f"{THREE_CLASS}/{name}.csv": frame for name, frame in three_class.items()})
    return files


def build(raw_folder: Path = CORPUS / "raw") -> dict[str, str]:
    """The contents of every split file, built from the raw reviews (see
    :func:`build_frames`)."""
    return {path: to_csv(frame) for path, frame in build_frames(raw_folder).items()}


def words(text: str) -> set[str]:
    """The distinct lowercase words of ``text`` (letters, with an inner apostrophe)."""
    return set(re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower()))


def one_class_words(
    frame: pd.DataFrame, min_reviews: int = ARTIFACT_MIN_REVIEWS
) -> dict[str, object]:
    """The words that at least ``min_reviews`` reviews of ``frame`` contain, all of one label:
    ``{word: label}``, most frequent first. A model that counts words learns each of them
    as a sure sign of that label, right or not."""
    seen: dict[str, Counter] = {}
    for text, label in zip(frame["text"], frame["label"]):
        for word in words(text):
            seen.setdefault(word, Counter())[label] += 1
    found = [(w, c) for w, c in seen.items() if len(c) == 1 and c.total() >= min_reviews]
    found.sort(key=lambda item: (-item[1].total(), item[0]))
    return {word: next(iter(counts)) for word, counts in found}


def old_and_new_accuracy(two_class: dict[str, pd.DataFrame]) -> tuple[float, float]:
    """A word-counting classifier (TF-IDF of words and word pairs, logistic regression)
    trained on the version-1 training split, i.e. without the reviews of ``ADDED_IN_V2``:
    its accuracy on the two-class test split and on the version-2 reviews. Reviews that
    read more like real ones should be harder for it."""
    train = two_class["train"]
    added = train["source"].isin(ADDED_IN_V2)
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(max_iter=1000),
    )
    model.fit(train.loc[~added, "text"], train.loc[~added, "label"])
    test, new = two_class["test"], train[added]
    return model.score(test["text"], test["label"]), model.score(new["text"], new["label"])


def report(files: dict[str, pd.DataFrame]) -> str:
    """The datasheet's figures: reviews per label and split of both views, the one-class
    words of both training splits, and the old-versus-new accuracy."""
    lines = []
    for path, frame in files.items():
        counts = frame["label"].value_counts().sort_index().to_dict()
        lines.append(f"{path:<26} {len(frame):5d} reviews  {counts}")
    for path in ("train.csv", f"{THREE_CLASS}/train.csv"):
        found = one_class_words(files[path])
        lines.append(f"one-class words in {path} ({len(found)}): " + ", ".join(found))
    two_class = {name: files[f"{name}.csv"] for name in FRACTIONS}
    old, new = old_and_new_accuracy(two_class)
    lines.append(f"trained on the v1 training split: test {old:.3f}, v2 reviews {new:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CORPUS)
    parser.add_argument("--report", action="store_true", help="print the datasheet's figures")
    args = parser.parse_args(argv)
    files = build_frames()
    for path, frame in files.items():
        target = args.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_csv(frame), encoding="utf-8")
    if args.report:
        print(report(files))
    else:
        for path, frame in files.items():
            print(f"{path:<26} {len(frame):5d} reviews  {frame['label'].value_counts().to_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
