"""LoRA against full fine-tuning on the three-class review corpus: macro-F1, parameters, memory
and time, over three seeds (notebook 10 quotes this table).

    python benchmarks/bench_lora.py          # the table notebook 10 quotes (~10 min, 2 cores)
    python benchmarks/bench_lora.py --quick  # 1 seed, 300 texts, 1 epoch: does it run?
    python benchmarks/bench_lora.py --train-size 4047 --epochs 3 --max-length 96   # a full run

Every variant fine-tunes the offline all-MiniLM-L6-v2 encoder in chapter 09's code with a new
3-class head on the mean of the token vectors (``helpers.transformer.load_pretrained_classifier``
with ``pooling="mean"``: the pooling this sentence encoder was trained with; ``--pooling pooler``
reads BERT's pooled [CLS] vector instead, and then the pooler trains too) with the same data,
batches, schedule (10 % warm-up, linear decay), label smoothing 0.1 and number of steps:

- ``full``: every weight, AdamW at 1e-4 with the head at 10x (chapter 06's recipe);
- ``lora r=4, 8, 16``: LoRA on every linear layer of the blocks (``--targets``, default the
  attention's ``query key value out`` and the feed-forward's ``up down``), alpha = 2r so that
  every rank has the same scale, plus the new head, AdamW at ``--lora-lr`` (3e-3 by default;
  notebook 10 says how both were chosen on validation).

It is sized for a 2-core CPU: by default the first 1,500 training reviews (of 4,047), reviews cut
at 48 tokens (a quarter of them are longer), 2 epochs, batch 32, evaluated on all 868 validation
reviews (the test split is for the chosen recipe, once, in the notebook). Reported per variant:
macro-F1 and accuracy as mean +- half the range over the seeds, the trainable parameters and their
share of full fine-tuning's, the memory training needs for the parameters (weights + gradients +
AdamW's two states, float32; computed, not measured: activations come on top and are about the
same for every variant here), and the median training seconds. The target: LoRA r=8 within
2 macro-F1 points of full fine-tuning with under 2 % of its trainable parameters.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COURSE_QUIET", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--train-size", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4, help="full fine-tuning's peak LR")
    parser.add_argument("--lora-lr", type=float, default=3e-3, help="LoRA's peak LR")
    every_linear = ["query", "key", "value", "out", "up", "down"]
    parser.add_argument("--targets", nargs="+", default=every_linear, help="LoRA's targets")
    parser.add_argument("--pooling", choices=("mean", "pooler"), default="mean")
    parser.add_argument("--skip-full", action="store_true", help="LoRA only (to compare settings)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 300 texts, 1 epoch")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.train_size, args.epochs = args.seeds[:1], 300, 1
    return args


def run_variant(
    rank: int | None, seed: int, args: argparse.Namespace, frames, tokenizer
) -> dict[str, Any]:
    """One fine-tune (``rank=None``: every weight); its validation scores, size and time."""
    import torch

    from helpers.bert import (
        count_parameters,
        make_optimizer,
        make_scheduler,
        make_sentiment_loaders,
    )
    from helpers.device import seed_everything
    from helpers.lora import add_lora, finetuning_memory
    from helpers.train import evaluate, fit
    from helpers.transformer import load_pretrained_classifier

    seed_everything(seed)
    model = load_pretrained_classifier(3, pooling=args.pooling)
    full_trainable = count_parameters(model)["trainable"]  # every weight the head reads from
    if rank is None:
        optimizer = make_optimizer(model, lr=args.lr, head_lr_scale=10.0)
    else:
        also_train = ("classifier", "pooler") if args.pooling == "pooler" else ("classifier",)
        add_lora(model, tuple(args.targets), r=rank, alpha=2 * rank, also_train=also_train)
        optimizer = make_optimizer(model, lr=args.lora_lr)
    loaders = make_sentiment_loaders(
        tokenizer, frames, batch_size=args.batch_size, max_length=args.max_length, seed=seed
    )
    scheduler = make_scheduler(optimizer, args.epochs * len(loaders["train"]))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    start = time.perf_counter()
    fit(model, loaders["train"], epochs=args.epochs, optimizer=optimizer, scheduler=scheduler,
        scheduler_step="batch", loss_fn=loss_fn)  # fmt: skip
    seconds = time.perf_counter() - start
    val = evaluate(model, loaders["validation"], metrics=("accuracy", "f1_macro"))
    total, trainable = count_parameters(model)["total"], count_parameters(model)["trainable"]
    return {
        "f1": val["f1_macro"],
        "accuracy": val["accuracy"],
        "trainable": trainable,
        "full_trainable": full_trainable,
        "memory_mb": finetuning_memory(total, trainable)["total"] / 2**20,
        "seconds": seconds,
    }


def spread(values: list[float]) -> str:
    """``mean +- half the range``, in points (x100)."""
    mean = 100 * statistics.fmean(values)
    return f"{mean:5.1f} +- {50 * (max(values) - min(values)):.1f}"


def main(argv: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    args = parse_args(argv)
    import torch
    from transformers import AutoTokenizer

    from helpers.bert import load_splits, offline_model_path

    tokenizer = AutoTokenizer.from_pretrained(offline_model_path())

    frames = load_splits("course", classes=3)
    frames["train"] = frames["train"].head(args.train_size).reset_index(drop=True)
    variants: dict[str, int | None] = {} if args.skip_full else {"full fine-tuning": None}
    variants |= {f"LoRA r={r}": r for r in args.ranks}
    print(
        f"three-class validation ({len(frames['validation'])} reviews), {len(frames['train'])} "
        f"training reviews, max_length {args.max_length}, {args.epochs} epoch(s), batch "
        f"{args.batch_size}, seeds {args.seeds}, {torch.get_num_threads()} thread(s); "
        f"lr full {args.lr:g}, LoRA {args.lora_lr:g} on {' '.join(args.targets)}; "
        f"{args.pooling} pooling",
        file=sys.stderr,
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for seed in args.seeds:  # seeds outside, variants inside: every variant meets the same load
        for name, rank in variants.items():
            results[name].append(run_variant(rank, seed, args, frames, tokenizer))
            row = results[name][-1]
            print(f"  seed {seed} {name}: macro-F1 {row['f1']:.3f}, {row['seconds']:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    header = (
        "| variant | macro-F1 | accuracy | trainable params | share of full | "
        "memory (MB) | train s (median) |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    print(header)
    for name, rows in results.items():
        trainable = rows[0]["trainable"]
        print(
            f"| {name} | {spread([r['f1'] for r in rows])} | "
            f"{spread([r['accuracy'] for r in rows])} | {trainable:,} | "
            f"{100 * trainable / rows[0]['full_trainable']:.2f} % | {rows[0]['memory_mb']:.0f} | "
            f"{statistics.median(r['seconds'] for r in rows):.0f} |"
        )
    if "LoRA r=8" in results and "full fine-tuning" in results:
        full = results["full fine-tuning"]
        gap = 100 * (
            statistics.fmean(r["f1"] for r in full)
            - statistics.fmean(r["f1"] for r in results["LoRA r=8"])
        )
        share = results["LoRA r=8"][0]["trainable"] / full[0]["trainable"]
        verdict = "met" if gap <= 2 and share < 0.02 else "NOT met"
        print(
            f"\nLoRA r=8 vs full fine-tuning: {gap:+.1f} macro-F1 points (full minus LoRA, mean "
            f"of {len(full)} seeds), {100 * share:.2f} % of the trainable parameters: target "
            f"(within 2 points, under 2 %) {verdict}."
        )
    return results


if __name__ == "__main__":
    main()
