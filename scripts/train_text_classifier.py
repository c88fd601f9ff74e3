"""Train the course's from-scratch text classifier on the review corpus, from the command line.

One process, or several with torchrun (DistributedDataParallel; gloo on the CPU, NCCL on GPUs)::

    python scripts/train_text_classifier.py --epochs 5 --output-dir outputs/text_classifier
    torchrun --nproc_per_node 2 scripts/train_text_classifier.py --epochs 5

The model is the one written by hand in notebook 04: token embeddings, averaged over the real
(non-padding) tokens, then a linear layer. The vocabulary is built from the training split
only. The output folder receives ``checkpoint.pt`` (written atomically after every epoch;
``--resume`` continues from it), ``vocab.json`` and ``metrics.json`` (history and test
scores). Only rank 0 prints, logs and writes files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from helpers.data import (
    SENTIMENT_LABELS,
    TextClassificationDataset,
    build_vocab,
    load_sentiment_split,
    pad_collate,
)
from helpers.device import make_generator, seed_everything
from helpers.tb import TensorBoardCallback
from helpers.train import (
    cleanup_distributed,
    distributed_loader,
    evaluate,
    fit,
    is_main_process,
    setup_distributed,
)


class MeanPoolClassifier(nn.Module):
    """Embed every token, average the embeddings of the real tokens (``attention_mask`` = 1),
    and score the classes with one linear layer."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        num_classes: int = 2,
        dropout: float = 0.2,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        embedded = self.embedding(input_ids)  # (B, L, D)
        mask = attention_mask.unsqueeze(-1).to(embedded.dtype)  # (B, L, 1)
        pooled = (embedded * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))  # (B, classes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="total number of epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size per process")
    parser.add_argument("--lr", type=float, default=5e-3, help="AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--min-freq", type=int, default=2, help="keep words seen this often")
    parser.add_argument("--max-length", type=int, default=256, help="tokens kept per review")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N reviews of every split (quick runs, tests)",
    )
    parser.add_argument("--amp", choices=["off", "auto", "bf16", "fp16"], default="off")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/text_classifier"))
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUTPUT_DIR/checkpoint.pt when it exists",
    )
    parser.add_argument(
        "--tensorboard", action="store_true", help="log to OUTPUT_DIR/runs with tensorboardX"
    )
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "embed_dim", "min_freq", "max_length"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.limit is not None and args.limit < 2:
        parser.error("--limit must be >= 2 (or left out for the whole corpus)")
    return args


def load_split(split: str, limit: int | None):
    frame = load_sentiment_split(split)
    return frame if limit is None else frame.head(limit)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rank, world_size, device = setup_distributed()
    main_process = is_main_process()
    say = print if main_process else (lambda *a, **k: None)
    seed_everything(args.seed)

    train_df, val_df, test_df = (load_split(s, args.limit) for s in ("train", "validation", "test"))
    vocab = build_vocab(train_df.text, min_freq=args.min_freq)  # from the training split only
    datasets = [
        TextClassificationDataset(df.text, df.label, vocab.encode, max_length=args.max_length)
        for df in (train_df, val_df, test_df)
    ]
    train_loader = distributed_loader(
        DataLoader(
            datasets[0],
            batch_size=args.batch_size,
            shuffle=True,
            collate_fn=pad_collate,
            generator=make_generator(args.seed),
        ),
        seed=args.seed,
    )
    val_loader, test_loader = (
        distributed_loader(DataLoader(ds, batch_size=args.batch_size, collate_fn=pad_collate))
        for ds in datasets[1:]
    )
    say(
        f"world size {world_size} on {device.type}; {len(datasets[0])} training reviews, "
        f"vocabulary of {len(vocab)} words"
    )

    model = MeanPoolClassifier(
        len(vocab), args.embed_dim, len(SENTIMENT_LABELS), args.dropout, vocab.pad_id
    ).to(device)
    if world_size > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=device_ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=args.epochs * len(train_loader)
    )

    args.output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = args.output_dir / "checkpoint.pt"

    def report(epoch: int, row: dict[str, float], _model: nn.Module) -> None:
        say(
            f"epoch {epoch}/{args.epochs}  train_loss {row['train_loss']:.4f}  "
            f"val_loss {row['val_loss']:.4f}  val_accuracy {row['val_accuracy']:.3f}",
            flush=True,
        )

    callbacks: list = [report]
    writer = None
    if args.tensorboard and main_process:
        from tensorboardX import SummaryWriter

        writer = SummaryWriter(str(args.output_dir / "runs"))
        callbacks.append(TensorBoardCallback(writer))

    amp = {"off": False, "auto": True}.get(args.amp, args.amp)
    resume = checkpoint if args.resume and checkpoint.exists() else None
    history = fit(
        model,
        train_loader,
        val_loader,
        epochs=args.epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_step="batch",
        metrics=("accuracy", "f1"),
        amp=amp,
        grad_clip=1.0,
        checkpoint_path=checkpoint,
        resume=resume,
        callbacks=callbacks,
    )
    test = evaluate(model, test_loader, metrics=("accuracy", "f1"), name="test_loader")
    say(
        f"test_loss {test['loss']:.4f}  test_accuracy {test['accuracy']:.3f}  "
        f"test_f1 {test['f1']:.3f}"
    )

    if main_process:
        (args.output_dir / "vocab.json").write_text(json.dumps(vocab.itos))
        summary = {
            "history": history,
            "test": test,
            "world_size": world_size,
            "args": {k: str(v) for k, v in vars(args).items()},
        }
        (args.output_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        say(f"wrote {checkpoint}, vocab.json and metrics.json")
        if writer is not None:
            writer.close()
    cleanup_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
