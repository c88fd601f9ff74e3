"""Multi-head attention written out: separate query, key and value projections, scaled
dot-product attention with padding and causal masks, the output projection, and a key/value
cache for generating one token at a time.

Example::

    attn = MultiHeadAttention(d_model=64, n_heads=4, causal=True)
    y = attn(torch.randn(2, 10, 64), attention_mask=torch.ones(2, 10))          # (2, 10, 64)
    y, w = attn(torch.randn(2, 10, 64), return_weights=True)                    # w: (2, 4, 10, 10)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["KVCache", "MultiHeadAttention", "attention_allowed", "use_sdpa"]


@dataclass
class KVCache:
    """The keys and values one attention layer has already computed, as plain tensors of shape
    ``(batch, heads, positions, head_dim)`` (``None`` while empty). A layer called with a cache
    appends its new keys and values and attends over everything the cache holds, so a causal
    model can generate token by token without recomputing the past. Use one per layer:
    ``caches = KVCache.for_layers(n_layers)``; ``cache.reset()`` empties it."""

    keys: Tensor | None = None
    values: Tensor | None = None

    @property
    def length(self) -> int:
        """How many positions the cache holds (0 when empty)."""
        return 0 if self.keys is None else self.keys.shape[-2]

    def append(self, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """Add new ``keys``/``values`` (``(batch, heads, new, head_dim)``) after the stored ones
        and return all keys and values, old then new."""
        if self.keys is None:
            self.keys, self.values = keys, values
        else:
            self.keys = torch.cat([self.keys, keys], dim=-2)
            self.values = torch.cat([self.values, values], dim=-2)
        return self.keys, self.values

    def reset(self) -> None:
        """Forget everything (start a new sequence)."""
        self.keys = self.values = None

    @classmethod
    def for_layers(cls, n_layers: int) -> list[KVCache]:
        """A list of ``n_layers`` empty caches, one per block of a model."""
        return [cls() for _ in range(n_layers)]


def attention_allowed(
    n_queries: int,
    n_keys: int,
    attention_mask: Tensor | None = None,
    *,
    causal: bool = False,
    offset: int = 0,
    device: torch.device | None = None,
) -> Tensor | None:
    """Which keys each query may look at, as a boolean tensor broadcastable to
    ``(batch, heads, n_queries, n_keys)`` (``True`` = allowed), or ``None`` when everything is.
    ``attention_mask`` is ``(batch, n_keys)`` with 1 for real tokens and 0 for padding (what a
    Hugging Face tokenizer returns); ``causal`` forbids keys after the query, whose position is
    ``offset + i`` when ``offset`` keys come from a cache."""
    allowed = None
    if attention_mask is not None:
        if attention_mask.ndim != 2 or attention_mask.shape[-1] != n_keys:
            raise ValueError(
                f"attention_mask must have shape (batch, {n_keys}) (one entry per key, cached "
                f"ones included: 1 = real token, 0 = padding), got {tuple(attention_mask.shape)}."
            )
        allowed = attention_mask.bool()[:, None, None, :]
    if causal:
        device = device if device is not None else getattr(attention_mask, "device", None)
        q_pos = torch.arange(n_queries, device=device)[:, None] + offset
        k_pos = torch.arange(n_keys, device=device)[None, :]
        later = k_pos <= q_pos  # (n_queries, n_keys)
        allowed = later if allowed is None else allowed & later
    return allowed


class MultiHeadAttention(nn.Module):
    """Multi-head (self-)attention: ``.query``, ``.key`` and ``.value`` project ``x`` to
    ``n_heads`` heads of ``d_model // n_heads`` numbers each, every head takes a softmax-weighted
    average of the values (scores ``q·k / sqrt(head_dim)``, masked), and ``.out`` mixes the
    concatenated heads. The projections are separate ``nn.Linear`` layers so that LoRA can wrap
    them by name. ``forward`` returns ``(batch, seq, d_model)``, or ``(output, weights)`` with the
    softmax weights ``(batch, heads, seq_q, seq_k)`` (before dropout) when ``return_weights``.
    Set ``.use_sdpa = True`` (or :func:`use_sdpa`) to compute the same with PyTorch's fused
    ``F.scaled_dot_product_attention`` when no weights are asked for."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = False,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(
                f"d_model={d_model} is not divisible by n_heads={n_heads}; every head gets "
                "d_model // n_heads numbers, so pick n_heads that divides d_model."
            )
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.causal = causal
        self.use_sdpa = False
        self.query = nn.Linear(d_model, d_model, bias=bias)
        self.key = nn.Linear(d_model, d_model, bias=bias)
        self.value = nn.Linear(d_model, d_model, bias=bias)
        self.out = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def _split(self, t: Tensor) -> Tensor:
        """``(batch, seq, d_model)`` -> ``(batch, heads, seq, head_dim)``."""
        b, s, _ = t.shape
        return t.view(b, s, self.n_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        *,
        kv_cache: KVCache | None = None,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend from every position of ``x`` to every allowed position (see the class)."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                f"x must have shape (batch, seq, {self.d_model}), got {tuple(x.shape)}."
            )
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        offset = 0
        if kv_cache is not None:
            offset = kv_cache.length
            k, v = kv_cache.append(k, v)
        allowed = attention_allowed(
            q.shape[-2], k.shape[-2], attention_mask, causal=self.causal, offset=offset,
            device=x.device,
        )  # fmt: skip
        if self.use_sdpa and not return_weights:
            mask = None
            if allowed is not None:  # additive mask: no NaN even for a row with no allowed key
                mask = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device)
                mask = mask.masked_fill(~allowed, torch.finfo(q.dtype).min)
            p = self.dropout.p if self.training else 0.0
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            weights = None
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
            weights = scores.softmax(dim=-1)
            context = self.dropout(weights) @ v
        b, _, s, _ = context.shape
        output = self.out(context.transpose(1, 2).reshape(b, s, self.d_model))
        return (output, weights) if return_weights else output


def use_sdpa(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every :class:`MultiHeadAttention` inside ``model`` to PyTorch's fused
    ``F.scaled_dot_product_attention`` (``enabled=False``: back to the written-out softmax);
    returns ``model``. Calls that ask for the weights always use the written-out path."""
    for module in model.modules():
        if isinstance(module, MultiHeadAttention):
            module.use_sdpa = enabled
    return model
