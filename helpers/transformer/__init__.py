"""Attention and the Transformer written from scratch (chapter 09), reused by the LoRA
(chapter 10) and GPT (chapter 11) chapters.

Every name is imported from ``helpers.transformer``; the code lives in one module per topic:

=================  ==========================================================================
``attention``      ``MultiHeadAttention`` (separate ``.query``/``.key``/``.value``/``.out``),
                   ``KVCache``, ``attention_allowed`` (padding and causal masks), ``use_sdpa``
``blocks``         ``TransformerConfig``, ``FeedForward``, ``TransformerBlock`` (pre- or post-LN)
``bert``           ``BertEncoder``, ``BertClassifier``, ``bert_config_from_hf``,
                   ``load_bert_weights`` (the name mapping ``BERT_NAME_RULES``),
                   ``load_pretrained_bert``, ``load_pretrained_classifier``
``state_dict``     ``check_state_dict_fits`` and ``StateDictMismatchError``: the one
                   "does this state dict fit" check of every loader
=================  ==========================================================================

Typical use::

    from helpers.transformer import load_pretrained_bert

    encoder = load_pretrained_bert()            # all-MiniLM-L6-v2's weights in our code
    out = encoder(batch["input_ids"], batch["attention_mask"], return_weights=True)
    out.last_hidden_state, out.pooler_output, out.attentions
"""

from helpers.transformer.attention import KVCache, MultiHeadAttention, attention_allowed, use_sdpa
from helpers.transformer.bert import (
    BERT_NAME_RULES,
    BertClassifier,
    BertEmbeddings,
    BertEncoder,
    EncoderOutput,
    bert_config_from_hf,
    bert_name_to_ours,
    load_bert_weights,
    load_pretrained_bert,
    load_pretrained_classifier,
)
from helpers.transformer.blocks import FeedForward, TransformerBlock, TransformerConfig
from helpers.transformer.state_dict import StateDictMismatchError, check_state_dict_fits

__all__ = [
    "KVCache",
    "MultiHeadAttention",
    "attention_allowed",
    "use_sdpa",
    "TransformerConfig",
    "FeedForward",
    "TransformerBlock",
    "EncoderOutput",
    "BertEmbeddings",
    "BertEncoder",
    "BertClassifier",
    "BERT_NAME_RULES",
    "bert_config_from_hf",
    "bert_name_to_ours",
    "load_bert_weights",
    "load_pretrained_bert",
    "load_pretrained_classifier",
    "StateDictMismatchError",
    "check_state_dict_fits",
]
