"""helpers.gpt: a causal language model whose earlier positions never see later tokens,
whose cached generation gives the same tokens as the uncached one, and into which GPT-2's
weights load (a tiny random GPT-2, no download)."""

import pytest
import torch

from helpers.gpt import (
    GPT,
    generate,
    generate_guided,
    gpt2_config_from_hf,
    gpt_config,
    guided_log_probs,
    lm_loss,
    lm_windows,
    load_gpt2_weights,
    next_token,
    pack_stream,
)
from helpers.transformer import KVCache, StateDictMismatchError, use_sdpa


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(
        gpt_config(vocab_size=50, max_positions=16, d_model=32, n_heads=4, n_layers=2)
    ).eval()


def test_logits_have_one_row_per_position_and_the_head_is_tied(model):
    ids = torch.randint(0, 50, (3, 10))
    assert model(ids).shape == (3, 10, 50)
    assert model.lm_head.weight is model.tok_emb.weight
    n_params = sum(p.numel() for p in model.parameters())  # the tied matrix counted once
    assert n_params == 50 * 32 + 16 * 32 + 2 * (4 * 32 * 33 + 2 * 32 * 128 + 128 + 32 + 4 * 32) + 64


@pytest.mark.parametrize("sdpa", [False, True])
def test_changing_a_later_token_never_changes_an_earlier_positions_logits(model, sdpa):
    use_sdpa(model, sdpa)
    ids = torch.randint(0, 50, (2, 12))
    changed = ids.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % 50
    a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_feeding_tokens_through_the_cache_gives_the_full_forward_pass(model):
    ids = torch.randint(0, 50, (2, 9))
    caches = KVCache.for_layers(2)
    parts = [model(ids[:, :5], kv_caches=caches), model(ids[:, 5:6], kv_caches=caches)]
    parts.append(model(ids[:, 6:], kv_caches=caches))
    torch.testing.assert_close(torch.cat(parts, dim=1), model(ids), atol=1e-5, rtol=1e-5)
    assert caches[0].length == 9


@pytest.mark.parametrize("new_tokens", [5, 30])  # 30: past the 16-token context (a sliding window)
def test_greedy_generation_gives_the_same_tokens_with_and_without_the_cache(model, new_tokens):
    prompt = torch.randint(0, 50, (2, 3))
    cached = generate(model, prompt, new_tokens, use_cache=True)
    uncached = generate(model, prompt, new_tokens, use_cache=False)
    assert cached.shape == (2, 3 + new_tokens)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached[:, :3], prompt)


def test_sampling_with_the_same_generator_is_reproducible_and_stops_at_the_end_token(model):
    prompt = torch.zeros(4, 1, dtype=torch.long)
    runs = [
        generate(model, prompt, 8, temperature=1.0, top_k=10, top_p=0.9,
                 generator=torch.Generator().manual_seed(1))
        for _ in range(2)
    ]  # fmt: skip
    assert torch.equal(*runs)
    eos = int(runs[0][0, 1])  # the first sequence's first new token ends it at once
    out = generate(model, prompt, 8, temperature=1.0, top_k=10, top_p=0.9, eos_id=eos,
                   generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert (out[0, 1:] == eos).all()


def test_next_token_greedy_top_k_and_top_p():
    logits = torch.tensor([[0.0, 3.0, 2.0, 1.0]])
    assert next_token(logits, temperature=0).item() == 1
    g = torch.Generator().manual_seed(0)
    drawn = {next_token(logits, top_k=2, generator=g).item() for _ in range(200)}
    assert drawn == {1, 2}
    # probabilities about 0.64, 0.24, 0.09, 0.03: top_p=0.7 keeps the two most likely tokens
    drawn = {next_token(logits, top_p=0.7, generator=g).item() for _ in range(200)}
    assert drawn == {1, 2}
    assert {next_token(logits, top_p=0.5, generator=g).item() for _ in range(50)} == {1}
    with pytest.raises(ValueError, match="temperature"):
        next_token(logits, temperature=-1)


def test_guidance_pushes_up_the_tokens_the_target_makes_likelier_than_the_average():
    # two conditions, three tokens: token 0 is likelier under condition 1 than on average
    probs = torch.tensor([[[0.2, 0.4, 0.4]], [[0.6, 0.2, 0.2]]])
    log_probs = probs.log()
    assert torch.allclose(guided_log_probs(log_probs, 1, weight=0.0), log_probs[1])
    guided = guided_log_probs(log_probs, 1, weight=2.0).softmax(-1)
    assert guided[0, 0] > probs[1, 0, 0]  # 0.6 grows (to about 0.88)
    mixture = probs.mean(0).log()  # the unconditional distribution: the average
    expected = log_probs[1] + 2.0 * (log_probs[1] - mixture)
    assert torch.allclose(guided_log_probs(log_probs, 1, weight=2.0), expected)
    same = torch.full((3, 1, 4), 0.25).log()  # conditions that agree: guidance changes nothing
    assert torch.allclose(guided_log_probs(same, 0, weight=5.0), same[0])


def test_guided_generation_equals_plain_generation_at_weight_zero(model):
    prompts = torch.tensor([[1, 7], [2, 7], [3, 7]])  # one prompt per condition
    guided = generate_guided(model, prompts, 1, 2, 6, weight=0.0, temperature=0)
    assert torch.equal(guided, generate(model, prompts[1:2].expand(2, -1), 6))


def test_guided_generation_with_the_cache_follows_the_guided_scores_of_full_passes(model):
    prompts = torch.tensor([[1, 7], [2, 7], [3, 7]])
    out = generate_guided(model, prompts, 2, 3, 8, weight=3.0, temperature=0)
    ids = prompts[2:].expand(3, -1)
    with torch.no_grad():
        for _ in range(8):  # the reference: every condition's whole sequence, every step
            rows = [torch.cat([prompts[c : c + 1].expand(3, -1), ids[:, 2:]], 1) for c in range(3)]
            log_probs = torch.stack([model(r)[:, -1].log_softmax(-1) for r in rows])
            new = guided_log_probs(log_probs, 2, 3.0).argmax(-1, keepdim=True)
            ids = torch.cat([ids, new], 1)
    assert torch.equal(out, ids)
    assert not torch.equal(out, generate_guided(model, prompts, 2, 3, 8, weight=0.0, temperature=0))


def test_packing_and_windows_shift_the_targets_by_one_token():
    stream = pack_stream(lambda s: [ord(c) for c in s], ["ab", "c"], ["<", ">"], "|")
    assert stream == [ord(c) for c in "<ab|>c|"]
    x, y = lm_windows(list(range(10)), 3)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    logits = torch.zeros(2, 3, 7)
    assert abs(lm_loss(logits, torch.zeros(2, 3, dtype=torch.long)).item() - 1.9459) < 1e-4


def test_a_tiny_random_gpt2_loads_into_our_class_and_gives_the_same_logits():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf_config = GPT2Config(
        vocab_size=61, n_positions=24, n_embd=32, n_layer=2, n_head=4, bos_token_id=0,
        eos_token_id=0,
    )  # fmt: skip
    hf_model = GPT2LMHeadModel(hf_config).eval()
    ours = load_gpt2_weights(GPT(gpt2_config_from_hf(hf_config)), hf_model.state_dict()).eval()
    ids = torch.randint(0, 61, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf_model(ids).logits, atol=1e-4, rtol=0)
        hf_greedy = hf_model.generate(ids[:, :4], max_new_tokens=6, do_sample=False,
                                      pad_token_id=0, eos_token_id=None)  # fmt: skip
    assert torch.equal(generate(ours, ids[:, :4], 6), hf_greedy)


def test_weights_of_another_size_or_kind_raise_a_helpful_error(model):
    from transformers import GPT2Config, GPT2LMHeadModel

    hf = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=64, n_layer=2, n_head=4))
    with pytest.raises(StateDictMismatchError, match="gpt2_config_from_hf"):
        load_gpt2_weights(model, hf.state_dict())
    with pytest.raises(ValueError, match="no GPT-2 weight"):
        load_gpt2_weights(model, model.state_dict())


def test_bad_input_says_what_to_do(model):
    with pytest.raises(ValueError, match="crop the input"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="for_layers"):
        model(torch.zeros(1, 2, dtype=torch.long), kv_caches=[KVCache()])
    with pytest.raises(ValueError, match="fewer new tokens"):
        generate_guided(model, torch.zeros(3, 2, dtype=torch.long), 0, 1, 15, weight=1.0)
    with pytest.raises(ValueError, match="target < n_conditions"):
        generate_guided(model, torch.zeros(3, 2, dtype=torch.long), 3, 1, 4, weight=1.0)
    with pytest.raises(ValueError, match="gpt_config"):
        GPT(gpt_config(50, 16, 32, 4, 2).__class__(50, 16, 32, 4, 2, 64))
