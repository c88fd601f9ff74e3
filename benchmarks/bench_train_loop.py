"""How much does ``helpers.train.fit`` cost compared with a minimal hand-written loop?

Both train the same MLP on the same synthetic data with the same seed and the same work per
epoch (training with loss and accuracy, then validation with loss and accuracy).

Speed is measured in one process with the epochs of the two loops interleaved (fit, bare,
bare, fit, ...) after one untimed warm-up epoch each: on a shared, noisy machine a slow
period then slows both loops alike, so the ratio of their median epochs is stable even when
the absolute times are not. (Timing each loop in its own process instead made the ratio swing
between 0.9 and 1.5 from one run to the next on the course's 2-core machine.) Peak memory is
measured in a fresh process per loop, so that neither hides the other's peak: the peak RSS on
the CPU (both import the same libraries), the peak allocated GPU memory on CUDA. Target: fit
costs at most 5 % more time than the bare loop.

    python benchmarks/bench_train_loop.py                       # 10 epochs per loop
    python benchmarks/bench_train_loop.py --rounds 20 --batch-size 128 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

TARGET_OVERHEAD = 0.05


def build(args):
    """The model, optimizer and loaders: identical for both variants (same seed)."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from helpers.device import make_generator

    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    n = args.samples
    x = torch.randn(n, args.features, generator=g)
    teacher = torch.randn(args.features, args.classes, generator=g)
    y = (x @ teacher).argmax(1)
    split = int(0.8 * n)
    train = DataLoader(
        TensorDataset(x[:split], y[:split]),
        batch_size=args.batch_size,
        shuffle=True,
        generator=make_generator(args.seed),
    )
    val = DataLoader(TensorDataset(x[split:], y[split:]), batch_size=256)
    model = nn.Sequential(
        nn.Linear(args.features, args.hidden),
        nn.ReLU(),
        nn.Linear(args.hidden, args.hidden),
        nn.ReLU(),
        nn.Linear(args.hidden, args.classes),
    )
    return model, train, val, split


def bare_loop(model, train, val, optimizer, loss_fn, epochs, device):
    """The loop a careful person writes by hand: loss and accuracy kept on the device and
    read once per epoch, then a validation pass."""
    import torch

    history = []
    for _ in range(epochs):
        model.train()
        total, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
        for x, y in train:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            count += len(y)
        row = {"train_loss": total.item() / count, "train_accuracy": correct.item() / count}
        model.eval()
        total, correct, count = torch.zeros((), device=device), torch.zeros((), device=device), 0
        with torch.inference_mode():
            for x, y in val:
                x, y = x.to(device), y.to(device)
                logits = model(x)
                total += loss_fn(logits, y) * len(y)
                correct += (logits.argmax(1) == y).sum()
                count += len(y)
        row.update(val_loss=total.item() / count, val_accuracy=correct.item() / count)
        history.append(row)
    return history


def _setup(args):
    import sklearn.metrics  # noqa: F401  (fit's metrics need it: import it for both loops)
    import torch
    from torch import nn

    from helpers.device import get_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    model, train, val, n_train = build(args)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return torch, device, model, train, val, n_train, optimizer, nn.CrossEntropyLoss()


def one_epoch(variant, model, train, val, optimizer, loss_fn, device) -> None:
    """One epoch of training and validation, by ``fit`` or by the bare loop."""
    from helpers.train import fit

    if variant == "fit":
        fit(
            model, train, val, epochs=1, optimizer=optimizer, loss_fn=loss_fn, metrics=("accuracy",)
        )
    else:
        bare_loop(model, train, val, optimizer, loss_fn, 1, device)


def time_interleaved(args) -> dict:
    """Speed: both loops in one process, epochs alternating (fit, bare, bare, fit, ...), so
    that both meet the same machine state; the ratio of their medians is robust to the noise
    of a shared machine, which shifts whole periods of time rather than single epochs."""
    torch, device, model, train, val, n_train, optimizer, loss_fn = _setup(args)

    def timed(variant: str) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        one_epoch(variant, model, train, val, optimizer, loss_fn, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    timed("fit"), timed("bare")  # warm-up: first-call costs (allocations, kernels) not measured
    seconds: dict[str, list[float]] = {"fit": [], "bare": []}
    for i in range(args.rounds):
        for variant in ("fit", "bare") if i % 2 == 0 else ("bare", "fit"):
            seconds[variant].append(timed(variant))
    return {
        "seconds": seconds,
        "n_train": n_train,
        "device": device.type,
        "threads": torch.get_num_threads(),
    }


def peak_memory_worker(args) -> None:
    """Memory: a fresh process per loop (so neither hides the other's peak) runs two epochs
    and prints its peak (RSS on the CPU, allocated GPU memory on CUDA) as a JSON line."""
    torch, device, model, train, val, _, optimizer, loss_fn = _setup(args)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        one_epoch(args.worker, model, train, val, optimizer, loss_fn, device)
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"variant": args.worker, "peak_mib": peak_mib}))


def measure_memory(variant: str, argv: list[str]) -> float:
    env = {**os.environ, "COURSE_QUIET": "1"}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", variant, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the {variant} worker failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_mib"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="timed epochs per loop")
    parser.add_argument("--samples", type=int, default=20480)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: the best one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=["fit", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        peak_memory_worker(args)
        return 0

    forwarded = list(argv if argv is not None else sys.argv[1:])
    peaks = {variant: measure_memory(variant, forwarded) for variant in ("bare", "fit")}
    run = time_interleaved(args)
    seconds, n_train = run["seconds"], run["n_train"]
    print(
        f"{args.rounds} interleaved epochs per loop; {n_train} training samples, batch "
        f"{args.batch_size}, MLP {args.features}-{args.hidden}-{args.hidden}-{args.classes}, "
        f"device {run['device']}, {run['threads']} threads"
    )
    memory = "peak GPU MiB" if run["device"] == "cuda" else "peak RSS MiB"
    print(
        f"{'loop':<6} {'samples/s (median epoch)':>25} {'samples/s (fastest epoch)':>26} "
        f"{memory:>13}"
    )
    for variant in ("bare", "fit"):
        print(
            f"{variant:<6} {n_train / statistics.median(seconds[variant]):>25,.0f} "
            f"{n_train / min(seconds[variant]):>26,.0f} {peaks[variant]:>13,.1f}"
        )
    ratio = statistics.median(seconds["fit"]) / statistics.median(seconds["bare"])
    overhead = ratio - 1
    verdict = "within" if overhead <= TARGET_OVERHEAD else "ABOVE"
    print(
        f"\nfit / bare time, median epochs: {ratio:.3f} (overhead {overhead:+.1%}; {verdict} the "
        f"{TARGET_OVERHEAD:.0%} target); fastest epochs: "
        f"{min(seconds['fit']) / min(seconds['bare']):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
