"""Fine-tune a pretrained BERT-family encoder into a sentiment classifier and save it.

The same fine-tune as notebook 06, from the command line::

    python scripts/finetune_sentiment.py --output-dir artifacts/sentiment-model
    python scripts/finetune_sentiment.py --output-dir /tmp/tiny --limit 32 --epochs 1 \
        --max-length 32
    python scripts/finetune_sentiment.py --output-dir artifacts/lora3 --classes 3 --lora-rank 8
    torchrun --nproc_per_node 2 scripts/finetune_sentiment.py --output-dir artifacts/ddp-model

``--mode auto`` (the default) takes the full path (bert-base-uncased on SST-2, mixed precision)
when a CUDA GPU and the Hugging Face Hub are reachable, and the offline path (the
all-MiniLM-L6-v2 encoder on the course's review corpus) otherwise. ``--model`` replaces the
path's model (a folder or a Hub name). The output folder is a Hugging Face model folder (model,
tokenizer, ``id2label = {0: "negative", 1: "positive"}``) that ``from_pretrained`` and
``helpers.bert.predict_sentiment`` load; tensorboardX logs go to ``<output-dir>/logs``
unless ``--log-dir`` says otherwise.

``--classes 3`` fine-tunes on the three-class view of the course corpus (negative, positive,
neutral; offline path only), and the F1 reported is then the macro average over the classes.
``--lora-rank R`` trains LoRA adapters of rank ``R`` on the attention's four projections
(query, key, value, output: ``helpers.lora.BERT_ATTENTION``) plus the classification head and
the pooler under it, instead of every weight (notebook 10 reads the mean of the tokens instead
and adapts the feed-forward layers too, which scores a few points higher but cannot be saved as
a ``from_pretrained`` folder); its default learning rate is then 3e-3 for all of them, and
the folder holds the merged model (a plain ``from_pretrained`` folder) and the adapter alone
(``adapter.safetensors``, for ``helpers.lora.load_adapter``).

Standard output is ONE line of JSON with the final metrics (test accuracy and F1, training
samples per second, wall seconds, peak memory); messages go to standard error.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import sklearn.metrics  # noqa: F401  (fit's metrics use it: import it before the timer starts)
import torch
from torch.nn.parallel import DistributedDataParallel

from helpers.bert import (
    choose_setup,
    load_model_and_tokenizer,
    load_splits,
    make_optimizer,
    make_scheduler,
    make_sentiment_loaders,
)
from helpers.device import seed_everything
from helpers.lora import BERT_ATTENTION, add_lora, merge_lora, save_adapter
from helpers.tb import TensorBoardCallback, create_writer
from helpers.train import (
    cleanup_distributed,
    evaluate,
    fit,
    is_main_process,
    is_quiet,
    setup_distributed,
)

#: LoRA's defaults here: the attention's four projections, and a learning rate far above the full
#: fine-tune's (few weights, B starting from zero, need larger steps): 3e-3 beat 1e-3 and 6e-3 on
#: the three-class validation split (benchmarks/bench_lora.py uses the same).
LORA_TARGETS = BERT_ATTENTION
LORA_ALSO_TRAIN = ("classifier", "pooler")  # the new head, and the dense layer under it
LORA_LR = 3e-3


class _TimedLoader:
    """Wraps a loader and adds up the seconds spent going through it, so that the time of
    the validation passes can be taken out of the training throughput."""

    def __init__(self, loader: Iterable) -> None:
        self.loader, self.seconds = loader, 0.0

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        start = time.perf_counter()
        yield from self.loader
        self.seconds += time.perf_counter() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output-dir",
        required=True,
        type=Path,
        help="folder for the fine-tuned model and tokenizer (created if needed)",
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "offline", "full"),
        default="auto",
        help="auto: full path when a CUDA GPU and the Hub are reachable (default)",
    )
    parser.add_argument(
        "--model", default=None, help="model folder or Hub name (default: the chosen path's model)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: the path's (offline 4, full 2)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="per process (default 32)")
    parser.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="tokens per text, [CLS] and [SEP] included (offline default 96)",
    )
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (offline 1e-4)")
    parser.add_argument(
        "--head-lr-scale",
        type=float,
        default=None,
        help="learning-rate multiplier of the head and pooler (offline 10)",
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="label smoothing of the cross-entropy loss (offline 0.1)",
    )
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--classes",
        type=int,
        choices=(2, 3),
        default=2,
        help="2: negative/positive; 3: also neutral (the course corpus's three-class view)",
    )
    parser.add_argument(
        "--lora-rank",
        type=int,
        default=None,
        help="train LoRA adapters of this rank on query and value (and the head) instead of "
        "every weight",
    )
    parser.add_argument(
        "--lora-alpha", type=float, default=None, help="LoRA's alpha (default 2 x rank)"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N texts of every split (tiny test runs)",
    )
    parser.add_argument(
        "--no-bucketing",
        action="store_true",
        help="random batches (still padded per batch) instead of length buckets",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="tensorboardX folder (default: <output-dir>/logs)",
    )
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "max_length", "limit", "lora_rank"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.max_length is not None and args.max_length < 8:
        parser.error(f"--max-length must be >= 8 tokens, got {args.max_length}")
    if args.lr is not None and args.lr <= 0:
        parser.error(f"--lr must be > 0, got {args.lr}")
    if args.head_lr_scale is not None and args.head_lr_scale <= 0:
        parser.error(f"--head-lr-scale must be > 0, got {args.head_lr_scale}")
    if args.label_smoothing is not None and not 0 <= args.label_smoothing < 1:
        parser.error(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if not 0 <= args.warmup_ratio < 1:
        parser.error(f"--warmup-ratio must be in [0, 1), got {args.warmup_ratio}")
    if args.lora_alpha is not None and (args.lora_rank is None or args.lora_alpha <= 0):
        parser.error("--lora-alpha needs --lora-rank and must be > 0")
    if args.classes == 3 and args.mode == "full":
        parser.error("--classes 3 needs the course corpus: use --mode offline (or auto)")
    return args


def _say(message: str) -> None:
    if is_main_process() and not is_quiet():
        print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    start = time.perf_counter()
    rank, world_size, device = setup_distributed()
    seed_everything(args.seed)
    setup = choose_setup(args.mode, device=device)
    _say(f"{setup.path} path ({setup.reason}) on {device}")
    model_name = args.model or setup.model_name
    epochs = args.epochs or setup.epochs
    batch_size = args.batch_size or setup.batch_size
    max_length = args.max_length or setup.max_length
    lora = args.lora_rank is not None
    lr = args.lr or (LORA_LR if lora else setup.lr)
    default_scale = 1.0 if lora else setup.head_lr_scale
    head_lr_scale = args.head_lr_scale if args.head_lr_scale is not None else default_scale
    smoothing = args.label_smoothing if args.label_smoothing is not None else setup.label_smoothing

    model, tokenizer, _ = load_model_and_tokenizer(model_name, num_labels=args.classes)
    if lora:
        alpha = args.lora_alpha or 2.0 * args.lora_rank
        add_lora(model, LORA_TARGETS, r=args.lora_rank, alpha=alpha, also_train=LORA_ALSO_TRAIN)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frames = load_splits(setup.dataset, limit=args.limit, classes=args.classes)
    loaders = make_sentiment_loaders(
        tokenizer,
        frames,
        batch_size=batch_size,
        max_length=max_length,
        bucketing=not args.no_bucketing,
        seed=args.seed,
        num_replicas=world_size,
        rank=rank,
    )
    model.to(device)
    train_model = model
    if world_size > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=device_ids)
    optimizer = make_optimizer(
        model, lr=lr, weight_decay=args.weight_decay, head_lr_scale=head_lr_scale
    )
    scheduler = make_scheduler(optimizer, epochs * len(loaders["train"]), args.warmup_ratio)
    writer = None
    if is_main_process():  # runs/<experiment>/<run> layout of helpers.tb, under the log folder
        writer = create_writer("finetune_sentiment", root=args.log_dir or args.output_dir / "logs")
    validation = _TimedLoader(loaders["validation"])
    _say(
        f"fine-tuning {args.model or setup.model_title} on {len(frames['train'])} texts for "
        f"{epochs} epoch(s), batch {batch_size} x {world_size} process(es)"
    )
    fit_start = time.perf_counter()
    history = fit(
        train_model,
        loaders["train"],
        validation,
        epochs=epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        scheduler_step="batch",
        amp=setup.amp,
        metrics=("accuracy", "f1"),
        loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=smoothing),
        callbacks=[TensorBoardCallback(writer)] if writer is not None else [],
    )
    train_seconds = time.perf_counter() - fit_start - validation.seconds
    test = evaluate(
        model, loaders["test"], metrics=("accuracy", "f1"), amp=setup.amp, name="test_loader"
    )
    if writer is not None:
        writer.add_scalar("accuracy/test", test["accuracy"], epochs)
        writer.close()
    if is_main_process():
        args.output_dir.mkdir(parents=True, exist_ok=True)
        if lora:
            save_adapter(model, args.output_dir / "adapter.safetensors")
            merge_lora(model)
        model.save_pretrained(args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    n_train = len(frames["train"])
    result = {
        "path": setup.path,
        "model": setup.model_title if args.model is None else model_name,
        "dataset": setup.dataset,
        "device": device.type,
        "world_size": world_size,
        "epochs": epochs,
        "classes": args.classes,
        "lora_rank": args.lora_rank,
        "trainable_parameters": trainable,
        "train_samples": n_train,
        "test_samples": len(frames["test"]),
        "val_accuracy": round(history["val_accuracy"][-1], 4),
        "val_f1": round(history["val_f1"][-1], 4),
        "test_accuracy": round(test["accuracy"], 4),
        "test_f1": round(test["f1"], 4),
        "train_samples_per_second": round(n_train * epochs / train_seconds, 2),
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - start, 2),
        "peak_memory_mb": round(peak, 1),
        "peak_memory_kind": "cuda_max_allocated" if device.type == "cuda" else "process_max_rss",
        "output_dir": str(args.output_dir),
    }
    if is_main_process():
        print(json.dumps(result), flush=True)
    cleanup_distributed()
    return result


if __name__ == "__main__":
    main()
