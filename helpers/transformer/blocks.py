"""The Transformer block and its configuration: attention and a feed-forward network, each
inside a residual connection with LayerNorm after it (post-LN, BERT) or before it (pre-LN,
GPT-2).

Example::

    config = TransformerConfig(vocab_size=100, max_positions=32, d_model=64, n_heads=4,
                               n_layers=2, d_ff=256, causal=True, pre_ln=True, gelu="tanh")
    block = TransformerBlock(config)
    y = block(torch.randn(2, 10, 64))                                        # (2, 10, 64)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from helpers.transformer.attention import KVCache, MultiHeadAttention

__all__ = ["TransformerConfig", "FeedForward", "TransformerBlock"]

GELU_KINDS = {"exact": "none", "tanh": "tanh"}


@dataclass
class TransformerConfig:
    """The sizes and choices of a Transformer: ``d_model`` numbers per token, ``n_heads``
    attention heads, ``n_layers`` blocks, a feed-forward layer of ``d_ff`` units; ``dropout`` on
    the embeddings and residual branches, ``attention_dropout`` on the attention weights;
    ``causal`` (GPT) or not (BERT); ``pre_ln`` (GPT-2) or post-LN (BERT); GELU ``"exact"`` (BERT)
    or ``"tanh"`` (GPT-2); LayerNorm ``ln_eps``; ``bias`` in the Linear layers; ``type_vocab_size``
    token types (0 = none, as in GPT). :func:`bert_config_from_hf` reads one from a
    Hugging Face ``BertConfig``."""

    vocab_size: int
    max_positions: int
    d_model: int
    n_heads: int
    n_layers: int
    d_ff: int
    dropout: float = 0.1
    attention_dropout: float = 0.1
    causal: bool = False
    pre_ln: bool = False
    gelu: str = "exact"
    ln_eps: float = 1e-12
    bias: bool = True
    type_vocab_size: int = 2

    def __post_init__(self) -> None:
        if self.gelu not in GELU_KINDS:
            raise ValueError(f"gelu must be 'exact' (BERT) or 'tanh' (GPT-2), got {self.gelu!r}.")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                "pick n_heads that divides d_model."
            )


class FeedForward(nn.Module):
    """The position-wise feed-forward network: ``.up`` (``d_model -> d_ff``), GELU (exact or
    its tanh approximation), ``.down`` (``d_ff -> d_model``), applied to every token alone."""

    def __init__(self, d_model: int, d_ff: int, *, gelu: str = "exact", bias: bool = True) -> None:
        super().__init__()
        if gelu not in GELU_KINDS:
            raise ValueError(f"gelu must be 'exact' (BERT) or 'tanh' (GPT-2), got {gelu!r}.")
        self.up = nn.Linear(d_model, d_ff, bias=bias)
        self.act = nn.GELU(approximate=GELU_KINDS[gelu])
        self.down = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., d_model) -> (..., d_model)``."""
        return self.down(self.act(self.up(x)))


class TransformerBlock(nn.Module):
    """One Transformer layer: ``.attention`` (:class:`MultiHeadAttention`) and ``.ffn``
    (:class:`FeedForward`), each added back to its input (a residual connection) after dropout,
    with LayerNorms ``.ln1`` (around attention) and ``.ln2`` (around the feed-forward).
    Post-LN (BERT): ``x = ln1(x + attn(x)); x = ln2(x + ffn(x))``. Pre-LN (GPT-2):
    ``x = x + attn(ln1(x)); x = x + ffn(ln2(x))``. ``forward`` takes the same mask, cache and
    ``return_weights`` as :class:`MultiHeadAttention` and returns ``x`` or ``(x, weights)``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        self.pre_ln = c.pre_ln
        self.attention = MultiHeadAttention(
            c.d_model, c.n_heads, dropout=c.attention_dropout, bias=c.bias, causal=c.causal
        )
        self.ln1 = nn.LayerNorm(c.d_model, eps=c.ln_eps)
        self.ffn = FeedForward(c.d_model, c.d_ff, gelu=c.gelu, bias=c.bias)
        self.ln2 = nn.LayerNorm(c.d_model, eps=c.ln_eps)
        self.dropout = nn.Dropout(c.dropout)

    def forward(
        self,
        x: Tensor,
        attention_mask: Tensor | None = None,
        *,
        kv_cache: KVCache | None = None,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Run attention then the feed-forward network on ``x`` ``(batch, seq, d_model)``."""
        h = self.ln1(x) if self.pre_ln else x
        weights = None
        if return_weights:
            a, weights = self.attention(h, attention_mask, kv_cache=kv_cache, return_weights=True)
        else:
            a = self.attention(h, attention_mask, kv_cache=kv_cache)
        x = x + self.dropout(a)
        if not self.pre_ln:
            x = self.ln1(x)
        h = self.ln2(x) if self.pre_ln else x
        x = x + self.dropout(self.ffn(h))
        if not self.pre_ln:
            x = self.ln2(x)
        return (x, weights) if return_weights else x
