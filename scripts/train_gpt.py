"""Train the small GPT of notebook 11 on the review corpus, and sample reviews from it, from the
command line::

    python scripts/train_gpt.py train --output-dir outputs/gpt --epochs 3
    python scripts/train_gpt.py sample --model-dir outputs/gpt --label positive -n 3

``train`` learns a byte-level BPE tokenizer on the training split of the three-class corpus,
packs every review as ``<label> text <|endoftext|>`` into one stream, cuts it into windows of
``--context`` tokens and trains with AdamW, linear warm-up and cosine decay. The output folder
receives ``tokenizer.json``, ``model.pt`` (the configuration and weights, written atomically)
and ``metrics.json`` (history, validation perplexity and the unigram model's); the last line
printed is the metrics as JSON. ``sample`` prints reviews generated for a label (greedy with
``--temperature 0``; ``--no-cache`` generates without the key/value cache; ``--guidance 8``
steers every token towards the label with classifier-free guidance, as notebook 11 does).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from helpers.bpe import BPETokenizer
from helpers.data import SENTIMENT_LABELS_3, load_sentiment_corpus
from helpers.device import get_device, make_generator, seed_everything
from helpers.gpt import (
    GPT,
    generate,
    generate_guided,
    gpt_config,
    lm_loss,
    lm_windows,
    pack_stream,
)
from helpers.train import fit
from helpers.transformer import TransformerConfig, use_sdpa

END = "<|endoftext|>"
LABEL_TOKENS = [f"<{name}>" for name in SENTIMENT_LABELS_3]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a tokenizer and a GPT, save both")
    t.add_argument("--output-dir", required=True)
    t.add_argument("--vocab-size", type=int, default=2048)
    t.add_argument("--context", type=int, default=128)
    t.add_argument("--d-model", type=int, default=128)
    t.add_argument("--heads", type=int, default=4)
    t.add_argument("--layers", type=int, default=4)
    t.add_argument("--dropout", type=float, default=0.0)
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--limit", type=int, default=None, help="use only the first N reviews per split")
    t.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("sample", help="generate reviews with a trained model")
    s.add_argument("--model-dir", required=True)
    s.add_argument("--label", choices=SENTIMENT_LABELS_3, default="positive")
    s.add_argument("-n", type=int, default=3, help="how many reviews")
    s.add_argument("--max-new-tokens", type=int, default=80)
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--top-k", type=int, default=50)
    s.add_argument("--top-p", type=float, default=None)
    s.add_argument("--no-cache", action="store_true")
    s.add_argument(
        "--guidance",
        type=float,
        default=0.0,
        help="classifier-free guidance weight towards the label (notebook 11 uses 8)",
    )
    s.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def unigram_loss(train_ids: list[int], val_ids: list[int], vocab_size: int) -> float:
    """Cross-entropy on ``val_ids`` of token frequencies counted on ``train_ids`` (add-one)."""
    counts = Counter(train_ids)
    total = len(train_ids) + vocab_size
    return -sum(math.log((counts[i] + 1) / total) for i in val_ids[1:]) / (len(val_ids) - 1)


def save_model(model: GPT, path: Path) -> None:
    """Configuration and weights in one file, written to a temporary file and renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save({"config": dataclasses.asdict(model.config), "state_dict": model.state_dict()}, tmp)
    os.replace(tmp, path)


def load_model(path: Path) -> GPT:
    """The model saved by :func:`save_model` (``weights_only``: no code is unpickled)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT(TransformerConfig(**saved["config"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def train(args: argparse.Namespace) -> dict:
    seed_everything(args.seed)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = load_sentiment_corpus(classes=3)
    if args.limit:
        corpus = {k: df.head(args.limit) for k, df in corpus.items()}
    tokenizer = BPETokenizer.train(corpus["train"].text, args.vocab_size, [END, *LABEL_TOKENS])
    tokenizer.save(out / "tokenizer.json")
    streams = {
        split: pack_stream(
            tokenizer.encode, list(df.text), [LABEL_TOKENS[i] for i in df.label], END
        )
        for split, df in corpus.items()
    }
    x, y = lm_windows(streams["train"], args.context)
    xv, yv = lm_windows(streams["validation"], args.context)
    train_loader = DataLoader(
        TensorDataset(x, y), batch_size=args.batch_size, shuffle=True,
        generator=make_generator(args.seed),
    )  # fmt: skip
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=64)
    device = get_device()
    config = gpt_config(
        tokenizer.vocab_size, args.context, args.d_model, args.heads, args.layers,
        dropout=args.dropout,
    )  # fmt: skip
    model = use_sdpa(GPT(config)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95),
                                  weight_decay=0.1)  # fmt: skip
    total = args.epochs * len(train_loader)
    warmup = max(1, total // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))),
    )
    started = time.perf_counter()
    history = fit(model, train_loader, val_loader, epochs=args.epochs, optimizer=optimizer,
                  loss_fn=lm_loss, metrics=(), scheduler=scheduler, scheduler_step="batch",
                  grad_clip=1.0)  # fmt: skip
    save_model(model.cpu(), out / "model.pt")
    uni = unigram_loss(streams["train"], streams["validation"], tokenizer.vocab_size)
    metrics = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_tokens": len(streams["train"]),
        "val_loss": history["val_loss"][-1],
        "val_perplexity": math.exp(history["val_loss"][-1]),
        "unigram_perplexity": math.exp(uni),
        "uniform_perplexity": tokenizer.vocab_size,
        "seconds": round(time.perf_counter() - started, 1),
        "history": history,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def sample(args: argparse.Namespace) -> list[str]:
    folder = Path(args.model_dir)
    if not (folder / "model.pt").exists():
        raise SystemExit(f"{folder} has no model.pt: run `train --output-dir {folder}` first.")
    tokenizer = BPETokenizer.load(folder / "tokenizer.json")
    model = load_model(folder / "model.pt")
    eos_id, generator = tokenizer.special_tokens[END], make_generator(args.seed)
    if args.guidance:
        prompts = torch.tensor([tokenizer.encode(token) for token in LABEL_TOKENS])
        ids = generate_guided(
            model, prompts, SENTIMENT_LABELS_3.index(args.label), args.n, args.max_new_tokens,
            weight=args.guidance, temperature=args.temperature, top_k=args.top_k,
            top_p=args.top_p, eos_id=eos_id, generator=generator,
        )  # fmt: skip
    else:
        prompt = torch.tensor([tokenizer.encode(f"<{args.label}>")] * args.n)
        ids = generate(
            model, prompt, args.max_new_tokens, use_cache=not args.no_cache,
            temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
            eos_id=eos_id, generator=generator,
        )  # fmt: skip
    texts = [tokenizer.decode(row[1:].tolist()).split(END)[0].strip() for row in ids]
    for text in texts:
        print(text)
    return texts


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "train":
        metrics = train(args)
        print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))
    else:
        sample(args)


if __name__ == "__main__":
    main(sys.argv[1:])
