"""helpers.bpe: a byte-level BPE tokenizer that round-trips any text, learns the same merges as
the naive algorithm, and saves and loads."""

import json
import random

import pytest

from helpers.bpe import (
    BPETokenizer,
    best_pair,
    chunk_counts,
    count_pairs,
    merge_pair,
    split_chunks,
    train_merges,
)

TEXTS = [
    "The cinematography was breathtaking, but the screenplay felt unoriginal.",
    "A joy from start to finish; the cast is wonderful and the score is, too.",
    "Not bad at all. I'd watch it again -- twice, if the popcorn is good!",
    "The the the thing about the theatre is that there is no other theatre.",
] * 5
SPECIAL = ["<|endoftext|>", "<positive>"]


def random_unicode(rng: random.Random, n: int) -> str:
    """Letters from several scripts, emoji (some outside the BMP, some joined with ZWJ),
    digits, punctuation, whitespace and combining marks."""
    pools = [
        "abcxyz ABC",
        "éüßçñø",
        "Ωλπж中文字日本語한국어",
        "😀🎬🍿👩‍👩‍👧🇫🇷",
        "0123456789",
        " \t\n  ",
        ".,;:!?'\"-_()<>|",
        "\u0301\u200b\ufeff",
    ]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(n))


@pytest.fixture(scope="module")
def tok():
    return BPETokenizer.train(TEXTS, vocab_size=256 + 40 + len(SPECIAL), special_tokens=SPECIAL)


def test_chunks_join_back_to_the_text_and_keep_the_leading_space_with_the_word():
    text = "Hi there!  It's 2024...\n\tok"
    assert "".join(split_chunks(text)) == text
    assert split_chunks("Hi there!") == ["Hi", " there", "!"]


def test_merge_pair_merges_left_to_right_without_overlaps():
    assert merge_pair((7, 7, 7), (7, 7), 300) == (300, 7)
    assert merge_pair((1, 2, 3, 1, 2), (1, 2), 256) == (256, 3, 256)
    assert merge_pair((), (1, 2), 256) == ()


def test_the_fast_trainer_learns_the_same_merges_as_recounting_every_step():
    words = chunk_counts(TEXTS)
    naive, current = [], dict(words)
    for k in range(60):
        counts = count_pairs(current)
        if not counts:
            break
        pair = best_pair(counts)
        naive.append(pair)
        current = {merge_pair(w, pair, 256 + k): n for w, n in current.items()}
    assert train_merges(words, 60) == naive


def test_vocabulary_size_counts_bytes_merges_and_special_tokens(tok):
    assert tok.vocab_size == 256 + 40 + 2
    assert tok.special_tokens == {"<|endoftext|>": 296, "<positive>": 297}
    assert tok.decode([tok.ranks[tok.merges[0]]]) in " ".join(TEXTS)


def test_encoding_compresses_the_training_text(tok):
    text = TEXTS[3]
    assert len(tok.encode(text)) < 0.6 * len(text.encode("utf-8"))


@pytest.mark.parametrize("seed", range(20))
def test_round_trip_on_random_unicode_including_emoji_and_empty_strings(tok, seed):
    rng = random.Random(seed)
    for n in (0, 1, 2, 17, 200):
        text = random_unicode(rng, n)
        assert tok.decode(tok.encode(text)) == text, repr(text)
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_special_tokens_are_one_id_or_plain_text_when_not_allowed(tok):
    text = "<positive>Great film.<|endoftext|>"
    ids = tok.encode(text)
    assert ids[0] == 297 and ids[-1] == 296
    plain = tok.encode(text, allow_special=False)
    assert 296 not in plain and 297 not in plain
    assert tok.decode(ids) == tok.decode(plain) == text


def test_decoding_a_cut_utf8_sequence_gives_the_replacement_character(tok):
    emoji_bytes = list("🎬".encode("utf-8"))
    assert tok.decode(emoji_bytes[:2]) == "\ufffd"


def test_save_and_load_give_the_same_tokenizer(tok, tmp_path):
    path = tok.save(tmp_path / "sub" / "bpe.json")
    again = BPETokenizer.load(path)
    text = "<positive>The theatre, again! 😀<|endoftext|>"
    assert again.encode(text) == tok.encode(text)
    assert again.merges == tok.merges and again.special_tokens == tok.special_tokens
    assert [p.name for p in path.parent.iterdir()] == ["bpe.json"]  # no temporary file left


def test_bad_input_says_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="at least 258"):
        BPETokenizer.train(TEXTS, vocab_size=100, special_tokens=SPECIAL)
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"model": "something else"}))
    with pytest.raises(ValueError, match="BPETokenizer.save"):
        BPETokenizer.load(bad)
    with pytest.raises(TypeError, match="decode bytes first"):
        BPETokenizer([]).encode(b"bytes")
    with pytest.raises(ValueError, match="not in this tokenizer"):
        BPETokenizer([]).decode([256])


def test_training_stops_early_when_no_pair_is_left():
    tok = BPETokenizer.train(["ab"], vocab_size=300)
    assert tok.merges == [(97, 98)] and tok.vocab_size == 257
