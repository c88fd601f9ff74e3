"""helpers.train checkpoints survive crashes: writes are atomic, and a training process killed
with SIGKILL in the middle of an epoch resumes to exactly the weights of an uninterrupted run."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from helpers import REPO_ROOT
from helpers import train as tr

EPOCH_SAMPLES = 96


class Samples(Dataset):
    """96 random points; when ``block_after`` > 0, fetching that many samples writes ``marker``
    and blocks, so that the parent can kill the process at a known point, mid-epoch, however
    fast or slow the machine is."""

    def __init__(self, block_after: int = 0, marker: Path | None = None):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(EPOCH_SAMPLES, 8, generator=g)
        self.y = (self.x.sum(1) > 0).long()
        self.block_after, self.marker, self.fetched = block_after, marker, 0

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.fetched += 1
        if self.fetched == self.block_after:
            self.marker.write_text("mid-epoch")
            time.sleep(600)
        return self.x[i], self.y[i]


def run_training(checkpoint: Path, block_after: int = 0, marker: Path | None = None):
    """Five seeded epochs with dropout, shuffling, momentum and a schedule: everything that
    resuming must restore. Runs in the test process and in the child process alike."""
    torch.set_num_threads(1)
    random.seed(0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    loader = DataLoader(
        Samples(block_after, marker),
        batch_size=16,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
    )
    history = tr.fit(
        model,
        loader,
        epochs=5,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_step="epoch",
        metrics=(),
        checkpoint_path=checkpoint,
        resume=checkpoint if checkpoint.exists() else None,
    )
    return model.state_dict(), history


CHILD = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from {Path(__file__).stem} import run_training
run_training(Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))
"""


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_run_killed_mid_epoch_resumes_to_the_weights_of_an_uninterrupted_run(
    tmp_path, one_thread
):
    marker, checkpoint = tmp_path / "blocked", tmp_path / "run.pt"
    block_after = 2 * EPOCH_SAMPLES + 40  # epoch 3, third batch
    env = {**os.environ, "COURSE_QUIET": "1", "PYTHONPATH": str(REPO_ROOT)}
    victim = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(checkpoint), str(block_after), str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        reference, reference_history = run_training(tmp_path / "reference.pt")  # meanwhile
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert victim.poll() is None, victim.communicate()[0]
            assert time.monotonic() < deadline, "the child never reached the kill point"
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL

    survivor = tr.load_checkpoint(checkpoint)  # intact: the one from the end of epoch 2
    assert survivor["epoch"] == 2 and survivor["history"]["epoch"] == [1, 2]

    resumed, resumed_history = run_training(checkpoint)
    assert resumed_history["epoch"] == [1, 2, 3, 4, 5]
    for name, tensor in reference.items():
        assert torch.equal(resumed[name], tensor), name
    for key in ("train_loss", "lr"):
        assert resumed_history[key] == reference_history[key]


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = nn.Linear(3, 2)
    path = tr.save_checkpoint(tmp_path / "c.pt", model, epoch=1)
    before = path.read_bytes()

    def crash_halfway(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crash_halfway)
    with pytest.raises(KeyboardInterrupt):
        tr.save_checkpoint(path, nn.Linear(3, 2), epoch=2)
    assert path.read_bytes() == before
    assert tr.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # the temporary file is gone


def test_a_checkpoint_is_written_to_a_temporary_file_then_renamed(tmp_path, monkeypatch):
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(
        os,
        "replace",
        lambda src, dst: renames.append((Path(src), Path(dst))) or real_replace(src, dst),
    )
    path = tr.save_checkpoint(tmp_path / "c.pt", nn.Linear(3, 2))
    assert len(renames) == 1
    src, dst = renames[0]
    assert dst == path and src.parent == path.parent and src.name.endswith(".tmp")
