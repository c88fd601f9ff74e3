"""helpers.device: device choice, seeding and the environment report."""

import random

import numpy as np
import pytest
import torch

from helpers import device as dev


def test_get_device_returns_a_device_this_machine_has():
    d = dev.get_device()
    assert isinstance(d, torch.device)
    torch.zeros(1, device=d)  # a device we can really allocate on


def test_cpu_can_always_be_forced(monkeypatch):
    monkeypatch.delenv(dev.DEVICE_ENV_VAR, raising=False)
    assert dev.get_device("cpu") == torch.device("cpu")


def test_environment_variable_overrides_the_choice(monkeypatch):
    monkeypatch.setenv(dev.DEVICE_ENV_VAR, "cpu")
    assert dev.get_device() == torch.device("cpu")


def test_accelerators_are_preferred_over_cpu(monkeypatch):
    monkeypatch.delenv(dev.DEVICE_ENV_VAR, raising=False)
    monkeypatch.setattr(dev, "_accelerator_type", lambda: "cuda")
    assert dev.get_device().type == "cuda"
    monkeypatch.setattr(dev, "_accelerator_type", lambda: None)
    assert dev.get_device().type == "cpu"


def test_asking_for_a_missing_device_says_what_exists(monkeypatch):
    monkeypatch.setattr(dev, "_accelerator_type", lambda: None)
    with pytest.raises(RuntimeError, match="only has: cpu"):
        dev.get_device("cuda")
    with pytest.raises(ValueError, match="Unknown device"):
        dev.get_device("tpu")


def test_seed_everything_repeats_python_numpy_and_torch():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    dev.seed_everything(123)
    first = draw()
    dev.seed_everything(123)
    assert draw() == first
    dev.seed_everything(124)
    assert draw() != first


def test_deterministic_mode_is_switched_on_and_off():
    dev.seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    dev.seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled()


def test_bad_seed_is_rejected():
    with pytest.raises(ValueError, match="non-negative int"):
        dev.seed_everything(-1)


def test_make_generator_shuffles_reproducibly():
    a = torch.randperm(10, generator=dev.make_generator(7))
    b = torch.randperm(10, generator=dev.make_generator(7))
    assert torch.equal(a, b)


def test_seed_worker_seeds_numpy_from_torch():
    torch.manual_seed(5)
    dev.seed_worker(0)
    x = np.random.rand()
    torch.manual_seed(5)
    dev.seed_worker(0)
    assert np.random.rand() == x


def test_environment_report_names_versions_and_device():
    report = dev.environment_report()
    assert report["torch"] == torch.__version__
    assert report["device"] in {"cuda", "mps", "xpu", "cpu"}
    assert set(report) >= {"python", "cuda", "device_name", "cpu_threads", "colab"}
    assert report["colab"] == "False"
