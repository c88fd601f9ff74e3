"""Tests of scripts/finetune_sentiment.py: one tiny fine-tune (32 texts per split, 1 epoch,
32 tokens) run as a learner would run it, then checks of what it printed and saved.

The run fine-tunes the tiny random encoder of tests/conftest.py (``--model``), not the shipped
22.7M-parameter one: what is tested is the script (arguments, loaders, training, logging, the
saved folder, the JSON line), which is the same for both. That the script's default model is the
shipped encoder is checked in-process below, and that the shipped encoder loads and classifies,
in tests/test_bert.py."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.bert import offline_model_path, predict_sentiment

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "finetune_sentiment.py"
TINY = ["--limit", "32", "--epochs", "1", "--max-length", "32", "--batch-size", "16"]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "COURSE_QUIET": "1"}


def _run_tiny(out: Path, model_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """The script on the tiny model and 32 reviews; fails the test with its stderr if it fails."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--output-dir", str(out), *TINY, "--model", str(model_dir),
         *extra],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("finetune") / "model"
    return out, _run_tiny(out, tiny_bert_dir)


@pytest.fixture(scope="module")
def tiny_lora_run(tmp_path_factory, tiny_bert_dir):
    out = tmp_path_factory.mktemp("finetune_lora") / "model"
    done = _run_tiny(out, tiny_bert_dir, "--classes", "3", "--lora-rank", "4")
    return out, json.loads(done.stdout.strip().splitlines()[-1])


def _load_script():
    spec = importlib.util.spec_from_file_location("finetune_sentiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stdout_is_one_json_line_with_the_final_metrics(tiny_run, tiny_bert_dir):
    _, done = tiny_run
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["path"] == "offline" and result["epochs"] == 1
    assert result["model"] == str(tiny_bert_dir)  # --model replaces the path's model
    assert result["train_samples"] == 32 and result["test_samples"] == 32
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert result["train_samples_per_second"] > 0 and result["wall_seconds"] > 0


def test_output_folder_is_a_model_folder_with_the_label_names(tiny_run):
    out, _ = tiny_run
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()


def test_training_is_logged_for_tensorboard(tiny_run):
    out, _ = tiny_run
    assert list((out / "logs").rglob("events.out.tfevents.*"))


def test_saved_model_serves_predict_sentiment(tiny_run):
    out, _ = tiny_run
    labels, probs = predict_sentiment(["A delight.", "A mess."], out)
    assert set(labels) <= {"negative", "positive"} and probs.shape == (2, 2)


def test_without_model_the_offline_path_fine_tunes_the_shipped_encoder(tmp_path, monkeypatch):
    """The run above passes --model; without it the script loads the packaged all-MiniLM-L6-v2."""
    script = _load_script()
    asked = []

    class Loaded(Exception):
        """Stops main() once it has asked for a model: the training itself is tested above."""

    def record(name_or_path, *args, **kwargs):
        asked.append(name_or_path)
        raise Loaded

    monkeypatch.setattr(script, "load_model_and_tokenizer", record)
    with pytest.raises(Loaded):
        script.main(["--output-dir", str(tmp_path), "--mode", "offline"])
    assert asked == [str(offline_model_path())]


def test_three_classes_with_lora_train_few_weights_and_save_a_merged_model(tiny_lora_run):
    out, result = tiny_lora_run
    assert result["classes"] == 3 and result["lora_rank"] == 4
    # the tiny encoder: 2 layers x (query, key, value, output) x rank 4 x (32 + 32), the pooler
    # and the head
    assert result["trainable_parameters"] == 2 * 4 * 4 * 64 + (32 * 32 + 32) + (3 * 32 + 3)
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive", "2": "neutral"}
    assert (out / "adapter.safetensors").is_file()
    labels, probs = predict_sentiment(["A delight.", "It exists."], out)  # a plain merged model
    assert probs.shape == (2, 3) and set(labels) <= {"negative", "positive", "neutral"}


def test_the_saved_adapter_restores_the_fine_tuned_model(tiny_lora_run, tiny_bert_dir):
    import torch

    from helpers.bert import load_model_and_tokenizer, predict_proba
    from helpers.lora import load_adapter

    out, _ = tiny_lora_run
    base, tokenizer, _ = load_model_and_tokenizer(tiny_bert_dir, num_labels=3)
    adapted = load_adapter(base, out / "adapter.safetensors")
    merged, _, _ = load_model_and_tokenizer(out, num_labels=3)
    texts = ["A delight.", "It exists.", "A mess."]
    expected = predict_proba(merged, tokenizer, texts)
    torch.testing.assert_close(
        predict_proba(adapted, tokenizer, texts), expected, atol=1e-5, rtol=0
    )


@pytest.mark.parametrize(
    "bad",
    [
        ["--limit", "0"],
        ["--epochs", "0"],
        ["--max-length", "4"],
        ["--lr", "-1"],
        ["--lora-rank", "0"],
        ["--lora-alpha", "8"],
        ["--classes", "4"],
        ["--classes", "3", "--mode", "full"],
    ],
)
def test_bad_arguments_are_refused_with_a_message(bad, capsys):
    script = _load_script()
    with pytest.raises(SystemExit) as exit_info:
        script.parse_args(["--output-dir", "unused", *bad])
    assert exit_info.value.code == 2
    assert bad[0] in capsys.readouterr().err


def test_output_dir_is_required(capsys):
    script = _load_script()
    with pytest.raises(SystemExit):
        script.parse_args([])
    assert "--output-dir" in capsys.readouterr().err
