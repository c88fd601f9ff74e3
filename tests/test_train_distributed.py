"""Distributed runs on the CPU: scripts/train_text_classifier.py as one process and as two
processes under torchrun (DistributedDataParallel on gloo), on a tiny corpus written for the
test; and evaluation split over two processes, which must count every sample once."""

import csv
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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
    return {
        **os.environ,
        "COURSE_QUIET": "1",
        "COURSE_DATA_DIR": str(corpus),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO_ROOT),
        "COURSE_DEVICE": "cpu",
    }


def test_torchrun_with_two_cpu_processes_trains_and_writes_one_checkpoint(corpus, tmp_path):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(SCRIPT),
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--lr",
        "0.05",
        "--min-freq",
        "1",
        "--limit",
        "48",
        "--output-dir",
        str(out),
    ]
    done = subprocess.run(cmd, env=quiet_env(corpus), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    lines = done.stdout.splitlines()
    assert sum(ln.startswith("world size 2 on cpu") for ln in lines) == 1  # rank 0 only
    assert [ln.split()[1] for ln in lines if ln.startswith("epoch ")] == ["1/3", "2/3", "3/3"]
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
    assert (
        script.main(
            [
                "--epochs",
                "8",
                "--batch-size",
                "8",
                "--lr",
                "0.05",
                "--min-freq",
                "1",
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
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


# --------------------------------------------------------------------------- evaluation shards

N_EVAL = 37  # odd: two processes cannot split it evenly, so a sampler pads
#: "Metrics" that count: how many samples the evaluation saw, and how many were positive.
COUNTS = {"samples": lambda t, p: float(len(t)), "positives": lambda t, p: float(t.sum())}


def eval_loader(kind: str, rank: int, world_size: int):
    """A loader of the N_EVAL samples, sharded for ``rank`` the way ``kind`` says."""
    from torch.utils.data import DataLoader, TensorDataset

    from helpers.data import BucketBatchSampler
    from helpers.train import distributed_loader

    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_EVAL, 8, generator=g)
    dataset = TensorDataset(x, (x.sum(1) > 0).long())
    if kind.startswith("bucket"):
        lengths = torch.randint(1, 30, (N_EVAL,), generator=g).tolist()
        sampler = BucketBatchSampler(
            lengths,
            batch_size=4,
            shuffle=kind == "bucket-shuffled",
            num_replicas=world_size,
            rank=rank,
        )
        return DataLoader(dataset, batch_sampler=sampler)
    plain = DataLoader(dataset, batch_size=4, shuffle=kind == "plain-shuffled")
    return distributed_loader(plain, num_replicas=world_size, rank=rank, seed=3)


def tiny_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))


def evaluate_in_process(rank: int, world_size: int, init_file: str, kind: str, out: str) -> None:
    """One of ``world_size`` gloo processes: evaluate its shard, rank 0 writes the result."""
    import torch.distributed as dist

    from helpers.train import evaluate

    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        result = evaluate(tiny_model(), eval_loader(kind, rank, world_size), metrics=COUNTS)
        if rank == 0:
            Path(out).write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("kind", ["plain", "plain-shuffled", "bucket", "bucket-shuffled"])
def test_distributed_evaluation_counts_every_sample_exactly_once(kind, tmp_path):
    import torch.multiprocessing as mp

    from helpers.train import evaluate

    out = tmp_path / "result.json"
    mp.spawn(evaluate_in_process, args=(2, str(tmp_path / "init"), kind, str(out)), nprocs=2)
    together = json.loads(out.read_text())
    alone = evaluate(tiny_model(), eval_loader("plain", 0, 1), metrics=COUNTS)
    assert together["samples"] == N_EVAL  # not 38: the padding sample is not counted
    assert together["positives"] == alone["positives"]
    assert together["loss"] == pytest.approx(alone["loss"], rel=1e-6)
