"""The course's movie-review corpus (data/sentiment): size, balance, variety and clean splits.

These tests are the corpus's quality gate: they fail if a split leaks into another, if a class
is short, or if the reviews lose the variety (length, vocabulary, negation) that makes them a
useful teaching set.
"""

import re
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_sentiment_splits as corpus  # noqa: E402

from helpers.data import SENTIMENT_LABELS, load_sentiment_corpus  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def near_duplicates_computed_once():
    """corpus.near_duplicate_pairs is a pure function and the costliest step here (a TF-IDF
    similarity matrix of up to 3,500 reviews). build() and the train_only fixture ask it the same
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


@pytest.fixture(scope="module")
def splits() -> dict[str, pd.DataFrame]:
    return load_sentiment_corpus()


@pytest.fixture(scope="module")
def everything(splits) -> pd.DataFrame:
    return pd.concat([f.assign(split=name) for name, f in splits.items()], ignore_index=True)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower())


def test_the_committed_splits_are_exactly_what_the_build_script_makes():
    for name, text in corpus.build().items():
        assert (corpus.CORPUS / f"{name}.csv").read_text(encoding="utf-8") == text, (
            f"{name}.csv is stale: run python scripts/build_sentiment_splits.py"
        )


def test_there_are_at_least_2400_reviews_and_1200_per_class(everything):
    assert len(everything) >= 2400
    assert everything["label"].value_counts().min() >= 1200


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


def test_every_split_is_balanced(splits):
    for name, frame in splits.items():
        positive = frame["label"].mean()
        assert 0.47 <= positive <= 0.53, f"{name}: {positive:.1%} positive"


def test_labels_are_the_two_course_labels(everything):
    assert set(everything["label"]) == {0, 1}
    assert SENTIMENT_LABELS == ("negative", "positive")


def test_no_review_appears_twice(everything):
    assert not everything["text"].str.lower().duplicated().any()


def test_no_near_duplicates_across_splits(everything):
    texts = everything["text"].tolist()
    leaks = [
        (texts[i], texts[j])
        for i, j in corpus.near_duplicate_pairs(texts)
        if everything["split"][i] != everything["split"][j]
    ]
    assert leaks == []


def test_reviews_run_from_3_to_60_words_with_a_real_spread(everything):
    lengths = everything["text"].map(lambda t: len(t.split()))
    assert lengths.min() >= 3 and lengths.max() <= 60
    assert (lengths <= 8).mean() >= 0.08, "too few very short reviews"
    assert (lengths >= 30).mean() >= 0.15, "too few long reviews"
    assert lengths.std() >= 10


def test_vocabulary_has_at_least_4000_distinct_words(everything):
    vocabulary = {w for text in everything["text"] for w in words(text)}
    assert len(vocabulary) >= 4000


def test_both_classes_use_negation_so_single_words_cannot_decide_the_label(everything):
    negated = everything["text"].str.contains(
        r"\b(?:not|never|no|nothing|n't)\b|n't", case=False, regex=True
    )
    for label in (0, 1):
        assert negated[everything["label"] == label].mean() >= 0.15
