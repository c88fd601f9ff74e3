"""scripts/train_gpt.py, run as a learner runs it: a tiny training run (200 reviews per split,
one epoch, a one-layer model), then sampling from what it saved, with and without the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "train_gpt.py"
TINY = ["--limit", "200", "--epochs", "1", "--vocab-size", "300", "--context", "32",
        "--d-model", "32", "--layers", "1", "--heads", "2"]  # fmt: skip


def run(*args: str) -> str:
    env = {**os.environ, "COURSE_QUIET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpt") / "model"
    metrics = json.loads(run("train", "--output-dir", str(out), *TINY).splitlines()[-1])
    return out, metrics


def test_training_saves_the_tokenizer_model_and_metrics(trained):
    out, metrics = trained
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt", "tokenizer.json"]
    assert metrics["uniform_perplexity"] == 300
    assert metrics["val_perplexity"] < 300  # one epoch already beats a uniform guess
    assert json.loads((out / "metrics.json").read_text())["history"]["epoch"] == [1]


def test_greedy_samples_are_the_same_with_and_without_the_cache(trained):
    out, _ = trained
    args = ["sample", "--model-dir", str(out), "-n", "2", "--max-new-tokens", "12",
            "--temperature", "0"]  # fmt: skip
    cached = run(*args)
    assert cached == run(*args, "--no-cache")
    assert cached.count("\n") >= 2  # one line (or more) per review


def test_sampling_without_a_model_says_how_to_train_one(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "sample", "--model-dir", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert done.returncode != 0 and "run `train --output-dir" in done.stderr


def test_guided_sampling_prints_the_requested_reviews(trained):
    out, _ = trained
    text = run("sample", "--model-dir", str(out), "-n", "3", "--max-new-tokens", "12",
               "--label", "negative", "--guidance", "8")  # fmt: skip
    assert text.count("\n") >= 3
