"""The course's movie-review corpus (data/sentiment): size, balance, variety and clean splits,
in both views (two classes, and three with the neutral reviews).

These tests are the corpus's quality gate: they fail if a split leaks into another, if a class
is short, if a word gives a label away, or if the reviews lose the variety (length, vocabulary,
negation) that makes them a useful teaching set.
"""

import hashlib
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_sentiment_splits as corpus  # noqa: E402

from helpers.data import (  # noqa: E402
    SENTIMENT_DISPLAY_ORDER,
    SENTIMENT_LABELS,
    SENTIMENT_LABELS_3,
    load_sentiment_corpus,
)


@pytest.fixture(scope="module", autouse=True)
def near_duplicates_computed_once():
    """corpus.near_duplicate_pairs is a pure function and the costliest step here (a TF-IDF
    similarity matrix of up to 6,000 reviews). build() and the train_only fixture ask it the same
    questions, so each distinct question is answered once, by the real function."""
    real, answers = corpus.near_duplicate_pairs, {}

    def once(texts, threshold=corpus.NEAR_DUPLICATE_COSINE):
        key = (tuple(texts), threshold)
        if key not in answers:
            answers[key] = real(texts, threshold)
        return list(answers[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(corpus, "near_duplicate_pairs", once)
        yield


#: The two-class validation and test files as every chapter has measured on them since the
#: corpus was first split. They must never change: new reviews go to train.csv only.
FROZEN_SHA256 = {
    "validation.csv": "2dbd2251d05a2aa1571f3e5bfb2c77e3e53ad551ed8742152f65c44a3592a9d6",
    "test.csv": "a2732a970ded9aa5768ec4dea90d859d9e2afa132d1ffe93d32246dc55e120ca",
}

#: Words that may be used by one class only in the training split, because they really carry
#: that sentiment. Every other word that 10 or more training reviews use must occur in more
#: than one class; fix a new one by writing reviews that use it in another class.
SENTIMENT_WORDS = set(
    # negative
    """awful bland boring clumsy dull forgettable incoherent lazy lifeless limp mess muddled
    pointless tedious terrible tiresome unwatchable wasted worst"""
    # positive
    """ adored beautifully brilliant delightful devastating elegant gem gloriously
    gorgeous heartbreaking lovely masterpiece riveting stunning superb terrific tender
    unforgettable wonderful""".split()
)


@pytest.fixture(scope="module")
def files() -> dict[str, pd.DataFrame]:
    """Every split of both views as the build script makes it (with a source column)."""
    return corpus.build_frames()


@pytest.fixture(scope="module")
def splits() -> dict[str, pd.DataFrame]:
    return load_sentiment_corpus()


@pytest.fixture(scope="module")
def splits3() -> dict[str, pd.DataFrame]:
    return load_sentiment_corpus(classes=3)


def tagged(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([f.assign(split=name) for name, f in frames.items()], ignore_index=True)


@pytest.fixture(scope="module")
def everything(splits) -> pd.DataFrame:
    return tagged(splits)


@pytest.fixture(scope="module")
def everything3(splits3) -> pd.DataFrame:
    return tagged(splits3)


# --------------------------------------------------------------------------- the build


def test_the_committed_splits_are_exactly_what_the_build_script_makes(files):
    for path, frame in files.items():
        assert (corpus.CORPUS / path).read_text(encoding="utf-8") == corpus.to_csv(frame), (
            f"{path} is stale: run python scripts/build_sentiment_splits.py"
        )


def test_the_two_class_validation_and_test_files_never_change():
    for name, digest in FROZEN_SHA256.items():
        data = (corpus.CORPUS / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, (
            f"{name} changed: the chapters measure on it, so new reviews go to raw/train_only/"
        )


@pytest.fixture(scope="module")
def train_only() -> pd.DataFrame:
    """The reviews of raw/train_only/, as the build script keeps them (new ones only)."""
    raw = corpus.CORPUS / "raw"
    return corpus.new_reviews(
        corpus.read_raw(raw / corpus.TRAIN_ONLY), corpus.deduplicate(corpus.read_raw(raw))
    )


def test_the_genre_parts_are_split_about_70_15_15(splits, train_only, everything):
    split_part = len(everything) - len(train_only)
    for name, share in corpus.FRACTIONS.items():
        size = len(splits[name]) - (len(train_only) if name == "train" else 0)
        assert abs(size / split_part - share) < 0.01, name


def test_train_only_reviews_are_in_the_training_split_and_nowhere_else(splits, train_only):
    assert len(train_only) >= 400
    assert train_only["source"].isin(corpus.ADDED_IN_V2).sum() >= 400
    where = {name: set(frame["text"]) for name, frame in splits.items()}
    assert set(train_only["text"]) <= where["train"]
    assert not set(train_only["text"]) & (where["validation"] | where["test"])


def test_new_reviews_drops_exact_and_near_repeats_of_the_corpus():
    old = pd.DataFrame(
        {
            "text": [
                "A warm, funny and generous film about two brothers.",
                "Dull from start to finish.",
            ],
            "label": ["positive", "negative"],
        }
    )
    extra = pd.DataFrame(
        {
            "text": [
                "dull from start to finish.",  # exact, other case
                "A warm, funny and generous film about three brothers.",  # near twin
                "The score alone is worth the ticket.",  # new
                "The score alone is worth the ticket!",
            ],  # near twin of the new one
            "label": ["negative", "positive", "positive", "positive"],
        }
    )
    assert corpus.new_reviews(extra, old)["text"].tolist() == [
        "The score alone is worth the ticket."
    ]


def test_a_neutral_review_outside_the_neutral_folder_is_refused(tmp_path):
    (tmp_path / "part_x.tsv").write_text("label\ttext\nneutral\tIt is a film.\n")
    with pytest.raises(ValueError, match="'neutral' on data row 1 does not belong"):
        corpus.read_raw(tmp_path)


# --------------------------------------------------------------------------- sizes and splits


def test_there_are_at_least_2400_reviews_and_1200_per_class(everything, everything3):
    assert len(everything) >= 2400
    assert everything["label"].value_counts().min() >= 1200
    assert everything3["label"].value_counts().min() >= 1200


def test_every_two_class_split_is_balanced(splits):
    for name, frame in splits.items():
        positive = frame["label"].mean()
        assert 0.47 <= positive <= 0.53, f"{name}: {positive:.1%} positive"


def test_every_class_of_the_three_class_view_is_split_70_15_15(everything3):
    for label, group in everything3.groupby("label"):
        shares = group["split"].value_counts(normalize=True)
        for name, share in corpus.FRACTIONS.items():
            assert abs(shares[name] - share) < 0.005, (label, name, shares[name])


def test_the_three_class_view_holds_the_two_class_reviews_and_keeps_their_held_out_splits(
    splits, splits3
):
    texts = {name: set(frame["text"]) for name, frame in splits.items()}
    texts3 = {name: set(frame.loc[frame["label"] != 2, "text"]) for name, frame in splits3.items()}
    assert set.union(*texts.values()) == set.union(*texts3.values())
    assert texts["validation"] <= texts3["validation"]
    assert texts["test"] <= texts3["test"]
    assert not (texts["validation"] | texts["test"]) & texts3["train"]


def test_labels_are_the_course_labels(everything, everything3):
    assert set(everything["label"]) == {0, 1}
    assert set(everything3["label"]) == {0, 1, 2}
    assert SENTIMENT_LABELS == ("negative", "positive")
    assert SENTIMENT_LABELS_3 == ("negative", "positive", "neutral")
    assert SENTIMENT_DISPLAY_ORDER == ("negative", "neutral", "positive")


def test_no_review_appears_twice(everything3):
    assert not everything3["text"].str.lower().duplicated().any()


def test_no_near_duplicates_across_splits_in_either_view(everything, everything3):
    """One similarity matrix over all reviews (the three-class view holds every one), checked
    against the splits of both views."""
    texts = everything3["text"].tolist()
    split2 = dict(zip(everything["text"], everything["split"]))
    leaks = []
    for i, j in corpus.near_duplicate_pairs(texts):
        a, b = texts[i], texts[j]
        if everything3["split"][i] != everything3["split"][j]:
            leaks.append(("three classes", a, b))
        if a in split2 and b in split2 and split2[a] != split2[b]:
            leaks.append(("two classes", a, b))
    assert leaks == []


# ------------------------------------------------------------ what the reviews are like


def test_reviews_run_from_3_to_60_words_with_a_real_spread(everything3):
    for label, group in everything3.groupby("label"):
        lengths = group["text"].map(lambda t: len(t.split()))
        assert lengths.min() >= 3 and lengths.max() <= 60, label
        assert (lengths <= 8).mean() >= 0.08, f"label {label}: too few very short reviews"
        assert (lengths >= 30).mean() >= 0.15, f"label {label}: too few long reviews"
        assert lengths.std() >= 10, label


def test_vocabulary_has_at_least_4000_distinct_words(everything):
    vocabulary = {w for text in everything["text"] for w in corpus.words(text)}
    assert len(vocabulary) >= 4000


def test_every_class_uses_negation_so_single_words_cannot_decide_the_label(everything3):
    negated = everything3["text"].str.contains(
        r"\b(?:not|never|no|nothing|n't)\b|n't", case=False, regex=True
    )
    for label in (0, 1, 2):
        assert negated[everything3["label"] == label].mean() >= 0.15


def test_one_class_words_finds_words_that_only_one_label_uses():
    frame = pd.DataFrame(
        {
            "text": ["nice try, but no"] * 3 + ["a nice surprise", "no thanks"],
            "label": [0, 0, 0, 1, 1],
        }
    )
    assert corpus.one_class_words(frame, min_reviews=3) == {"but": 0, "try": 0}
    assert corpus.one_class_words(frame, min_reviews=4) == {}


def test_the_sentiment_word_allow_list_is_short():
    assert len(SENTIMENT_WORDS) <= 40


@pytest.mark.parametrize("view", ["train.csv", "three_class/train.csv"])
def test_no_word_gives_a_label_away_in_the_training_split(files, view):
    """A word that 10 or more training reviews use, all of one class, is a shortcut a
    word-counting model learns ("nice" was an insult in version 1: 21 negative reviews, no
    positive one). Only real sentiment words may do that."""
    shortcuts = {
        word: label
        for word, label in corpus.one_class_words(files[view]).items()
        if word not in SENTIMENT_WORDS
    }
    assert shortcuts == {}, f"{view}: write reviews that use these words in another class"


def test_the_new_reviews_are_harder_than_the_test_split_for_a_model_of_the_old_ones(files):
    """A word-counting classifier trained on version 1's training split finds the reviews
    added in version 2 (written to read like real ones) clearly harder than the test split."""
    two_class = {name: files[f"{name}.csv"] for name in corpus.FRACTIONS}
    on_test, on_new = corpus.old_and_new_accuracy(two_class)
    assert on_new < on_test - 0.10, (on_test, on_new)
