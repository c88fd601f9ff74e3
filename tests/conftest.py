"""Fixtures shared by several test files.

``tiny_bert_dir`` is a folder laid out like the shipped all-MiniLM-L6-v2 encoder (a bare
``BertModel`` without a classification head, and the real uncased WordPiece tokenizer) but with
a tiny, randomly initialised, seeded encoder: 2 layers of width 32, about 1M parameters, almost
all of them the token embeddings. Tests of the code *around* the encoder (loaders, optimiser
groups, freezing, saving, predict_sentiment, the fine-tuning script) prove the same thing with it
as with the 22.7M-parameter encoder, in a fraction of the time. The shipped encoder itself is
loaded once per session, by
tests/test_bert.py::test_the_shipped_encoder_loads_offline_and_classifies.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests' models and tensors are tiny: splitting their operations over several threads costs
# more than it saves (on a 2-core machine, one thread cut the CPU time of test_train, test_plot,
# test_tb, test_bert and test_data from about 34 s to 19 s), and one thread gives the same numbers
# everywhere, as notebook 05 says too. Set before torch, numpy and scikit-learn start their thread
# pools; the scripts the tests start (finetune, torchrun) inherit it. An explicit value wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")

#: BERT's own initializer_range is 0.02; at that scale a random encoder gives every text the same
#: score to within 1e-4, and the tests that compare probabilities could not tell texts apart.
TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "initializer_range": 0.2,
}


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A saved tiny random encoder (no head) plus the shipped tokenizer, read-only by convention."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from helpers.bert import offline_model_path

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = AutoTokenizer.from_pretrained(str(offline_model_path()))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **TINY_BERT)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
