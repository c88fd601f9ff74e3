"""helpers.data: the review corpus loader, vocabulary, text dataset, padding, bucketing,
generated shapes, digits, splits and transform presets. Tiny fixtures only: the real corpus
is checked by tests/test_corpus.py."""

import functools
import hashlib
import pickle
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from helpers import REPO_ROOT
from helpers import data as hd

# --------------------------------------------------------------------------- fixtures

SPLIT_CSV = 'text,label\n"Great, truly great.",positive\nDull and slow.,negative\n'


def write_corpus(folder, **overrides):
    """A tiny three-split corpus; ``overrides`` replaces a split's whole file content."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in hd.SENTIMENT_SPLITS:
        (folder / f"{split}.csv").write_text(overrides.get(split, SPLIT_CSV), encoding="utf-8")
    return folder


def text_item(ids, label=0):
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(label)}


# --------------------------------------------------------------------------- data_dir


def test_data_dir_is_the_repository_data_folder_by_default(monkeypatch):
    monkeypatch.delenv(hd.DATA_DIR_ENV_VAR, raising=False)
    assert hd.data_dir() == REPO_ROOT / "data"


def test_data_dir_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(hd.DATA_DIR_ENV_VAR, str(tmp_path))
    assert hd.data_dir() == tmp_path


# --------------------------------------------------------------------------- load_sentiment_split


def test_load_split_returns_texts_and_integer_labels(tmp_path):
    df = hd.load_sentiment_split("train", write_corpus(tmp_path))
    assert df.columns.tolist() == ["text", "label"]
    assert df.text.tolist() == ["Great, truly great.", "Dull and slow."]
    assert df.label.tolist() == [1, 0]
    assert pd.api.types.is_integer_dtype(df.label)


def test_label_ids_follow_sentiment_labels(tmp_path):
    df = hd.load_sentiment_split("test", write_corpus(tmp_path))
    for text, label in zip(df.text, df.label):
        assert hd.SENTIMENT_LABELS[label] == ("positive" if "Great" in text else "negative")


def test_load_split_uses_data_dir_when_no_root_is_given(monkeypatch, tmp_path):
    write_corpus(tmp_path / "sentiment")
    monkeypatch.setenv(hd.DATA_DIR_ENV_VAR, str(tmp_path))
    assert len(hd.load_sentiment_split("validation")) == 2


def test_unknown_split_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="train, validation, test"):
        hd.load_sentiment_split("dev", write_corpus(tmp_path))


def test_missing_folder_says_where_it_looked_and_that_data_ships_with_the_clone(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        hd.load_sentiment_split("train", missing)
    assert str(missing) in str(err.value) and "clone" in str(err.value)


def test_missing_file_names_the_file(tmp_path):
    write_corpus(tmp_path)
    (tmp_path / "test.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"test\.csv does not exist"):
        hd.load_sentiment_split("test", tmp_path)


def test_wrong_header_is_reported(tmp_path):
    write_corpus(tmp_path, train="review,sentiment\nok,positive\n")
    with pytest.raises(ValueError, match=r"train\.csv, line 1: header"):
        hd.load_sentiment_split("train", tmp_path)


def test_malformed_row_names_file_and_line(tmp_path):
    write_corpus(tmp_path, train="text,label\nFine.,positive\nNice, but long,positive\n")
    with pytest.raises(ValueError, match=r"train\.csv, line 3: malformed row with 3 fields"):
        hd.load_sentiment_split("train", tmp_path)


def test_empty_text_names_file_and_line(tmp_path):
    write_corpus(tmp_path, validation="text,label\n  ,negative\n")
    with pytest.raises(ValueError, match=r"validation\.csv, line 2: the text is empty"):
        hd.load_sentiment_split("validation", tmp_path)


def test_unknown_label_names_file_line_value_and_allowed_labels(tmp_path):
    write_corpus(tmp_path, test="text,label\nFine.,positive\nMeh.,neutral\n")
    with pytest.raises(ValueError) as err:
        hd.load_sentiment_split("test", tmp_path)
    message = str(err.value)
    assert "test.csv, line 3" in message and "'neutral'" in message
    assert "negative, positive" in message
    assert "classes=3" in message  # a neutral review in a two-class file says where it belongs


def test_the_three_class_view_reads_its_own_folder_and_numbers_neutral_2(tmp_path):
    three = tmp_path / "three_class"
    write_corpus(three, train="text,label\nFine.,positive\nMeh.,neutral\nBad.,negative\n")
    df = hd.load_sentiment_split("train", write_corpus(tmp_path), classes=3)
    assert df.label.tolist() == [1, 2, 0]
    assert [hd.SENTIMENT_LABELS_3[i] for i in df.label] == ["positive", "neutral", "negative"]
    assert hd.sentiment_labels(3)[:2] == hd.sentiment_labels(2)  # the two-class ids never change


def test_the_three_class_view_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="three_class"):
        hd.load_sentiment_split("train", write_corpus(tmp_path), classes=3)


def test_classes_other_than_2_or_3_are_refused(tmp_path):
    with pytest.raises(ValueError, match="classes must be 2 .* or 3"):
        hd.load_sentiment_split("train", write_corpus(tmp_path), classes=5)


def test_the_shipped_views_share_their_label_ids():
    two, three = hd.load_sentiment_split("test"), hd.load_sentiment_split("test", classes=3)
    label_of = dict(zip(three.text, three.label))
    assert all(label_of[text] == label for text, label in zip(two.text, two.label))


def test_split_without_rows_is_an_error(tmp_path):
    write_corpus(tmp_path, validation="text,label\n")
    with pytest.raises(ValueError, match=r"validation\.csv: .*no rows"):
        hd.load_sentiment_split("validation", tmp_path)


def test_completely_empty_file_is_an_error(tmp_path):
    write_corpus(tmp_path, train="")
    with pytest.raises(ValueError, match=r"train\.csv is empty"):
        hd.load_sentiment_split("train", tmp_path)


def test_quoted_multiline_texts_keep_their_newline(tmp_path):
    write_corpus(tmp_path, train='text,label\n"Line one.\nLine two.",negative\n')
    assert hd.load_sentiment_split("train", tmp_path).text[0] == "Line one.\nLine two."


# --------------------------------------------------------------------------- load_sentiment_corpus


def test_corpus_has_all_three_splits(tmp_path):
    corpus = hd.load_sentiment_corpus(write_corpus(tmp_path))
    assert list(corpus) == ["train", "validation", "test"]
    assert all(len(df) == 2 for df in corpus.values())


def test_corpus_reports_a_broken_split(tmp_path):
    write_corpus(tmp_path, test="text,label\nFine.,5\n")
    with pytest.raises(ValueError, match=r"test\.csv, line 2: unknown label '5'"):
        hd.load_sentiment_corpus(tmp_path)


# --------------------------------------------------------------------------- simple_tokenize


def test_tokenize_lowercases_and_splits_punctuation():
    assert hd.simple_tokenize("Great film!") == ["great", "film", "!"]


def test_tokenize_keeps_contractions_together():
    assert hd.simple_tokenize("I didn't LOVE it.") == ["i", "didn't", "love", "it", "."]


def test_tokenize_rejects_non_strings():
    with pytest.raises(TypeError, match="expects a str"):
        hd.simple_tokenize(None)


# --------------------------------------------------------------------------- Vocab / build_vocab


def test_vocab_reserves_pad_0_and_unk_1():
    v = hd.Vocab(["good"])
    assert (v.pad_id, v.unk_id) == (0, 1)
    assert v.itos[:2] == ["<pad>", "<unk>"] and v.stoi["good"] == 2 and len(v) == 3


def test_vocab_encodes_unknown_tokens_as_unk():
    assert hd.Vocab(["good", "bad"]).encode("Good, bad") == [2, 1, 3]


def test_vocab_decode_skips_padding_and_rejects_unknown_ids():
    v = hd.Vocab(["good", "bad"])
    assert v.decode([2, 3, 0, 0]) == "good bad"
    with pytest.raises(IndexError, match="outside this vocabulary"):
        v.decode([7])


def test_vocab_knows_which_tokens_it_contains():
    v = hd.Vocab(["good"])
    assert "good" in v and "<pad>" in v and "bad" not in v


def test_vocab_refuses_duplicate_tokens():
    with pytest.raises(ValueError, match="appears twice"):
        hd.Vocab(["a", "a"])


def test_vocab_survives_pickling_for_worker_processes():
    v = hd.Vocab(["good"])
    assert pickle.loads(pickle.dumps(v)).encode("good movie") == [2, 1]


def test_build_vocab_orders_by_frequency_then_alphabet():
    assert hd.build_vocab(["b a c", "c b", "c"]).itos[2:] == ["c", "b", "a"]


def test_build_vocab_drops_rare_tokens():
    assert hd.build_vocab(["a b b", "b c"], min_freq=2).itos == ["<pad>", "<unk>", "b"]


def test_build_vocab_max_size_counts_the_special_tokens():
    v = hd.build_vocab(["a a a b b c"], max_size=4)
    assert len(v) == 4 and v.itos[2:] == ["a", "b"]


def test_build_vocab_rejects_bad_arguments():
    with pytest.raises(TypeError, match="not a single str"):
        hd.build_vocab("just one text")
    with pytest.raises(ValueError, match="min_freq"):
        hd.build_vocab(["a"], min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        hd.build_vocab(["a"], max_size=1)


# ------------------------------------------------------------------ TextClassificationDataset


def test_text_dataset_items_are_long_tensors():
    encode = hd.Vocab(["good", "bad"]).encode
    ds = hd.TextClassificationDataset(["good", "bad film"], [1, 0], encode)
    item = ds[1]
    assert item["input_ids"].tolist() == [3, 1] and item["input_ids"].dtype == torch.long
    assert item["labels"].ndim == 0 and item["labels"].item() == 0
    assert len(ds) == 2


def test_text_dataset_reports_lengths_for_bucketing():
    ds = hd.TextClassificationDataset(["a", "a b c", "a b"], [0, 1, 0], hd.Vocab(["a"]).encode)
    assert ds.lengths == [1, 3, 2]


def test_text_dataset_truncates_to_max_length():
    ds = hd.TextClassificationDataset(["a b c d"], [1], hd.Vocab(["a"]).encode, max_length=2)
    assert ds.lengths == [2]


def test_text_dataset_accepts_pandas_columns_and_any_encoder():
    df = pd.DataFrame({"text": ["ab", "abc"], "label": [0, 1]})
    ds = hd.TextClassificationDataset(df.text, df.label, lambda t: [ord(c) for c in t])
    assert ds[1]["input_ids"].tolist() == [97, 98, 99] and ds[1]["labels"].item() == 1


def test_text_dataset_rejects_mismatched_or_bad_labels():
    encode = hd.Vocab([]).encode
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        hd.TextClassificationDataset(["a", "b"], [0], encode)
    with pytest.raises(ValueError, match="index 1 is 'positive'"):
        hd.TextClassificationDataset(["a", "b"], [0, "positive"], encode)


def test_text_dataset_rejects_texts_without_tokens():
    with pytest.raises(ValueError, match="index 1 encodes to no tokens"):
        hd.TextClassificationDataset(["fine", "  "], [0, 1], hd.Vocab([]).encode)


def test_text_dataset_explains_a_tokenizer_mapping():
    with pytest.raises(TypeError, match=r"\['input_ids'\]"):
        hd.TextClassificationDataset(["a"], [0], lambda t: {"input_ids": [1, 2]})


# --------------------------------------------------------------------------- pad_collate


def test_pad_collate_pads_to_the_longest_in_this_batch():
    batch = hd.pad_collate([text_item([5, 6, 7], 1), text_item([8], 0)])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [1, 0]


def test_pad_collate_uses_the_given_pad_id():
    batch = hd.pad_collate([text_item([5, 6]), text_item([8])], pad_id=99)
    assert batch["input_ids"][1].tolist() == [8, 99]
    assert batch["attention_mask"][1].tolist() == [1, 0]


def test_pad_collate_returns_long_tensors_of_batch_shape():
    batch = hd.pad_collate([text_item([1]), text_item([2, 3, 4, 5])])
    assert {k: (tuple(v.shape), v.dtype) for k, v in batch.items()} == {
        "input_ids": ((2, 4), torch.long),
        "attention_mask": ((2, 4), torch.long),
        "labels": ((2,), torch.long),
    }


def test_pad_collate_rejects_bad_batches():
    with pytest.raises(ValueError, match="empty batch"):
        hd.pad_collate([])
    with pytest.raises(KeyError, match="item 1 must be a dict"):
        hd.pad_collate([text_item([1]), {"input_ids": torch.tensor([2])}])
    with pytest.raises(ValueError, match="pad_token = tokenizer.eos_token"):
        hd.pad_collate([text_item([1])], pad_id=None)


def test_pad_collate_partial_works_in_worker_processes():
    ds = hd.TextClassificationDataset(["a b", "a", "b a b"], [0, 1, 0], hd.Vocab(["a", "b"]).encode)
    collate = functools.partial(hd.pad_collate, pad_id=9)
    loader = DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=1)
    (batch,) = list(loader)
    assert batch["input_ids"].tolist() == [[2, 3, 9], [2, 9, 9], [3, 2, 3]]


# --------------------------------------------------------------------------- BucketBatchSampler

LENGTHS = [(i * 37) % 101 + 1 for i in range(250)]  # 250 scrambled lengths 1..101


def test_bucket_sampler_yields_every_index_exactly_once():
    batches = list(hd.BucketBatchSampler(LENGTHS, batch_size=16, pool_size=64))
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))


def test_bucket_sampler_len_matches_iteration_with_and_without_drop_last():
    for drop_last, expected in [(False, 16), (True, 15)]:  # 250 = 15 * 16 + 10
        sampler = hd.BucketBatchSampler(LENGTHS, batch_size=16, drop_last=drop_last)
        batches = list(sampler)
        assert len(sampler) == len(batches) == expected
        assert all(len(b) == 16 for b in batches) or not drop_last


def test_bucket_sampler_pads_much_less_than_random_batches():
    bucketed = list(hd.BucketBatchSampler(LENGTHS, batch_size=16, seed=0))
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(LENGTHS), generator=g).tolist()
    random_batches = [order[i : i + 16] for i in range(0, len(order), 16)]
    assert hd.padding_fraction(LENGTHS, bucketed) < hd.padding_fraction(LENGTHS, random_batches) / 4


def test_bucket_sampler_sorts_within_pools_only():
    batches = list(hd.BucketBatchSampler(LENGTHS, batch_size=10, shuffle=False, pool_size=50))
    for p in range(5):  # without shuffling, pool p holds the indices 50p .. 50p+49
        pool = [i for b in batches[5 * p : 5 * p + 5] for i in b]
        assert sorted(pool) == list(range(50 * p, 50 * p + 50))
        assert [LENGTHS[i] for i in pool] == sorted(LENGTHS[i] for i in pool)


def test_bucket_sampler_is_reproducible_per_seed_and_epoch():
    def order(seed, epoch):
        sampler = hd.BucketBatchSampler(LENGTHS, batch_size=16, seed=seed, pool_size=64)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(0, 0) == order(0, 0)
    assert order(0, 0) != order(1, 0)
    assert order(0, 0) != order(0, 1)


def test_bucket_sampler_without_shuffle_ignores_the_epoch():
    sampler = hd.BucketBatchSampler(LENGTHS, batch_size=16, shuffle=False)
    first = list(sampler)
    sampler.set_epoch(5)
    assert list(sampler) == first


def test_bucket_sampler_drives_a_dataloader():
    texts = ["a " * n for n in (1, 7, 2, 8, 1, 7)]
    ds = hd.TextClassificationDataset(texts, [0] * 6, hd.Vocab(["a"]).encode)
    sampler = hd.BucketBatchSampler(ds.lengths, batch_size=2, shuffle=False)
    widths = sorted(
        b["input_ids"].shape[1]
        for b in DataLoader(ds, batch_sampler=sampler, collate_fn=hd.pad_collate)
    )
    assert widths == [1, 7, 8]


def test_bucket_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dataset is empty"):
        hd.BucketBatchSampler([], batch_size=4)
    with pytest.raises(ValueError, match="index 1 is -3"):
        hd.BucketBatchSampler([2, -3], batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        hd.BucketBatchSampler([2, 3], batch_size=0)
    with pytest.raises(ValueError, match="pool_size"):
        hd.BucketBatchSampler([2, 3], batch_size=2, pool_size=0)


# --------------------------------------------------------------------------- sharded buckets

ODD_LENGTHS = LENGTHS[:37]  # 37 items: batches that do not share out evenly between ranks


def rank_samplers(num_replicas, **kwargs):
    return [
        hd.BucketBatchSampler(ODD_LENGTHS, num_replicas=num_replicas, rank=r, **kwargs)
        for r in range(num_replicas)
    ]


def real_batches(sampler):
    """A rank's batches without the trailing padding copies."""
    batches = list(sampler)
    return batches[: len(batches) - sampler.padding_batches()]


@pytest.mark.parametrize("batch_size, num_replicas", [(4, 2), (4, 3), (3, 2), (5, 3), (16, 3)])
def test_sharded_evaluation_sees_every_index_exactly_once(batch_size, num_replicas):
    samplers = rank_samplers(num_replicas, batch_size=batch_size, shuffle=False)
    indices = [i for s in samplers for b in s for i in b]
    assert sorted(indices) == list(range(len(ODD_LENGTHS)))
    assert all(s.padding_batches() == 0 and len(s) == len(list(s)) for s in samplers)
    assert max(len(s) for s in samplers) - min(len(s) for s in samplers) <= 1


@pytest.mark.parametrize("batch_size, num_replicas", [(4, 2), (4, 3), (3, 2), (5, 3), (16, 3)])
def test_sharded_training_gives_every_rank_as_many_batches(batch_size, num_replicas):
    samplers = rank_samplers(num_replicas, batch_size=batch_size, seed=7)
    everything = list(hd.BucketBatchSampler(ODD_LENGTHS, batch_size=batch_size, seed=7))
    steps = -(-len(everything) // num_replicas)
    for r, sampler in enumerate(samplers):
        batches = list(sampler)
        assert len(sampler) == len(batches) == steps
        assert batches[: len(batches) - sampler.padding_batches()] == everything[r::num_replicas]
        copies = batches[len(everything[r::num_replicas]) :]
        assert all(b in everything[:num_replicas] for b in copies)  # of the first batches
    indices = [i for s in samplers for b in real_batches(s) for i in b]
    assert sorted(indices) == list(range(len(ODD_LENGTHS)))
    padding = sum(s.padding_batches() for s in samplers)
    assert padding == steps * num_replicas - len(everything)


def test_sharded_training_pads_with_the_first_batches_even_when_batches_are_few():
    samplers = [
        hd.BucketBatchSampler([3, 1, 4, 1, 5], batch_size=4, num_replicas=3, rank=r)
        for r in range(3)
    ]  # 2 batches for 3 ranks
    everything = list(hd.BucketBatchSampler([3, 1, 4, 1, 5], batch_size=4))
    assert [list(s) for s in samplers] == [[everything[0]], [everything[1]], [everything[0]]]
    assert [s.padding_batches() for s in samplers] == [0, 0, 1]


def test_sharded_samplers_change_the_order_together_with_the_epoch():
    samplers = rank_samplers(3, batch_size=4, seed=1)
    single = hd.BucketBatchSampler(ODD_LENGTHS, batch_size=4, seed=1)
    orders = []
    for epoch in (0, 1):
        single.set_epoch(epoch)
        everything = list(single)
        for r, sampler in enumerate(samplers):
            sampler.set_epoch(epoch)
            assert real_batches(sampler) == everything[r::3]
        orders.append(everything)
    assert orders[0] != orders[1]


def test_a_single_replica_is_the_unsharded_sampler():
    plain = hd.BucketBatchSampler(LENGTHS, batch_size=16, seed=3)
    sharded = hd.BucketBatchSampler(LENGTHS, batch_size=16, seed=3, num_replicas=1, rank=0)
    assert list(plain) == list(sharded) and sharded.padding_batches() == 0


def test_bucket_sampler_rejects_bad_replicas():
    for num_replicas, rank in [(0, 0), (2, 2), (2, -1), (1.5, 0), (2, True)]:
        with pytest.raises(ValueError, match="num_replicas"):
            hd.BucketBatchSampler([2, 3], batch_size=2, num_replicas=num_replicas, rank=rank)


# --------------------------------------------------------------------------- padding_fraction


def test_padding_fraction_counts_pads_over_all_positions():
    # batch [1, 3] pads the 1 to 3 (2 pads), batch [2, 2] needs none: 2 of 10 positions
    assert hd.padding_fraction([1, 3, 2, 2], [[0, 1], [2, 3]]) == pytest.approx(0.2)


def test_padding_fraction_is_zero_for_equal_lengths():
    assert hd.padding_fraction([4, 4, 4], [[0, 1, 2]]) == 0.0


def test_padding_fraction_rejects_bad_batches():
    with pytest.raises(IndexError, match="Batch 0 has index 5"):
        hd.padding_fraction([1, 2], [[0, 5]])
    with pytest.raises(ValueError, match="Batch 1 is empty"):
        hd.padding_fraction([1, 2], [[0], []])
    with pytest.raises(ValueError, match="No positions"):
        hd.padding_fraction([1, 2], [])


# --------------------------------------------------------------------------- make_shapes_dataset


def digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.png"))
    }


def test_shapes_dataset_has_imagefolder_layout(tmp_path):
    root = hd.make_shapes_dataset(tmp_path / "shapes", n_per_class=4, image_size=16)
    assert root == tmp_path / "shapes"
    ds = ImageFolder(root)
    assert ds.classes == ["circle", "square", "triangle"] and len(ds) == 12
    image, label = ds[0]
    assert image.size == (16, 16) and image.mode == "RGB" and label == 0


def test_shapes_dataset_is_byte_identical_when_rerun(tmp_path):
    a = digest(hd.make_shapes_dataset(tmp_path / "a", n_per_class=3, seed=1))
    b = digest(hd.make_shapes_dataset(tmp_path / "b", n_per_class=3, seed=1))
    assert a == b and len(a) == 9


def test_shapes_dataset_changes_with_the_seed(tmp_path):
    a = digest(hd.make_shapes_dataset(tmp_path / "a", n_per_class=3, seed=1))
    b = digest(hd.make_shapes_dataset(tmp_path / "b", n_per_class=3, seed=2))
    assert set(a.values()).isdisjoint(b.values())


def test_shapes_images_differ_from_each_other(tmp_path):
    hashes = digest(hd.make_shapes_dataset(tmp_path, n_per_class=5, classes=hd.SHAPE_CLASSES))
    assert len(set(hashes.values())) == 25


def test_shapes_image_shows_its_shape_on_a_background(tmp_path):
    root = hd.make_shapes_dataset(tmp_path, n_per_class=1, image_size=32, classes=("square",))
    pixels = np.asarray(Image.open(root / "square" / "0000.png"))
    brightness = pixels.max(axis=-1)  # HSV value: shapes are bright, backgrounds dark
    assert 0.05 < (brightness > 140).mean() < 0.9


def test_shapes_rerun_with_fewer_images_removes_the_extra_ones(tmp_path):
    hd.make_shapes_dataset(tmp_path, n_per_class=5)
    hd.make_shapes_dataset(tmp_path, n_per_class=2)
    assert len(ImageFolder(tmp_path)) == 6


def test_shapes_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="Unknown shape class.*hexagon.*choose from"):
        hd.make_shapes_dataset(tmp_path, classes=("circle", "hexagon"))
    with pytest.raises(ValueError, match="duplicates"):
        hd.make_shapes_dataset(tmp_path, classes=("circle", "circle"))
    with pytest.raises(ValueError, match="n_per_class"):
        hd.make_shapes_dataset(tmp_path, n_per_class=0)
    with pytest.raises(ValueError, match="image_size"):
        hd.make_shapes_dataset(tmp_path, image_size=4)


# --------------------------------------------------------------------------- digits


def test_digits_are_1x8x8_floats_in_unit_range_with_int_labels():
    ds = hd.load_digits_dataset()
    image, label = ds[0]
    assert len(ds) == 1797 and image.shape == (1, 8, 8) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() > 0.5
    assert isinstance(label, int) and label == ds.targets[0]


def test_digits_have_ten_roughly_balanced_classes():
    ds = hd.load_digits_dataset()
    counts = Counter(ds.targets)
    assert ds.classes == [str(d) for d in range(10)]
    assert sorted(counts) == list(range(10)) and min(counts.values()) > 150


def test_digits_apply_the_transform():
    ds = hd.load_digits_dataset(transform=lambda x: x * 2)
    assert torch.equal(ds[3][0], hd.load_digits_dataset()[3][0] * 2)


# --------------------------------------------------------------------------- split_dataset


def test_split_sizes_follow_the_fractions():
    parts = hd.split_dataset(list(range(100)), (0.7, 0.15, 0.15))
    assert [len(p) for p in parts] == [70, 15, 15]


def test_split_parts_are_disjoint_and_cover_everything():
    parts = hd.split_dataset(list(range(53)), (0.5, 0.5))
    assert sorted(parts[0].indices + parts[1].indices) == list(range(53))


def test_split_is_reproducible_per_seed():
    def first(seed):
        return list(hd.split_dataset(list(range(50)), seed=seed)[0].indices)

    assert first(3) == first(3) and first(3) != first(4)


def test_split_rejects_fractions_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="sum to 0.9; they must sum to 1"):
        hd.split_dataset(list(range(10)), (0.6, 0.3))
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        hd.split_dataset(list(range(10)), (1.2, -0.2))


def test_split_that_would_be_empty_is_an_error():
    message = r"Split 1 \(fraction 0.1\) of a dataset of 5 items would be empty"
    with pytest.raises(ValueError, match=message):
        hd.split_dataset(list(range(5)), (0.9, 0.1))


# --------------------------------------------------------------------------- transforms


def test_eval_transform_is_deterministic_and_normalised():
    image = Image.new("RGB", (40, 50), (255, 0, 128))
    t = hd.image_transforms(train=False, size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = t(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert torch.equal(out, t(image))
    assert out[:, 16, 16].tolist() == pytest.approx([1.0, -1.0, 0.0039], abs=1e-3)


def test_train_transform_augments_randomly(tmp_path):
    root = hd.make_shapes_dataset(tmp_path, n_per_class=1, classes=("star",))
    image = Image.open(root / "star" / "0000.png")
    t = hd.image_transforms(train=True, size=24)
    torch.manual_seed(0)
    a, b = t(image), t(image)
    assert a.shape == b.shape == (3, 24, 24) and not torch.equal(a, b)


def test_transforms_handle_one_channel_tensors():
    image = hd.load_digits_dataset()[0][0]
    out = hd.image_transforms(train=False, size=8, mean=(0.5,), std=(0.5,))(image)
    assert out.shape == (1, 8, 8)
    assert torch.allclose(out, (image - 0.5) / 0.5)
    transform = hd.image_transforms(train=True, size=8, mean=(0.5,), std=(0.5,))
    assert transform(image).shape == (1, 8, 8)


def test_transforms_reject_bad_statistics():
    with pytest.raises(ValueError, match="one value per channel"):
        hd.image_transforms(train=False, mean=(0.5, 0.5), std=(0.5,))
    with pytest.raises(ValueError, match="std values must be > 0"):
        hd.image_transforms(train=False, mean=(0.5,), std=(0.0,))
    with pytest.raises(ValueError, match="size"):
        hd.image_transforms(train=True, size=0)


def test_denormalize_inverts_the_eval_transform():
    image = Image.new("RGB", (32, 32), (200, 100, 50))
    x = hd.image_transforms(train=False, size=32)(image)
    restored = hd.denormalize(x)
    assert torch.allclose(restored[:, 0, 0], torch.tensor([200, 100, 50]) / 255, atol=1e-5)
    assert hd.denormalize(x.unsqueeze(0)).shape == (1, 3, 32, 32)


def test_denormalize_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="3 channels but mean has 1"):
        hd.denormalize(torch.zeros(3, 4, 4), mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match="got shape"):
        hd.denormalize(torch.zeros(4, 4))


# --------------------------------------------------------------------------- photo patches


def test_photo_patches_come_in_imagefolder_splits_with_the_asked_counts(tmp_path):
    counts = {"train": 3, "val": 2, "test": 1}
    root = hd.make_photo_patches_dataset(
        tmp_path, counts, patch_size=32, classes=["brick", "space"]
    )
    for split, n in counts.items():
        ds = ImageFolder(root / split)
        assert ds.classes == ["brick", "space"]
        assert Counter(ds.targets) == {0: n, 1: n}
        image = ds[0][0]
        assert image.size == (32, 32) and image.mode == "RGB"


def test_photo_patches_are_grey_and_reproducible(tmp_path):
    args = ({"train": 2}, 24, 5, ["retina"])
    a = hd.make_photo_patches_dataset(tmp_path / "a", *args) / "train" / "retina" / "0001.png"
    b = hd.make_photo_patches_dataset(tmp_path / "b", *args) / "train" / "retina" / "0001.png"
    assert a.read_bytes() == b.read_bytes()
    pixels = np.asarray(Image.open(a))
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_each_split_cuts_its_patches_from_its_own_rows_of_the_photo(tmp_path):
    """No pixel of a test patch was seen in training: every patch is found inside its band."""
    size = 16
    root = hd.make_photo_patches_dataset(tmp_path, {"train": 3, "test": 3}, size, classes=["grass"])
    photo = hd.load_source_photo("grass")
    for split in ("train", "test"):
        lo, hi = (round(f * photo.shape[0]) for f in hd.PHOTO_SPLIT_BANDS[split])
        for path in sorted((root / split / "grass").glob("*.png")):
            patch = np.asarray(Image.open(path))[..., 0]
            windows = np.lib.stride_tricks.sliding_window_view(photo, (size, size))
            rows = np.nonzero((windows == patch).all(axis=(2, 3)))[0]
            assert len(rows) and (rows >= lo).all() and (rows + size <= hi).all(), (split, rows)


def test_every_band_of_every_photo_fits_a_48_pixel_patch(tmp_path):
    """The chapter cuts 48-pixel patches: every split of every class must have room for one."""
    assert len(hd.PHOTO_SOURCES) == 10
    for name in hd.PHOTO_SOURCES:
        rows = hd.load_source_photo(name).shape[0]
        for split, (lo, hi) in hd.PHOTO_SPLIT_BANDS.items():
            assert round(hi * rows) - round(lo * rows) >= 48, (name, split, rows)
    counts = {split: 1 for split in hd.PHOTO_SPLIT_BANDS}
    root = hd.make_photo_patches_dataset(tmp_path, counts, patch_size=48)  # raises if one is short
    assert len(ImageFolder(root / "test").classes) == 10


def test_a_smaller_second_run_removes_the_extra_patches(tmp_path):
    hd.make_photo_patches_dataset(tmp_path, {"val": 4}, 16, classes=["gravel"])
    hd.make_photo_patches_dataset(tmp_path, {"val": 2}, 16, classes=["gravel"])
    assert sorted(p.name for p in (tmp_path / "val" / "gravel").iterdir()) == [
        "0000.png",
        "0001.png",
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"classes": ["cat"]}, "Unknown photo class"),
        ({"patches_per_split": {"training": 3}}, "patches_per_split"),
        ({"patches_per_split": {"train": 0}}, "patches_per_split"),
        ({"patch_size": 4}, "patch_size"),
        ({"patch_size": 300}, "too small for patches"),
    ],
)
def test_bad_photo_patch_arguments_say_what_to_change(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        hd.make_photo_patches_dataset(tmp_path, **kwargs)
