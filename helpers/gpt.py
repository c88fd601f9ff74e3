"""A small GPT (a decoder-only Transformer language model) built from chapter 09's blocks:
token and position embeddings, pre-LN causal blocks, a final LayerNorm and a language-model
head that shares its weights with the token embedding; text generation (greedy, temperature,
top-k, top-p) with and without a key/value cache, and guided towards one of several conditions
(classifier-free guidance); and GPT-2's weights loaded into it.

Example::

    config = gpt_config(vocab_size=1024, max_positions=128, d_model=128, n_heads=4, n_layers=4)
    model = GPT(config)
    logits = model(torch.randint(0, 1024, (2, 16)))                 # (2, 16, 1024)
    out = generate(model, prompt_ids, max_new_tokens=40, temperature=0.8, top_k=50)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from helpers.device import eval_mode
from helpers.transformer import KVCache, TransformerBlock, TransformerConfig, check_state_dict_fits

__all__ = [
    "GPT",
    "gpt_config",
    "gpt2_config_from_hf",
    "lm_loss",
    "pack_stream",
    "lm_windows",
    "next_token",
    "generate",
    "guided_log_probs",
    "generate_guided",
    "gpt2_state_dict_to_ours",
    "load_gpt2_weights",
]


def gpt_config(
    vocab_size: int,
    max_positions: int,
    d_model: int,
    n_heads: int,
    n_layers: int,
    d_ff: int | None = None,
    dropout: float = 0.1,
) -> TransformerConfig:
    """The :class:`TransformerConfig` of a GPT-2-style model: causal attention, pre-LN,
    tanh-GELU, LayerNorm epsilon 1e-5, no token types; ``d_ff`` defaults to ``4 * d_model``
    and ``dropout`` applies to the embeddings, residual branches and attention weights."""
    return TransformerConfig(
        vocab_size=vocab_size,
        max_positions=max_positions,
        d_model=d_model,
        n_heads=n_heads,
        n_layers=n_layers,
        d_ff=d_ff if d_ff is not None else 4 * d_model,
        dropout=dropout,
        attention_dropout=dropout,
        causal=True,
        pre_ln=True,
        gelu="tanh",
        ln_eps=1e-5,
        type_vocab_size=0,
    )


def gpt2_config_from_hf(hf_config: Any) -> TransformerConfig:
    """Our configuration for a Hugging Face ``GPT2Config`` (the names differ: ``n_embd`` is
    ``d_model``, ``n_inner`` is ``d_ff``, ``n_positions`` is ``max_positions``...)."""
    if getattr(hf_config, "activation_function", "gelu_new") not in (
        "gelu_new",
        "gelu_pytorch_tanh",
    ):
        raise ValueError(
            f"activation_function={hf_config.activation_function!r}: only GPT-2's tanh GELU "
            "('gelu_new') is supported."
        )
    config = gpt_config(
        hf_config.vocab_size,
        hf_config.n_positions,
        hf_config.n_embd,
        hf_config.n_head,
        hf_config.n_layer,
        hf_config.n_inner or 4 * hf_config.n_embd,
        hf_config.resid_pdrop,
    )
    config.attention_dropout = hf_config.attn_pdrop
    config.ln_eps = hf_config.layer_norm_epsilon
    return config


class GPT(nn.Module):
    """A decoder-only language model: ``.tok_emb`` and ``.pos_emb`` (learned positions),
    dropout, ``.blocks`` (``n_layers`` causal pre-LN :class:`TransformerBlock`), ``.ln_f`` and
    ``.lm_head``, whose weight *is* ``tok_emb.weight`` (weight tying: the same matrix reads a
    token in and scores it out). ``forward(input_ids)`` returns logits ``(batch, seq, vocab)``:
    position ``t``'s logits score the token that follows ``input_ids[:, t]``. With
    ``kv_caches`` (one :class:`KVCache` per block) the new positions start where the caches end.
    Weights start as in GPT-2: normal(0, 0.02), the projections that end a residual branch
    scaled by ``1 / sqrt(2 * n_layers)``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        if not (config.causal and config.pre_ln and config.type_vocab_size == 0):
            raise ValueError(
                "A GPT needs causal=True, pre_ln=True and type_vocab_size=0: build the config "
                "with gpt_config(...)."
            )
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.max_positions, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.ln_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight
        self.apply(self._init_weights)
        residual_std = 0.02 / math.sqrt(2 * config.n_layers)
        for block in self.blocks:
            nn.init.normal_(block.attention.out.weight, std=residual_std)
            nn.init.normal_(block.ffn.down.weight, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: Tensor, *, kv_caches: Sequence[KVCache] | None = None) -> Tensor:
        """Logits ``(batch, seq, vocab)`` for ``input_ids`` ``(batch, seq)`` (see the class)."""
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, seq), got {tuple(input_ids.shape)}.")
        if kv_caches is not None and len(kv_caches) != len(self.blocks):
            raise ValueError(
                f"kv_caches has {len(kv_caches)} caches for {len(self.blocks)} blocks: "
                "use KVCache.for_layers(model.config.n_layers)."
            )
        start = kv_caches[0].length if kv_caches is not None else 0
        end = start + input_ids.shape[1]
        if end > self.config.max_positions:
            raise ValueError(
                f"positions {start}..{end - 1} do not fit max_positions="
                f"{self.config.max_positions}: crop the input to its last "
                f"{self.config.max_positions} tokens (generate() does it)."
            )
        positions = torch.arange(start, end, device=input_ids.device)
        x = self.drop(self.tok_emb(input_ids) + self.pos_emb(positions))
        for i, block in enumerate(self.blocks):
            x = block(x, kv_cache=kv_caches[i] if kv_caches is not None else None)
        return self.lm_head(self.ln_f(x))


def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """The language-modelling loss: mean cross-entropy of every position's logits
    ``(batch, seq, vocab)`` against the next tokens ``(batch, seq)``; its ``exp`` is the
    perplexity. Pass it to ``fit(..., loss_fn=lm_loss, metrics=())``."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def pack_stream(
    encode: Any, texts: Sequence[str], prefixes: Sequence[str], end_of_text: str
) -> list[int]:
    """One long list of token ids: every text preceded by its prefix (for example its label
    token ``"<positive>"``) and followed by ``end_of_text``, one after another, so that
    training windows need no padding. ``encode`` turns a string into ids (special tokens
    included)."""
    if len(texts) != len(prefixes):
        raise ValueError(f"{len(texts)} texts but {len(prefixes)} prefixes: give one per text.")
    stream: list[int] = []
    for text, prefix in zip(texts, prefixes):
        stream.extend(encode(prefix + text + end_of_text))
    return stream


def lm_windows(stream: Sequence[int] | Tensor, context: int) -> tuple[Tensor, Tensor]:
    """Cut ``stream`` into non-overlapping windows of ``context`` tokens: inputs ``x`` and
    targets ``y`` ``(n_windows, context)``, ``y`` being ``x`` shifted left by one token (the
    next token at every position). The tail that does not fill a window is dropped."""
    ids = torch.as_tensor(stream, dtype=torch.long)
    n = (len(ids) - 1) // context
    if n < 1:
        raise ValueError(f"a stream of {len(ids)} tokens is too short for context={context}.")
    x = ids[: n * context].view(n, context)
    y = ids[1 : n * context + 1].view(n, context)
    return x, y


def next_token(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Choose the next token from ``logits`` ``(batch, vocab)``: ``temperature=0`` is greedy
    (the argmax); otherwise the logits are divided by ``temperature`` (below 1 sharpens,
    above 1 flattens), only the ``top_k`` most likely tokens are kept and, with ``top_p``,
    only the smallest set of tokens whose probabilities add up to ``top_p`` (nucleus
    sampling), and a token is drawn. Returns ids ``(batch, 1)``."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}.")
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits.float() / temperature
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}.")
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # the mass before it is enough
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)


def _append_until_end(
    ids: Tensor, new: Tensor, done: Tensor, eos_id: int | None
) -> tuple[Tensor, Tensor, bool]:
    """Append ``new`` to ``ids``; a sequence that produced ``eos_id`` keeps producing it (``done``
    is updated in place). Returns the ids, the new tokens and whether every sequence has ended."""
    if eos_id is not None:
        new = new.masked_fill(done[:, None], eos_id)
        done |= new[:, 0] == eos_id
    return torch.cat([ids, new], dim=1), new, eos_id is not None and bool(done.all())


@torch.no_grad()
def generate(
    model: GPT,
    input_ids: Tensor,
    max_new_tokens: int,
    *,
    use_cache: bool = True,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Extend ``input_ids`` ``(batch, seq)`` by up to ``max_new_tokens`` tokens chosen by
    :func:`next_token` (greedy by default) and return prompt and continuation together.
    Without the cache, every step runs the model on the whole sequence so far (its last
    ``max_positions`` tokens); with ``use_cache`` (one :class:`KVCache` per block) the prompt
    runs once and then each step feeds only the newest token, reusing the stored keys and
    values, and gives the same tokens. When the cache fills the context, it is rebuilt from the
    last ``max_positions - 1`` tokens, as the uncached path crops. Generation stops early when
    every sequence has produced ``eos_id``. The model runs in evaluation mode."""
    if input_ids.ndim != 2 or input_ids.shape[1] < 1:
        raise ValueError(f"input_ids must be (batch, seq >= 1), got {tuple(input_ids.shape)}.")
    limit = model.config.max_positions
    ids = input_ids
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    caches = KVCache.for_layers(len(model.blocks)) if use_cache else None
    with eval_mode(model):
        for _ in range(max_new_tokens):
            if caches is None:
                logits = model(ids[:, -limit:])
            else:
                if caches[0].length == 0 or caches[0].length >= limit:
                    for cache in caches:
                        cache.reset()
                    feed = ids[:, -(limit - 1) :] if ids.shape[1] >= limit else ids
                else:
                    feed = ids[:, -1:]
                logits = model(feed, kv_caches=caches)
            new = next_token(
                logits[:, -1], temperature=temperature, top_k=top_k, top_p=top_p,
                generator=generator,
            )  # fmt: skip
            ids, new, finished = _append_until_end(ids, new, done, eos_id)
            if finished:
                break
    return ids


def guided_log_probs(log_probs: Tensor, target: int, weight: float) -> Tensor:
    """Classifier-free guidance for a model trained only *with* conditions: of the next-token
    log-probabilities under every condition ``(n_conditions, batch, vocab)``, the equal-weight
    average stands in for the unconditional ``log p(v)``; the scores ``(batch, vocab)`` are
    ``log p(v | target) + weight * (log p(v | target) - log p(v))`` (``weight=0``: no change)."""
    if log_probs.ndim != 3 or not 0 <= target < log_probs.shape[0]:
        raise ValueError(
            f"log_probs must be (n_conditions, batch, vocab) with target < "
            f"n_conditions, got {tuple(log_probs.shape)} and target={target}."
        )
    mixture = torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])
    return log_probs[target] + weight * (log_probs[target] - mixture)


@torch.no_grad()
def generate_guided(
    model: GPT,
    prompts: Tensor,
    target: int,
    n_samples: int,
    max_new_tokens: int,
    *,
    weight: float,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sample ``n_samples`` continuations of ``prompts[target]`` steered by
    :func:`guided_log_probs`; ``prompts`` ``(n_conditions, seq)`` holds one prompt per condition.
    Each step runs the model on all conditions at once (one KV cache, ``n_conditions * n_samples``
    rows fed the same new tokens). Returns ``(n_samples, seq + new)``; stops as :func:`generate`."""
    if prompts.ndim != 2 or not 0 <= target < prompts.shape[0]:
        raise ValueError(
            f"prompts must be (n_conditions, seq) with target < n_conditions, "
            f"got {tuple(prompts.shape)} and target={target}."
        )
    if prompts.shape[1] + max_new_tokens > model.config.max_positions:
        raise ValueError(
            f"{prompts.shape[1]} prompt tokens + {max_new_tokens} new ones exceed "
            f"the context of {model.config.max_positions}: ask for fewer new tokens."
        )
    n_conditions, caches = prompts.shape[0], KVCache.for_layers(len(model.blocks))
    ids = prompts[target].expand(n_samples, -1)
    feed = prompts.repeat_interleave(n_samples, dim=0)  # condition c in rows c*n ... (c+1)*n - 1
    done = torch.zeros(n_samples, dtype=torch.bool, device=prompts.device)
    with eval_mode(model):
        for _ in range(max_new_tokens):
            logits = model(feed, kv_caches=caches)[:, -1]
            log_probs = logits.float().log_softmax(dim=-1).view(n_conditions, n_samples, -1)
            new = next_token(
                guided_log_probs(log_probs, target, weight), temperature=temperature,
                top_k=top_k, top_p=top_p, generator=generator,
            )  # fmt: skip
            ids, new, finished = _append_until_end(ids, new, done, eos_id)
            if finished:
                break
            feed = new.repeat(n_conditions, 1)
    return ids


def gpt2_state_dict_to_ours(state_dict: Mapping[str, Tensor], n_layers: int) -> dict[str, Tensor]:
    """GPT-2's weights (``transformers.GPT2LMHeadModel`` or ``GPT2Model`` names, with or
    without the ``transformer.`` prefix) under our names. GPT-2 stores its linear layers as
    ``Conv1D`` with weights ``(in, out)``: they are transposed to ``nn.Linear``'s ``(out, in)``,
    and the fused ``attn.c_attn`` (query, key and value in one matrix of ``3 * d_model``
    outputs) is split into ``.query``, ``.key`` and ``.value``. Mask buffers are skipped."""
    sd = {k.removeprefix("transformer."): v for k, v in state_dict.items()}
    out = {
        "tok_emb.weight": sd["wte.weight"],
        "pos_emb.weight": sd["wpe.weight"],
        "ln_f.weight": sd["ln_f.weight"],
        "ln_f.bias": sd["ln_f.bias"],
        "lm_head.weight": sd["wte.weight"],  # tied
    }
    for i in range(n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            out[b + ours + ".weight"] = sd[h + theirs + ".weight"]
            out[b + ours + ".bias"] = sd[h + theirs + ".bias"]
        qkv_w = sd[h + "attn.c_attn.weight"].chunk(3, dim=1)
        qkv_b = sd[h + "attn.c_attn.bias"].chunk(3, dim=0)
        for name, w, bias in zip(("query", "key", "value"), qkv_w, qkv_b):
            out[b + f"attention.{name}.weight"] = w.t().contiguous()
            out[b + f"attention.{name}.bias"] = bias
        for ours, theirs in (
            ("attention.out", "attn.c_proj"),
            ("ffn.up", "mlp.c_fc"),
            ("ffn.down", "mlp.c_proj"),
        ):
            out[b + ours + ".weight"] = sd[h + theirs + ".weight"].t().contiguous()
            out[b + ours + ".bias"] = sd[h + theirs + ".bias"]
    return out


def load_gpt2_weights(model: GPT, state_dict: Mapping[str, Tensor]) -> GPT:
    """Copy GPT-2's weights (a ``GPT2LMHeadModel`` state dict) into ``model`` through
    :func:`gpt2_state_dict_to_ours`, after checking that every name and shape fits
    (``check_state_dict_fits``); returns ``model``. A state dict of another size raises an
    error naming the first key or shape that differs."""
    try:
        mapped = gpt2_state_dict_to_ours(state_dict, len(model.blocks))
    except KeyError as err:
        raise ValueError(
            f"The state dict has no GPT-2 weight {err}: pass GPT2LMHeadModel(...).state_dict() "
            f"of a model with {len(model.blocks)} layers (build ours with gpt2_config_from_hf)."
        ) from err
    hint = "Build the model with GPT(gpt2_config_from_hf(hf_model.config))."
    check_state_dict_fits(model, mapped, source="the GPT-2 state dict", hint=hint)
    model.load_state_dict(mapped)
    return model
