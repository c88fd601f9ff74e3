"""helpers.tensors: what the plotting and logging helpers accept, converted one way."""

import numpy as np
import pytest
import torch
from torch import nn

from helpers.tensors import named_tensors, to_numpy


def test_to_numpy_detaches_tensors_and_keeps_their_values():
    x = torch.tensor([[1.5, -2.0], [0.25, 3.0]], requires_grad=True)
    out = to_numpy(x * 2, "x")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[3.0, -4.0], [0.5, 6.0]])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_to_numpy_turns_half_precision_into_float32(dtype):
    out = to_numpy(torch.tensor([0.5, 1.0], dtype=dtype))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0.5, 1.0])


def test_to_numpy_keeps_integer_tensors_and_accepts_arrays_and_lists():
    assert to_numpy(torch.tensor([1, 2])).dtype == np.int64
    array = np.arange(3)
    assert to_numpy(array) is array  # nothing to convert
    np.testing.assert_array_equal(to_numpy([[1, 2], [3, 4]]), [[1, 2], [3, 4]])


def test_to_numpy_names_the_argument_it_cannot_convert():
    with pytest.raises(TypeError, match="y_pred must be a tensor, a NumPy array or a list"):
        to_numpy([[1, 2], [3]], "y_pred")  # ragged: NumPy cannot make an array of it


def test_named_tensors_of_a_model_are_its_named_parameters():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    expected = list(model.named_parameters())
    for source in (model, model.named_parameters(), dict(model.named_parameters())):
        pairs = named_tensors(source, "model")
        assert [n for n, _ in pairs] == [n for n, _ in expected]
        assert all(t is e for (_, t), (_, e) in zip(pairs, expected))


def test_named_tensors_of_a_state_dict_or_pairs_keep_their_order():
    state = {"b": torch.zeros(2), "a": torch.ones(1)}
    assert [n for n, _ in named_tensors(state)] == ["b", "a"]
    assert [n for n, _ in named_tensors(list(state.items()))] == ["b", "a"]


def test_named_tensors_skip_missing_gradients():
    model = nn.Linear(3, 2)
    model.bias.requires_grad_(False)
    model(torch.randn(4, 3)).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert [n for n, _ in named_tensors(grads, "gradients")] == ["weight"]


@pytest.mark.parametrize(
    "source, message",
    [
        ([torch.ones(2)], "found the item"),
        ({"w": [1.0, 2.0]}, "'w' is a list, not a tensor"),
        ([("w", torch.ones(1), "extra")], "found the item"),
    ],
)
def test_named_tensors_say_what_is_wrong_and_name_the_argument(source, message):
    with pytest.raises(TypeError, match=message) as error:
        named_tensors(source, "model_or_named_params")
    assert "model_or_named_params" in str(error.value)
