"""Tests of helpers.lora, on a tiny randomly initialised transformers ``BertModel`` (2 layers of
width 32) and, when chapter 09's module is there, on the course's own ``BertEncoder``: what a
learner may rely on when they wrap a model in LoRA, train it, merge it and ship the adapter."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertModel

from helpers.lora import (
    LoRALinear,
    adapter_state_dict,
    add_lora,
    finetuning_memory,
    load_adapter,
    lora_layers,
    merge_lora,
    save_adapter,
)

TINY = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
TINY |= {"intermediate_size": 64, "max_position_embeddings": 64, "initializer_range": 0.2}


def tiny_bert(seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    return BertModel(BertConfig(**TINY)).eval()


@pytest.fixture
def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 100, (3, 10), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 7:] = 0  # a padded text
    return {"input_ids": ids, "attention_mask": mask}


def hidden(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).last_hidden_state


def perturb_b(model: nn.Module, seed: int = 2) -> None:
    """Give every B a non-zero value, as training would (B starts at zero)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.normal_(0, 0.1)


def test_a_wrapped_layer_starts_as_the_original_because_b_is_zero():
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    x = torch.randn(5, 6)
    expected = base(x)
    layer = LoRALinear(base, r=2, alpha=4)
    assert layer.lora_A.shape == (2, 6) and layer.lora_B.shape == (4, 2)
    assert torch.count_nonzero(layer.lora_B) == 0 and torch.count_nonzero(layer.lora_A) > 0
    assert layer.scaling == 2.0
    assert torch.equal(layer(x), expected)


def test_the_update_is_scaling_times_b_times_a_of_the_input():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(6, 4), r=3, alpha=6)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(5, 6)
    by_hand = layer.base(x) + 2.0 * x @ (layer.lora_B @ layer.lora_A).T
    torch.testing.assert_close(layer(x), by_hand)
    torch.testing.assert_close(layer.delta_weight(), 2.0 * layer.lora_B @ layer.lora_A)


def test_add_lora_wraps_every_matching_linear_and_the_model_output_is_unchanged(batch):
    model = tiny_bert()
    before = hidden(model, batch)
    add_lora(model, ("query", "value"), r=4, alpha=8)
    names = sorted(lora_layers(model))
    assert names == [
        f"encoder.layer.{i}.attention.self.{proj}" for i in range(2) for proj in ("query", "value")
    ]
    assert torch.equal(hidden(model, batch), before)


def test_only_a_and_b_require_grad_and_only_they_get_gradients(batch):
    model = add_lora(tiny_bert(), ("query", "value"), r=4, alpha=8)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith((".lora_A", ".lora_B")) for n in trainable)
    assert len(trainable) == 2 * 2 * 2  # layers x (query, value) x (A, B)
    perturb_b(model)
    model(**batch).last_hidden_state.sum().backward()
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name


def test_also_train_keeps_a_head_trainable():
    model = nn.Sequential()
    model.add_module("encoder", tiny_bert())
    model.add_module("classifier", nn.Linear(32, 3))
    add_lora(model, ("query", "value"), r=2, alpha=4, also_train=("classifier",))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"classifier.weight", "classifier.bias"} <= trainable
    assert sum(p.numel() for n, p in model.named_parameters() if n in trainable) == (
        2 * 2 * (2 * 32 + 32 * 2) + 3 * 32 + 3
    )


def test_merging_gives_the_same_outputs_with_plain_linear_layers(batch):
    model = add_lora(tiny_bert(), ("query", "value"), r=4, alpha=8)
    perturb_b(model)
    adapted = hidden(model, batch)
    assert not torch.allclose(adapted, hidden(tiny_bert(), batch), atol=1e-3)  # it does adapt
    merge_lora(model)
    assert not lora_layers(model)
    assert type(model.encoder.layer[0].attention.self.query) is nn.Linear
    assert set(model.state_dict()) == set(tiny_bert().state_dict())  # the original architecture
    torch.testing.assert_close(hidden(model, batch), adapted, atol=1e-5, rtol=0)


def test_a_target_that_matches_nothing_is_a_clear_error():
    model = tiny_bert()
    with pytest.raises(ValueError, match=r"'q_proj' matches no module.*query.*value"):
        add_lora(model, ("q_proj",))
    assert not lora_layers(model)  # nothing half-done
    assert all(p.requires_grad for p in model.parameters())


def test_a_target_that_is_not_a_linear_layer_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'attention' matches BertAttention, not nn.Linear"):
        add_lora(tiny_bert(), ("attention",))


def test_bad_settings_are_refused_with_a_message():
    with pytest.raises(ValueError, match="rank r"):
        LoRALinear(nn.Linear(4, 4), r=0)
    with pytest.raises(ValueError, match="alpha"):
        LoRALinear(nn.Linear(4, 4), r=2, alpha=0)
    with pytest.raises(TypeError, match="nn.Linear"):
        LoRALinear(nn.Conv1d(4, 4, 1))
    model = add_lora(tiny_bert(), ("query",))
    with pytest.raises(ValueError, match="already wrapped"):
        add_lora(model, ("query",))
    with pytest.raises(ValueError, match="no LoRALinear"):
        merge_lora(tiny_bert())


def test_dropout_acts_in_training_mode_only(batch):
    model = add_lora(tiny_bert(), ("query", "value"), r=4, alpha=8, dropout=0.5)
    perturb_b(model)
    model.eval()
    assert torch.equal(hidden(model, batch), hidden(model, batch))
    model.train()
    torch.manual_seed(0)
    first = hidden(model, batch)
    torch.manual_seed(1)
    assert not torch.equal(first, hidden(model, batch))


def test_the_adapter_file_holds_only_the_trained_tensors_and_restores_the_model(tmp_path, batch):
    model = add_lora(tiny_bert(), ("query", "value"), r=4, alpha=8)
    perturb_b(model)
    expected = hidden(model, batch)
    path = save_adapter(model, tmp_path / "adapter" / "lora.safetensors")
    assert sorted(adapter_state_dict(model)) == sorted(
        n for n, _ in model.named_parameters() if ".lora_" in n
    )
    assert not list(path.parent.glob("*.tmp"))  # the atomic write left no temporary file
    full_size = sum(p.numel() * 4 for p in tiny_bert().parameters())
    assert path.stat().st_size < full_size / 10
    fresh = load_adapter(tiny_bert(), path)  # the base model, then the adapter's settings
    assert sorted(lora_layers(fresh)) == sorted(lora_layers(model))
    assert lora_layers(fresh)["encoder.layer.0.attention.self.query"].scaling == 2.0
    torch.testing.assert_close(hidden(fresh, batch), expected)


def test_an_adapter_for_another_model_is_refused(tmp_path):
    path = save_adapter(add_lora(tiny_bert(), ("query",), r=4), tmp_path / "a.safetensors")
    other = BertModel(BertConfig(**(TINY | {"hidden_size": 16, "intermediate_size": 32})))
    with pytest.raises(ValueError, match="does not fit this model"):
        load_adapter(other, path)
    with pytest.raises(FileNotFoundError, match="save_adapter"):
        load_adapter(tiny_bert(), tmp_path / "missing.safetensors")


def test_finetuning_memory_counts_weights_gradients_and_adamw_state():
    full = finetuning_memory(1000, 1000)
    assert full == {"weights": 4000, "gradients": 4000, "optimizer": 8000, "total": 16000}
    lora = finetuning_memory(1000, 10)
    assert lora["total"] == 4000 + 40 + 80
    assert finetuning_memory(1000, 1000, weight_bytes=2)["total"] == 8000
    with pytest.raises(ValueError, match="trainable"):
        finetuning_memory(10, 11)


def test_our_lora_layer_computes_what_peft_computes_from_the_same_a_and_b():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    reference = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))
    peft_model = get_peft_model(
        _copy(reference),
        LoraConfig(r=2, lora_alpha=4, target_modules=["0"], lora_dropout=0.0),
    )
    ours = add_lora(_copy(reference), ("0",), r=2, alpha=4)
    peft_layer = peft_model.base_model.model[0]
    with torch.no_grad():
        peft_layer.lora_B["default"].weight.normal_()
        ours[0].lora_A.copy_(peft_layer.lora_A["default"].weight)
        ours[0].lora_B.copy_(peft_layer.lora_B["default"].weight)
    x = torch.randn(4, 8)
    torch.testing.assert_close(ours(x), peft_model(x))


def _copy(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module)


def test_lora_wraps_the_courses_own_encoder(batch):
    transformer = pytest.importorskip("helpers.transformer")
    config = transformer.TransformerConfig(
        vocab_size=100, max_positions=64, d_model=32, n_heads=2, n_layers=2, d_ff=64
    )
    torch.manual_seed(0)
    model = transformer.BertEncoder(config).eval()

    def out(m: nn.Module) -> torch.Tensor:
        with torch.no_grad():
            return m(batch["input_ids"], batch["attention_mask"]).last_hidden_state

    before = out(model)
    add_lora(model, ("query", "value"), r=4, alpha=8)
    assert len(lora_layers(model)) == 2 * config.n_layers
    assert all(n.endswith((".query", ".value")) for n in lora_layers(model))
    assert torch.equal(out(model), before)
    perturb_b(model)
    adapted = out(model)
    merge_lora(model)
    torch.testing.assert_close(out(model), adapted, atol=1e-5, rtol=0)
