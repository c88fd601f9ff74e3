"""Fine-tuning speed, memory and accuracy: the course's recipe against the Hugging Face Trainer.

    python benchmarks/bench_finetune.py          # 1 epoch, whole corpus, 3 alternating rounds
    python benchmarks/bench_finetune.py --quick  # 1 epoch on 512 texts per split, 1 round
    python benchmarks/bench_finetune.py --epochs 4 --repeats 1   # notebook 06's full fine-tune

The same model (the offline all-MiniLM-L6-v2 encoder), batch size, maximum length, epochs and
learning rate are fine-tuned four ways, each in a fresh process (so that the peak memory of one
does not hide another's):

- ``script``: ``scripts/finetune_sentiment.py``, the recipe that ships (and that notebook 06
  runs): length bucketing + dynamic padding, ``helpers.train.fit``, the offline path's head
  learning rate x10 and label smoothing 0.1. The benchmark reads its JSON line, so it measures
  exactly the script, not a copy of it;
- ``script-random``: the same script with ``--no-bucketing`` (random batches, still padded per
  batch), to show how much the bucketing is worth;
- ``trainer``: the Hugging Face ``Trainer``'s defaults (``DataCollatorWithPadding``, random
  batches, its default optimiser), as in the Hugging Face course;
- ``trainer-grouped``: the Trainer with ``train_sampling_strategy="group_by_length"``, the best a
  Trainer user would pick instead.

Training samples per second count the training steps only (no validation, no tokenisation,
no model loading) in every variant. The rounds alternate the variants (script, script-random,
trainer, trainer-grouped, script, ...), so that all of them meet the same machine state, and
the table shows each variant's median over the rounds. Targets: the script at least 2x the
default Trainer and at least 1.0x the length-grouped Trainer. Peak memory is the process's
peak resident set size on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU.

Accuracy is measured on the 385 validation reviews (the test split is for the chosen model,
once): one review is 0.26 points of accuracy and the seed alone moves a run by
about a point: the accuracy column shows that the variants learn, not which one is better.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "finetune_sentiment.py"
VARIANTS = {
    "script": "finetune_sentiment.py (bucketing)",
    "script-random": "finetune_sentiment.py --no-bucketing",
    "trainer": "HF Trainer, defaults",
    "trainer-grouped": "HF Trainer, group_by_length",
}
TARGETS = {"trainer": 2.0, "trainer-grouped": 1.0}


def run_trainer(args: argparse.Namespace, grouped: bool) -> dict[str, Any]:
    """One fine-tune with the Hugging Face Trainer in this process; returns its measurements."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    from helpers.bert import choose_setup, load_model_and_tokenizer, load_splits
    from helpers.device import choose_amp, seed_everything

    setup = choose_setup("offline")
    seed_everything(args.seed)
    model, tokenizer, _ = load_model_and_tokenizer(setup.model_name)
    frames = load_splits("course", limit=args.limit)

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch["text"], truncation=True, max_length=args.max_length)

    data = {
        split: Dataset.from_pandas(frame).map(tokenize, batched=True, remove_columns=["text"])
        for split, frame in frames.items()
    }
    sampling = {"train_sampling_strategy": "group_by_length"} if grouped else {}
    dtype, _ = choose_amp(setup.amp, setup.device)  # the precision the script uses, too
    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64,
            num_train_epochs=args.epochs,
            learning_rate=args.lr,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=args.seed,
            bf16=dtype == torch.bfloat16,
            fp16=dtype == torch.float16,
            **sampling,
        )
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=data["train"],
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - start
        output = trainer.predict(data["validation"])
    device = trainer.args.device
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    n_train = len(frames["train"])
    return {
        "val_accuracy": float(np.mean(output.predictions.argmax(-1) == output.label_ids)),
        "train_samples_per_second": n_train * args.epochs / train_seconds,
        "train_samples": n_train,
        "peak_memory_mb": peak,
        "device": device.type,
    }


def run_script(args: argparse.Namespace, bucketing: bool, env: dict[str, str]) -> dict[str, Any]:
    """One run of scripts/finetune_sentiment.py in a child process; its JSON line."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(SCRIPT), "--mode", "offline", "--output-dir", out]
        cmd += _passthrough(args)
        cmd += [] if bucketing else ["--no-bucketing"]
        return _json_line(subprocess.run(cmd, env=env, capture_output=True, text=True), "script")


def _json_line(done: subprocess.CompletedProcess, what: str) -> dict[str, Any]:
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        raise SystemExit(
            f"The {what} run failed (exit code {done.returncode}); its error is above."
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_variant(variant: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """One run of ``variant``, each in a fresh process; the measurements as a dict."""
    if variant.startswith("script"):
        row = run_script(args, bucketing=variant == "script", env=env)
    else:
        cmd = [sys.executable, __file__, "--child", variant, *_passthrough(args)]
        row = _json_line(subprocess.run(cmd, env=env, capture_output=True, text=True), variant)
    return {
        "variant": variant,
        "seed": args.seed,
        **{
            k: row[k]
            for k in (
                "val_accuracy",
                "train_samples_per_second",
                "train_samples",
                "peak_memory_mb",
                "device",
            )
        },
    }


def _passthrough(args: argparse.Namespace) -> list[str]:
    out = [
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--max-length",
        str(args.max_length),
        "--lr",
        str(args.lr),
        "--seed",
        str(args.seed),
    ]
    return out + (["--limit", str(args.limit)] if args.limit else [])


def print_table(rows: list[dict[str, Any]], args: argparse.Namespace) -> bool:
    """The table of medians and the verdict on the targets; True when every target is met."""
    variants = [v for v in VARIANTS if v in args.variants]
    runs = {v: [r for r in rows if r["variant"] == v] for v in variants}
    speed = {v: statistics.median(r["train_samples_per_second"] for r in runs[v]) for v in variants}
    head = (
        f"{'recipe':<38} {'train samples/s (median)':>24} {'all runs':>24} "
        f"{'script is':>9} {'val acc (mean, range)':>24} {'peak MB':>8}"
    )
    print(head)
    print("-" * len(head))
    for variant in variants:
        all_runs = " ".join(f"{r['train_samples_per_second']:.1f}" for r in runs[variant])
        accuracy = [r["val_accuracy"] for r in runs[variant]]
        spread = f"{statistics.mean(accuracy):.3f} ({min(accuracy):.3f}-{max(accuracy):.3f})"
        ratio = f"{speed['script'] / speed[variant]:.2f}x" if "script" in speed else "-"
        print(
            f"{VARIANTS[variant]:<38} {speed[variant]:>24.1f} {all_runs:>24} {ratio:>9} "
            f"{spread:>24} {max(r['peak_memory_mb'] for r in runs[variant]):>8.0f}"
        )
    first = rows[0]
    print(
        f"\n{first['train_samples']} training texts x {args.epochs} epoch(s), batch "
        f"{args.batch_size}, max length {args.max_length}, on {first['device']} "
        f"({os.cpu_count()} CPUs); {args.repeats} alternating round(s), seeds {args.seeds}."
    )
    ok = True
    for reference, target in TARGETS.items():
        if "script" not in speed or reference not in speed:
            continue
        ratio = speed["script"] / speed[reference]
        ok &= ratio >= target
        verdict = "PASS" if ratio >= target else "FAIL"
        print(f"{verdict}  script >= {target:.1f}x {VARIANTS[reference]}: {ratio:.2f}x")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="512 texts per split, 1 round")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--limit", type=int, default=None, help="texts per split (default: all; 512 with --quick)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="alternating rounds (default 3; 1 with --quick)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)  # a child's seed
    parser.add_argument("--seeds", type=int, nargs="+", default=[42], help="one run per seed")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=tuple(VARIANTS),
        default=list(VARIANTS),
        help="which recipes to run (default: all four; the targets need script and a Trainer)",
    )
    parser.add_argument("--child", choices=("trainer", "trainer-grouped"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help="also save the rows as JSON here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    args.limit = args.limit or (512 if args.quick else None)
    args.repeats = args.repeats or (1 if args.quick else 3)
    if args.epochs < 1 or args.repeats < 1 or (args.limit is not None and args.limit < 32):
        parser.error("--epochs and --repeats must be >= 1, --limit >= 32")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}; give each seed once.")

    if args.child:  # a child process: one Trainer fine-tune, one JSON line
        print(json.dumps(run_trainer(args, grouped=args.child == "trainer-grouped")), flush=True)
        return 0

    env = {**os.environ, "COURSE_QUIET": "1", "HF_HUB_OFFLINE": "1"}
    rows = []
    for round_ in range(1, args.repeats + 1):
        for variant, seed in [(v, seed) for seed in args.seeds for v in args.variants]:
            print(
                f"round {round_}/{args.repeats}: {variant}, seed {seed} ...",
                file=sys.stderr,
                flush=True,
            )
            rows.append(
                run_variant(variant, argparse.Namespace(**{**vars(args), "seed": seed}), env)
            )
    ok = print_table(rows, args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
