"""Time one forward pass of three BERT encoders of all-MiniLM-L6-v2's size (6 layers, hidden size
384, 12 heads) at a few sequence lengths: ours with the attention written out (chapter 09),
ours with PyTorch's fused ``F.scaled_dot_product_attention``, and ``transformers.BertModel``.
The weights are random (speed does not depend on them) and no network is needed.

    python benchmarks/bench_attention.py                 # batch 8, lengths 32 128 512
    python benchmarks/bench_attention.py --lengths 64 256 --batch 4 --repeats 5

Prints a Markdown table: milliseconds per forward (median of the repeats, after a warm-up)
and the memory one layer's attention weights take (batch x heads x length^2 x 4 bytes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

from helpers.transformer import (  # noqa: E402
    BertEncoder,
    bert_config_from_hf,
    load_bert_weights,
    use_sdpa,
)

MINILM = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=6,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
)


def time_forward(
    model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, repeats: int
) -> float:
    """Median milliseconds of ``model(ids, mask)`` without gradients, after one warm-up call."""
    times = []
    with torch.inference_mode():
        model(ids, mask)
        for _ in range(repeats):
            start = time.perf_counter()
            model(ids, mask)
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    reference = BertModel(BertConfig(**MINILM), add_pooling_layer=True).eval()
    ours = BertEncoder(bert_config_from_hf(reference.config))
    ours = load_bert_weights(ours, reference.state_dict()).eval()
    fused = BertEncoder(ours.config)
    fused.load_state_dict(ours.state_dict())
    fused = use_sdpa(fused.eval())
    models = {"ours (written out)": ours, "ours + F.sdpa": fused, "BertModel": reference}

    heads = MINILM["num_attention_heads"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print("| length | " + " | ".join(f"{n} ms" for n in models) + " | attention weights/layer |")
    print("|---:|" + "---:|" * (len(models) + 1))
    for length in args.lengths:
        ids = torch.randint(1000, 30000, (args.batch, length))
        mask = torch.ones_like(ids)
        ms = [time_forward(m, ids, mask, args.repeats) for m in models.values()]
        mib = args.batch * heads * length**2 * 4 / 2**20
        print(f"| {length} | " + " | ".join(f"{t:.1f}" for t in ms) + f" | {mib:.1f} MiB |")


if __name__ == "__main__":
    main()
