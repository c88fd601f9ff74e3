"""How much faster does a key/value cache make generation? Tokens per second of greedy
generation with ``helpers.gpt.generate``, with and without the cache, for sequences of a few
lengths up to the model's full context.

Without the cache every new token runs the model over the whole sequence so far, so the cost
of a token grows with the length; with it, each step runs the model on one token and attends
over the stored keys and values. The model is the notebook-11 GPT (random weights: speed does
not depend on them), a one-token prompt extended to each length, batch 1 by default (one reader
waiting for one text, where fixed per-step costs weigh most) or ``--batch N`` (many texts at once,
as notebook 11 generates its 450 reviews). The two variants
alternate (cached, uncached, cached, ...) and the median of ``--repeats`` runs is reported, so
that a noisy, shared machine slows both alike. Target: at least 3x the tokens/s at the full
context.

    python benchmarks/bench_kv_cache.py                          # lengths 32, 64, 128
    python benchmarks/bench_kv_cache.py --lengths 16 128 --repeats 5 --json outputs/kv.json
    python benchmarks/bench_kv_cache.py --batch 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from helpers.gpt import GPT, generate, gpt_config
from helpers.transformer import use_sdpa

TARGET_SPEEDUP = 3.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1, help="sequences generated at once")
    parser.add_argument("--vocab-size", type=int, default=2048)
    parser.add_argument("--context", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    return parser.parse_args(argv)


def tokens_per_second(model: GPT, length: int, use_cache: bool, batch: int = 1) -> float:
    """Greedy generation of ``batch`` sequences from a one-token prompt up to ``length`` tokens;
    new tokens per second, all sequences counted."""
    prompt = torch.zeros(batch, 1, dtype=torch.long)
    started = time.perf_counter()
    out = generate(model, prompt, length - 1, use_cache=use_cache)
    seconds = time.perf_counter() - started
    assert out.shape[1] == length
    return batch * (length - 1) / seconds


def measure(model: GPT, lengths: list[int], repeats: int, batch: int = 1) -> list[dict]:
    """One row per length: median tokens/s cached and uncached, and their ratio."""
    rows = []
    tokens_per_second(model, min(lengths), True, batch)  # warm-up
    tokens_per_second(model, min(lengths), False, batch)
    for length in lengths:
        if length > model.config.max_positions:
            raise SystemExit(f"--lengths {length} exceeds the context {model.config.max_positions}")
        runs: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(repeats):
            for cached in (True, False):
                runs[cached].append(tokens_per_second(model, length, cached, batch))
        cached, uncached = statistics.median(runs[True]), statistics.median(runs[False])
        rows.append(
            {"length": length, "cached_tok_s": cached, "uncached_tok_s": uncached,
             "speedup": cached / uncached}
        )  # fmt: skip
    return rows


def print_table(rows: list[dict], context: int) -> None:
    print(f"{'length':>6}  {'cached tok/s':>12}  {'uncached tok/s':>14}  {'speed-up':>8}")
    for r in rows:
        full = "  (full context)" if r["length"] == context else ""
        print(
            f"{r['length']:>6}  {r['cached_tok_s']:>12.0f}  {r['uncached_tok_s']:>14.0f}  "
            f"{r['speedup']:>7.1f}x{full}"
        )


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = gpt_config(args.vocab_size, args.context, args.d_model, args.heads, args.layers)
    model = use_sdpa(GPT(config)).eval()
    rows = measure(model, args.lengths, args.repeats, args.batch)
    print(f"GPT: {args.layers} layers, d_model {args.d_model}, context {args.context}, "
          f"batch {args.batch}, greedy, {torch.get_num_threads()} thread(s)")  # fmt: skip
    print_table(rows, args.context)
    full = [r for r in rows if r["length"] == args.context]
    if full:
        ok = full[0]["speedup"] >= TARGET_SPEEDUP
        print(f"target: >= {TARGET_SPEEDUP:g}x at the full context: {'met' if ok else 'NOT met'}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
