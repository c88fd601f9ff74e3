"""helpers.tb: writers on the runs/<experiment>/<run> layout, logging helpers, and reading the
logs back. Every test writes real event files into pytest's tmp_path and reads them back (with
read_scalars, or TensorBoard's own EventAccumulator), so "logged" means "TensorBoard shows it"."""

import matplotlib

matplotlib.use("Agg")  # headless: no window, no display needed

import re
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import tb
from helpers.device import make_generator
from helpers.tb import TensorBoardCallback
from helpers.train import fit


@pytest.fixture(autouse=True)
def _quiet_seeded_and_closed(monkeypatch):
    monkeypatch.setenv("COURSE_QUIET", "1")
    torch.manual_seed(0)  # enough here, and instant (seed_everything imports torch._inductor)
    yield
    plt.close("all")


def load_run(logdir) -> EventAccumulator:
    """Everything TensorBoard holds for one run folder (no sampling)."""
    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    return acc


def tiny_classifier():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def ACCURACY(y_true, y_pred):
    # fit's named metrics come from scikit-learn, which takes seconds to import
    return float(np.mean(y_true == y_pred))


def tiny_loaders(n_train=48, n_val=24):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_val, 4, generator=g)
    y = x[:, :3].argmax(dim=1)
    train = DataLoader(
        TensorDataset(x[:n_train], y[:n_train]),
        batch_size=16,
        shuffle=True,
        generator=make_generator(0),
    )
    val = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=16)
    return train, val


# ----------------------------------------------------------------------------- create_writer


def test_writer_logs_into_root_experiment_run(tmp_path):
    with tb.create_writer("digits", "lr_0.01", root=tmp_path) as writer:
        writer.add_scalar("loss/train", 1.0, 1)
    run_dir = tmp_path / "digits" / "lr_0.01"
    assert Path(writer.logdir) == run_dir
    assert [p.name.startswith("events.out.tfevents.") for p in run_dir.iterdir()] == [True]


def test_default_run_name_is_a_readable_timestamp(tmp_path):
    with tb.create_writer("digits", root=tmp_path) as writer:
        pass
    assert re.fullmatch(r"\d{8}-\d{6}", Path(writer.logdir).name)
    assert Path(writer.logdir).parent == tmp_path / "digits"


@pytest.mark.parametrize(
    "experiment, run",
    [("", "a"), ("digits", " "), ("../elsewhere", "a"), ("digits", "../../a"), ("/abs", "a")],
)
def test_names_that_are_empty_or_escape_the_runs_folder_are_refused(tmp_path, experiment, run):
    with pytest.raises(ValueError, match="experiment|run"):
        tb.create_writer(experiment, run, root=tmp_path)


def test_reusing_a_run_name_adds_to_the_run_unless_overwrite(tmp_path):
    for value in (1.0, 2.0):
        with tb.create_writer("e", "same", root=tmp_path) as writer:
            writer.add_scalar("x", value, 1)
    assert tb.read_scalars(tmp_path / "e")["value"].tolist() == [1.0, 2.0]
    with tb.create_writer("e", "same", root=tmp_path, overwrite=True) as writer:
        writer.add_scalar("x", 3.0, 1)
    assert tb.read_scalars(tmp_path / "e")["value"].tolist() == [3.0]


def test_two_writers_opened_on_one_run_at_once_keep_separate_event_files(tmp_path):
    # tensorboardX names event files after the second and the host: without a unique suffix
    # the second writer would overwrite the first one's file.
    first = tb.create_writer("e", "r", root=tmp_path)
    second = tb.create_writer("e", "r", root=tmp_path)
    first.add_scalar("first", 1.0, 1)
    second.add_scalar("second", 2.0, 1)
    first.close()
    second.close()
    assert len(list((tmp_path / "e" / "r").iterdir())) == 2
    assert sorted(tb.read_scalars(tmp_path / "e")["tag"]) == ["first", "second"]


def test_closing_the_writer_puts_every_event_on_disk(tmp_path):
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        for step in range(500):  # far more than tensorboardX's queue of 10 events
            writer.add_scalar("loss/train_step", 1.0 / (step + 1), step)
    assert len(tb.read_scalars(tmp_path / "e")) == 500


# ----------------------------------------------------------------------------- round trip


def test_round_trip_what_was_written_is_what_is_read(tmp_path):
    rng = np.random.default_rng(0)
    written = {"loss/train": rng.random(7), "accuracy/val": rng.random(7)}
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        for step in range(7):
            for tag, values in written.items():
                writer.add_scalar(tag, values[step], step * 10)
    df = tb.read_scalars(tmp_path / "e")
    assert list(df.columns) == list(tb.SCALAR_COLUMNS)
    for tag, values in written.items():
        rows = df[df["tag"] == tag]
        assert rows["run"].unique().tolist() == ["r"]
        assert rows["step"].tolist() == [0, 10, 20, 30, 40, 50, 60]
        # TensorBoard stores scalars as float32: equal to float32 precision, exactly
        np.testing.assert_array_equal(rows["value"].to_numpy(), values.astype(np.float32))


def test_reading_a_folder_with_several_runs_returns_each_run_by_name(tmp_path):
    for run, final in (("lr_0.1", 0.5), ("lr_0.01", 0.25), ("nested/seed_1", 0.75)):
        with tb.create_writer("sweep", run, root=tmp_path) as writer:
            writer.add_scalar("loss/val", 1.0, 1)
            writer.add_scalar("loss/val", final, 2)
    df = tb.read_scalars(tmp_path / "sweep")
    assert sorted(df["run"].unique()) == ["lr_0.01", "lr_0.1", "nested/seed_1"]
    last = df[df["step"] == 2].set_index("run")["value"].to_dict()
    assert last == {"lr_0.01": 0.25, "lr_0.1": 0.5, "nested/seed_1": 0.75}
    assert (df.groupby("run").size() == 2).all()


def test_grouped_scalars_are_sub_runs_named_run_main_tag_series(tmp_path):
    with tb.create_writer("e", "baseline", root=tmp_path) as writer:
        for epoch, (train, val) in enumerate([(0.9, 1.0), (0.5, 0.7)], start=1):
            writer.add_scalars("train_vs_val", {"train": train, "val": val}, epoch)
    df = tb.read_scalars(tmp_path / "e")
    assert set(df["run"]) == {"baseline/train_vs_val/train", "baseline/train_vs_val/val"}
    assert set(df["tag"]) == {"train_vs_val"}
    val = df[df["run"] == "baseline/train_vs_val/val"]
    np.testing.assert_allclose(val["value"], [1.0, 0.7], rtol=1e-6)


def test_reading_a_single_run_folder_names_the_run_dot(tmp_path):
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        writer.add_scalar("lr", 0.1, 1)
    assert tb.read_scalars(tmp_path / "e" / "r")["run"].tolist() == ["."]


def test_reading_a_missing_folder_or_one_without_event_files_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="No log folder"):
        tb.read_scalars(tmp_path / "nope")
    (tmp_path / "empty" / "run").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no TensorBoard event files"):
        tb.read_scalars(tmp_path / "empty")


def test_runs_that_logged_no_scalars_give_an_empty_frame_with_the_columns(tmp_path):
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        writer.add_text("note", "only text here", 0)
    df = tb.read_scalars(tmp_path / "e")
    assert df.empty and list(df.columns) == list(tb.SCALAR_COLUMNS)


def test_fit_history_and_the_read_back_epoch_scalars_agree(tmp_path):
    model, (train, val) = tiny_classifier(), tiny_loaders()
    with tb.create_writer("e", "fit", root=tmp_path) as writer:
        history = fit(
            model,
            train,
            val,
            epochs=3,
            metrics={"accuracy": ACCURACY},
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            callbacks=[TensorBoardCallback(writer)],
        )
    df = tb.read_scalars(tmp_path / "e")
    for tag, key in (("loss/val", "val_loss"), ("accuracy/train", "train_accuracy"), ("lr", "lr")):
        rows = df[df["tag"] == tag]
        assert rows["step"].tolist() == history["epoch"]
        np.testing.assert_array_equal(rows["value"], np.float32(history[key]))
    assert df[df["tag"] == "loss/train_step"]["step"].tolist() == list(range(1, 3 * len(train) + 1))


# ----------------------------------------------------------------------------- logging helpers


def test_log_histograms_writes_one_histogram_per_tensor_and_skips_missing_ones(tmp_path):
    model = tiny_classifier()
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        count = tb.log_histograms(writer, model, step=3)
        grads = {"0.weight": torch.full((8, 4), 0.5), "0.bias": None}
        assert tb.log_histograms(writer, grads, step=3, prefix="gradients") == 1
    acc = load_run(writer.logdir)
    names = [name for name, _ in model.named_parameters()]
    assert count == len(names)
    expected = [f"weights/{n}" for n in names] + ["gradients/0.weight"]
    assert sorted(acc.Tags()["histograms"]) == sorted(expected)
    weight = acc.Histograms("weights/2.weight")[0]
    assert weight.step == 3
    assert weight.histogram_value.num == model[2].weight.numel()
    assert weight.histogram_value.sum == pytest.approx(model[2].weight.sum().item(), abs=1e-4)


def test_histogram_callback_logs_the_last_steps_gradients_after_they_were_cleared(tmp_path):
    model = tiny_classifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        callback = tb.HistogramCallback(writer, model)
        for batch in range(3):
            loss = model(torch.randn(5, 4)).logsumexp(dim=1).mean()
            loss.backward()
            last_grad = model[0].weight.grad.clone()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)  # as fit does: no .grad left at epoch end
        callback.on_epoch_end(1, {"train_loss": loss.item()}, model)
        callback.remove()
    assert model[0].weight.grad is None
    logged = load_run(writer.logdir).Histograms("gradients/0.weight")
    assert [h.step for h in logged] == [1]
    assert logged[0].histogram_value.sum == pytest.approx(last_grad.sum().item(), abs=1e-5)
    assert logged[0].histogram_value.max == pytest.approx(last_grad.max().item(), abs=1e-6)


def test_histogram_callback_in_fit_logs_weights_and_gradients_every_n_epochs(tmp_path):
    model, (train, val) = tiny_classifier(), tiny_loaders()
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        callback = tb.HistogramCallback(writer, model, every=2)
        fit(
            model,
            train,
            val,
            epochs=4,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            metrics={"accuracy": ACCURACY},
            callbacks=[TensorBoardCallback(writer), callback],
        )
    acc = load_run(writer.logdir)
    tags = acc.Tags()["histograms"]
    assert {"weights/0.weight", "gradients/0.weight", "weights/2.bias", "gradients/2.bias"} <= set(
        tags
    )
    for tag in tags:
        assert [h.step for h in acc.Histograms(tag)] == [2, 4]
    assert "loss/val" in acc.Tags()["scalars"]  # the two callbacks share the writer


def test_histogram_callback_detaches_its_hooks_when_fit_ends_and_reattaches_for_the_next(tmp_path):
    model, (train, val) = tiny_classifier(), tiny_loaders()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        callback = tb.HistogramCallback(writer, model)
        fit(
            model,
            train,
            val,
            epochs=1,
            optimizer=optimizer,
            metrics={"accuracy": ACCURACY},
            callbacks=[callback],
        )
        model(torch.randn(2, 4)).sum().backward()  # after fit: no hook keeps this gradient
        assert callback.last_gradients == {}
        model.zero_grad(set_to_none=True)
        fit(
            model,
            train,
            val,
            epochs=1,
            optimizer=optimizer,
            metrics={"accuracy": ACCURACY},
            callbacks=[callback],
        )  # the same callback again: epoch 1 of the second fit
    logged = load_run(writer.logdir).Histograms("gradients/0.weight")
    assert [h.step for h in logged] == [1, 1]


def test_removing_the_histogram_callback_detaches_its_hooks():
    model = tiny_classifier()
    callback = tb.HistogramCallback(writer=None, model=model)
    callback.remove()
    model(torch.randn(2, 4)).sum().backward()
    assert callback.last_gradients == {}


def test_histogram_callback_refuses_a_bad_interval():
    with pytest.raises(ValueError, match="every"):
        tb.HistogramCallback(writer=None, model=tiny_classifier(), every=0)


def test_log_confusion_matrix_logs_an_image_and_closes_the_figure(tmp_path):
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        tb.log_confusion_matrix(writer, [0, 1, 2, 2], [0, 2, 2, 2], labels=["a", "b", "c"], step=4)
    images = load_run(writer.logdir).Images("confusion_matrix")
    assert [i.step for i in images] == [4]
    assert images[0].width > 100 and images[0].encoded_image_string.startswith(b"\x89PNG")
    assert plt.get_fignums() == []


def five_thumbnails():
    # five 4x4 grey images, each a different shade, so the sprite shows which went where
    return torch.stack([torch.full((1, 4, 4), (i + 1) / 8) for i in range(5)])


def test_log_embedding_writes_vectors_labels_and_a_square_sprite_for_the_projector(tmp_path):
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        folder = tb.log_embedding(
            writer,
            torch.randn(5, 3),
            torch.tensor([0, 1, 1, 0, 2]),
            step=7,
            tag="features",
            images=five_thumbnails(),
            label_names=["a", "b", "c"],
        )
    assert folder == Path(writer.logdir) / "00007" / "features"
    assert (folder / "metadata.tsv").read_text().split() == ["a", "b", "b", "a", "c"]
    assert len((folder / "tensors.tsv").read_text().splitlines()) == 5
    config = (Path(writer.logdir) / "projector_config.pbtxt").read_text()
    assert "00007/features/sprite.png" in config
    sprite = np.asarray(Image.open(folder / "sprite.png"))
    # 5 thumbnails: 3 per row (ceil of sqrt 5), a 12x12 square, filled row by row
    assert sprite.shape == (12, 12, 3)
    for i in range(5):
        row, col = divmod(i, 3)
        assert (
            sprite[4 * row : 4 * row + 4, 4 * col : 4 * col + 4] == round(255 * (i + 1) / 8)
        ).all()
    assert (sprite[4:8, 8:] == 0).all() and (sprite[8:] == 0).all(), "unused places are black"


def test_log_embedding_replaces_the_sprite_tensorboardx_pads_with_uninitialised_memory(
    tmp_path, monkeypatch
):
    import tensorboardX.writer

    def make_sprite_as_tensorboardx_sometimes_does(label_img, save_path):
        # tensorboardX fills the square with np.ndarray(...), i.e. whatever memory held
        noise = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(noise).save(Path(save_path) / "sprite.png")
        _ = np.float64(1e308) * 10  # the "overflow encountered in multiply" it then prints

    monkeypatch.setattr(
        tensorboardX.writer, "make_sprite", make_sprite_as_tensorboardx_sometimes_does
    )
    with tb.create_writer("e", "r", root=tmp_path) as writer, warnings.catch_warnings():
        warnings.simplefilter("error")
        folder = tb.log_embedding(
            writer, torch.randn(5, 3), [0, 1, 1, 0, 2], step=0, tag="f", images=five_thumbnails()
        )
    assert (np.asarray(Image.open(folder / "sprite.png"))[8:] == 0).all()


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"labels": [0, 1]}, "5 vectors but 2 labels"),
        ({"features": torch.randn(5)}, "must be \\(N, D\\)"),
        ({"images": torch.rand(5, 1, 4, 3)}, "square thumbnails"),
        ({"images": torch.rand(4, 1, 4, 4)}, "N = 5"),
        ({"images": 255 * torch.rand(5, 3, 4, 4)}, "values in \\[0, 1\\]"),
        ({"tag": "test/features"}, "becomes a folder name"),
    ],
)
def test_log_embedding_says_what_is_wrong_with_its_input(tmp_path, kwargs, error):
    args = {"features": torch.randn(5, 3), "labels": [0, 1, 1, 0, 2], "step": 0, "tag": "f"}
    args |= kwargs
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        with pytest.raises(ValueError, match=error):
            tb.log_embedding(writer, **args)


def test_log_embedding_refuses_to_log_twice_under_one_step_and_tag(tmp_path):
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        tb.log_embedding(writer, torch.randn(5, 3), [0, 1, 1, 0, 2], step=1, tag="f")
        with pytest.raises(FileExistsError, match="its own step or tag"):
            tb.log_embedding(writer, torch.randn(5, 3), [0, 1, 1, 0, 2], step=1, tag="f")
        tb.log_embedding(writer, torch.randn(5, 3), [0, 1, 1, 0, 2], step=2, tag="f")


def test_log_hparams_writes_a_session_for_the_hparams_tab_and_metric_scalars(tmp_path):
    with tb.create_writer("sweep", "lr_0.01", root=tmp_path) as writer:
        writer.add_scalar("loss/val", 0.5, 3)
        tb.log_hparams(
            writer,
            {"lr": 0.01, "optimizer": "adam", "augment": True},
            {"val_loss": 0.5, "val_accuracy": torch.tensor(0.875)},
            step=3,
        )
    df = tb.read_scalars(tmp_path / "sweep")
    assert set(df["run"]) == {"lr_0.01"}  # in the run itself, not in a sub-run
    metrics = df[df["tag"].str.startswith("hparam/")].set_index("tag")
    assert metrics["value"].to_dict() == {"hparam/val_accuracy": 0.875, "hparam/val_loss": 0.5}
    assert metrics["step"].tolist() == [3, 3]
    content = load_run(writer.logdir).PluginTagToContent("hparams")
    session = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = session.session_start_info.hparams
    assert hparams["lr"].number_value == 0.01
    assert hparams["optimizer"].string_value == "adam"
    assert hparams["augment"].bool_value is True


def test_log_hparams_on_a_closed_writer_says_to_log_before_closing(tmp_path):
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        pass
    with pytest.raises(ValueError, match="closed"):
        tb.log_hparams(writer, {"lr": 0.1}, {"val_loss": 0.2})


@pytest.mark.parametrize(
    "hparams, metrics, error",
    [
        ({"layers": [1, 2]}, {"val_loss": 0.1}, TypeError),
        ({"lr": 0.1}, {}, ValueError),
    ],
)
def test_log_hparams_refuses_values_tensorboard_cannot_store(tmp_path, hparams, metrics, error):
    with tb.create_writer("e", "r", root=tmp_path) as writer:
        with pytest.raises(error):
            tb.log_hparams(writer, hparams, metrics)


# ----------------------------------------------------------------------------- smooth, plot_scalars


def test_smoothing_weight_zero_returns_the_raw_values():
    values = [3.0, 1.0, 4.0, 1.0, 5.0]
    np.testing.assert_array_equal(tb.smooth(values, 0.0), values)


def test_smoothing_is_a_debiased_exponential_moving_average():
    values, w = np.array([2.0, 0.0, 1.0]), 0.6
    ema = [(1 - w) * 2.0, w * (1 - w) * 2.0 + (1 - w) * 0.0]
    ema.append(w * ema[1] + (1 - w) * 1.0)
    expected = [e / (1 - w ** (i + 1)) for i, e in enumerate(ema)]
    np.testing.assert_allclose(tb.smooth(values, w), expected)
    assert tb.smooth(values, w)[0] == 2.0  # debiased: the first point is not pulled to zero
    np.testing.assert_allclose(tb.smooth([0.7] * 20, 0.9), 0.7)


def test_smoothing_passes_non_finite_values_through_and_skips_them():
    out = tb.smooth([1.0, np.nan, 1.0], 0.5)
    assert np.isnan(out[1]) and out[0] == 1.0 and out[2] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weight"):
        tb.smooth([1.0], 1.0)


def scalar_frame():
    rows = [("a", "loss/train", s, 1.0 / s, 0.0) for s in range(1, 5)]
    rows += [("b", "loss/train", s, 2.0 / s, 0.0) for s in range(1, 5)]
    rows += [("a", "lr", s, 0.1, 0.0) for s in range(1, 5)]
    return pd.DataFrame(rows, columns=list(tb.SCALAR_COLUMNS))


def test_plot_scalars_draws_one_panel_per_tag_and_one_line_per_run():
    df = scalar_frame()
    fig = tb.plot_scalars(df, title="Two runs")
    visible = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in visible] == ["loss/train", "lr"]
    assert all(ax.get_xlabel() == "step" and ax.get_ylabel() for ax in visible)
    assert fig.get_suptitle() == "Two runs"
    lines = {line.get_label(): line for line in visible[0].get_lines()}
    assert set(lines) == {"a", "b"}
    np.testing.assert_allclose(lines["b"].get_ydata(), [2.0, 1.0, 2 / 3, 0.5])
    np.testing.assert_array_equal(lines["b"].get_xdata(), [1, 2, 3, 4])
    assert [line.get_label() for line in visible[1].get_lines()] == ["a"]
    # a run keeps its colour in every panel
    assert lines["a"].get_color() == visible[1].get_lines()[0].get_color()


def test_plot_scalars_selects_tags_and_runs_in_the_given_order():
    fig = tb.plot_scalars(scalar_frame(), tags=["lr", "loss/train"], runs=["b", "a"])
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["lr", "loss/train"]
    assert [line.get_label() for line in fig.axes[1].get_lines()] == ["b", "a"]


def test_plot_scalars_with_smoothing_draws_the_raw_values_faintly_behind():
    fig = tb.plot_scalars(scalar_frame(), tags=["loss/train"], runs=["a"], smoothing=0.6)
    raw, smoothed = fig.axes[0].get_lines()
    np.testing.assert_allclose(raw.get_ydata(), [1.0, 0.5, 1 / 3, 0.25])
    np.testing.assert_allclose(smoothed.get_ydata(), tb.smooth([1.0, 0.5, 1 / 3, 0.25], 0.6))
    assert raw.get_alpha() < 1 and smoothed.get_label() == "a"


def test_plot_scalars_labels_the_x_axis_as_asked():
    fig = tb.plot_scalars(scalar_frame(), tags=["lr", "loss/train"], xlabel="epoch")
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_visible()] == ["epoch", "epoch"]
    ticks = fig.axes[0].get_xticks()
    assert np.array_equal(ticks, np.round(ticks)), ticks  # steps are whole numbers


def test_plot_scalars_names_the_known_tags_when_asked_for_an_unknown_one():
    with pytest.raises(KeyError, match="loss/train"):
        tb.plot_scalars(scalar_frame(), tags=["loss/val"])
    with pytest.raises(TypeError, match="read_scalars"):
        tb.plot_scalars(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="Nothing to plot"):
        tb.plot_scalars(scalar_frame(), tags=["lr"], runs=["b"])
