"""scripts/train_text_classifier.py: the same training as one process and as two processes
under torchrun (DistributedDataParallel on gloo), on a tiny corpus written for the test."""

import csv
import importlib.util
import json
import os
import random
import subprocess
import sys

import pytest

from helpers import REPO_ROOT
from helpers.train import load_checkpoint

SCRIPT = REPO_ROOT / "scripts" / "train_text_classifier.py"
GOOD = ["great", "wonderful", "moving", "brilliant", "funny", "superb"]
BAD = ["awful", "boring", "dull", "terrible", "clumsy", "tedious"]
NEUTRAL = ["the", "film", "plot", "actors", "story", "was", "and", "a", "ending", "music"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small review corpus in the layout of data/sentiment/, found via COURSE_DATA_DIR."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "sentiment"
    folder.mkdir()
    rng = random.Random(0)
    for split, n in (("train", 64), ("validation", 32), ("test", 32)):
        with (folder / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["text", "label"])
            for i in range(n):
                label = i % 2
                words = rng.choices(NEUTRAL, k=6) + rng.choices(GOOD if label else BAD, k=2)
                rng.shuffle(words)
                out.writerow([" ".join(words), "positive" if label else "negative"])
    return root


def quiet_env(corpus):
    return {**os.environ, "COURSE_QUIET": "1", "COURSE_DATA_DIR": str(corpus),
            "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "COURSE_DEVICE": "cpu"}


def test_torchrun_with_two_cpu_processes_trains_and_writes_one_checkpoint(corpus, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(SCRIPT), "--epochs", "3", "--batch-size", "8", "--lr", "0.05", "--min-freq", "1",
           "--limit", "48", "--output-dir", str(out)]
    done = subprocess.run(cmd, env=quiet_env(corpus), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    lines = done.stdout.splitlines()
    assert sum(l.startswith("world size 2 on cpu") for l in lines) == 1  # rank 0 only
    assert [l.split()[1] for l in lines if l.startswith("epoch ")] == ["1/3", "2/3", "3/3"]
    assert sorted(p.name for p in out.glob("*.pt")) == ["checkpoint.pt"]
    assert not list(out.glob(".*.tmp"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    losses = metrics["history"]["train_loss"]
    assert losses[-1] < losses[0]  # it trains
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["epoch"] == 3
    assert len(checkpoint["rng"]) == 2  # one random state per process
    assert not any(k.startswith("module.") for k in checkpoint["model"])  # saved unwrapped


def test_one_process_run_learns_the_tiny_corpus(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_QUIET", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(corpus))
    spec = importlib.util.spec_from_file_location("train_text_classifier", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "out"
    assert script.main(["--epochs", "8", "--batch-size", "8", "--lr", "0.05", "--min-freq", "1",
                        "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 1
    assert metrics["test"]["accuracy"] >= 0.9
    assert json.loads((out / "vocab.json").read_text())[:2] == ["<pad>", "<unk>"]


def test_the_script_refuses_nonsense_arguments(capsys):
    spec = importlib.util.spec_from_file_location("train_text_classifier", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit):
        script.parse_args(["--epochs", "0"])
    assert "--epochs must be >= 1" in capsys.readouterr().err
