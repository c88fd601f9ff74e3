"""helpers.train: the training loop, its options, checkpoints and its errors.

Every test trains a tiny model on a tiny synthetic problem for a few steps, so the whole file
runs in seconds. The subprocess tests (SIGKILL and resume, torchrun) live in
test_train_checkpoint.py and test_train_distributed.py.
"""

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers import train as tr
from helpers.device import make_generator, seed_everything
from helpers.tb import TensorBoardCallback
from helpers.train import (
    Callback,
    EarlyStopping,
    LivePlot,
    ProgressBar,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
)
from helpers.train import callbacks as cbs
from helpers.train import checkpoint as ckpt_module


@pytest.fixture(autouse=True)
def _quiet_and_seeded(monkeypatch):
    monkeypatch.setenv("COURSE_QUIET", "1")
    monkeypatch.delenv("CI", raising=False)
    seed_everything(0)


def make_data(n=128, features=8, seed=0):
    """Two linearly separable classes: label = whether the features sum to more than 0."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    return x, (x.sum(dim=1) > 0).long()


def loaders(n_train=128, n_val=64, batch_size=16, shuffle=True):
    x, y = make_data(n_train + n_val)
    train = DataLoader(
        TensorDataset(x[:n_train], y[:n_train]),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=make_generator(0),
    )
    val = DataLoader(TensorDataset(x[n_train:], y[n_train:]), batch_size=32)
    return train, val


def mlp(features=8, classes=2, dropout=0.0):
    return nn.Sequential(
        nn.Linear(features, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, classes)
    )


def adam(model, lr=1e-2):
    return torch.optim.Adam(model.parameters(), lr=lr)


class RecordingWriter:
    """Stands in for a tensorboardX SummaryWriter: remembers every add_scalar call."""

    def __init__(self):
        self.scalars = []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, float(value), int(step)))

    def flush(self):
        pass

    def tags(self):
        return {tag for tag, _, _ in self.scalars}


# --------------------------------------------------------------------------- fit and history


def test_fit_learns_a_separable_problem():
    train, val = loaders()
    model = mlp()
    history = fit(model, train, val, epochs=8, optimizer=adam(model))
    assert history["val_accuracy"][-1] > 0.9
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_history_has_one_value_per_epoch_under_the_documented_keys():
    train, val = loaders()
    model = mlp()
    history = fit(model, train, val, epochs=3, optimizer=adam(model), metrics=("accuracy", "f1"))
    assert set(history) == {
        "epoch",
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
        "train_f1",
        "val_f1",
        "lr",
        "seconds",
    }
    assert history["epoch"] == [1, 2, 3]
    assert all(len(values) == 3 for values in history.values())
    assert all(s > 0 for s in history["seconds"])


def test_without_a_validation_loader_the_history_has_no_val_keys():
    train, _ = loaders()
    model = mlp()
    history = fit(model, train, epochs=2, optimizer=adam(model))
    assert not [k for k in history if k.startswith("val_")]
    assert len(history["train_loss"]) == 2


def test_train_one_epoch_returns_the_loss_metrics_and_the_number_of_steps():
    train, _ = loaders(n_train=100, batch_size=16)  # 7 batches
    model = mlp()
    stats = tr.train_one_epoch(model, train, adam(model), nn.CrossEntropyLoss())
    assert set(stats) == {"loss", "accuracy", "steps"}
    assert stats["steps"] == 7


def test_the_epoch_loss_is_the_mean_over_samples_not_over_batches():
    x, y = make_data(20)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)  # batches of 16 and 4
    model = mlp()
    result = evaluate(model, loader, nn.CrossEntropyLoss())
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(x), y).item()
    assert result["loss"] == pytest.approx(expected, rel=1e-5)


def test_metrics_are_scikit_learn_scores_of_the_predictions():
    _, val = loaders()
    model = mlp()
    result = evaluate(model, val, metrics=("accuracy", "f1"))
    y_true, y_pred = predict(model, val)
    assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert result["f1"] == pytest.approx(f1_score(y_true, y_pred))


def test_f1_of_a_three_class_model_is_macro_even_when_an_epoch_shows_two_classes():
    class OnlyZeroOrOne(nn.Module):  # three outputs, but never predicts class 2
        def forward(self, x):
            return torch.stack([-x[:, 0], x[:, 0], torch.full_like(x[:, 0], -9.0)], dim=1)

    x, y = make_data(64)
    y[:5] = 1 - y[:5]  # a few mistakes, so that binary and macro F1 differ
    result = evaluate(OnlyZeroOrOne(), [(x, y)], metrics=("f1", "precision", "recall"))
    y_true, y_pred = y.numpy(), (x[:, 0] > 0).long().numpy()
    macro = {"labels": [0, 1, 2], "average": "macro", "zero_division": 0}
    assert result["f1"] == pytest.approx(f1_score(y_true, y_pred, **macro))
    assert result["precision"] == pytest.approx(precision_score(y_true, y_pred, **macro))
    assert result["recall"] == pytest.approx(recall_score(y_true, y_pred, **macro))
    assert result["f1"] != pytest.approx(f1_score(y_true, y_pred))  # not the binary score


def test_custom_metrics_can_be_passed_as_a_dict():
    _, val = loaders()
    result = evaluate(mlp(), val, metrics={"errors": lambda t, p: float((t != p).sum())})
    assert set(result) == {"loss", "errors"}
    assert result["errors"] == int(result["errors"]) >= 0


def test_an_unknown_metric_name_is_refused_with_the_known_names():
    train, _ = loaders()
    model = mlp()
    with pytest.raises(ValueError, match="Unknown metric.*accuracy"):
        fit(model, train, epochs=1, optimizer=adam(model), metrics=("acuracy",))


def test_predict_returns_labels_and_argmax_predictions():
    _, val = loaders()
    model = mlp()
    y_true, y_pred = predict(model, val)
    x, y = val.dataset.tensors
    with torch.no_grad():
        assert np.array_equal(y_pred, model(x).argmax(1).numpy())
    assert np.array_equal(y_true, y.numpy())


def test_a_single_output_with_bce_is_scored_by_the_sign_of_the_logit():
    x, y = make_data(64)
    loader = DataLoader(TensorDataset(x, y.float().unsqueeze(1)), batch_size=16)
    model = mlp(classes=1)
    history = fit(
        model, loader, loader, epochs=6, optimizer=adam(model), loss_fn=nn.BCEWithLogitsLoss()
    )
    assert history["val_accuracy"][-1] > 0.8


# --------------------------------------------------------------------------- batch formats


class TinyHFClassifier(nn.Module):
    """Takes input_ids and attention_mask like a Hugging Face model and returns an object with
    .logits; its forward has no `labels` argument, so passing labels would fail."""

    def __init__(self, vocab=20, classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8, padding_idx=0)
        self.head = nn.Linear(8, classes)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.unsqueeze(-1).float()
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return SimpleNamespace(logits=self.head(pooled))


def dict_batches(n_batches=6, batch_size=8):
    g = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(n_batches):
        labels = torch.randint(0, 2, (batch_size,), generator=g)
        ids = torch.randint(2, 10, (batch_size, 5), generator=g) + 10 * labels[:, None] // 2
        ids[:, 4] = 0  # one padding position
        batches.append({"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": labels})
    return batches


def test_hugging_face_style_dict_batches_are_passed_as_keywords_and_logits_used():
    batches = dict_batches()
    model = TinyHFClassifier()
    history = fit(model, batches, batches, epochs=15, optimizer=adam(model, 5e-2))
    assert history["val_accuracy"][-1] > 0.9


def test_tuple_inputs_are_unpacked_into_positional_arguments():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.bag = nn.EmbeddingBag(20, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, tokens, offsets):
            return self.head(self.bag(tokens, offsets))

    tokens, offsets, labels = (
        torch.tensor([1, 2, 3, 4, 5]),
        torch.tensor([0, 2]),
        torch.tensor([0, 1]),
    )
    result = evaluate(TwoInputs(), [((tokens, offsets), labels)])
    assert set(result) == {"loss", "accuracy"}


def test_a_dict_batch_without_labels_is_refused():
    batch = dict_batches(1)[0]
    batch["label"] = batch.pop("labels")
    with pytest.raises(ValueError, match="'labels' key"):
        evaluate(TinyHFClassifier(), [batch])


# --------------------------------------------------------------------------- options


def test_a_batch_scheduler_steps_after_every_optimiser_step():
    train, _ = loaders(n_train=64, batch_size=16)  # 4 steps per epoch
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(
        model, train, epochs=2, optimizer=optimizer, scheduler=scheduler, scheduler_step="batch"
    )
    assert history["lr"] == [1.0, 0.5**4]
    assert optimizer.param_groups[0]["lr"] == 0.5**8


def test_an_epoch_scheduler_steps_once_per_epoch():
    train, _ = loaders(n_train=64, batch_size=16)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(
        model, train, epochs=3, optimizer=optimizer, scheduler=scheduler, scheduler_step="epoch"
    )
    assert history["lr"] == [1.0, 0.5, 0.25]


@pytest.mark.parametrize("step", [None, "step"])
def test_a_scheduler_without_a_clear_scheduler_step_is_refused_with_the_two_meanings(step):
    train, _ = loaders(n_train=64, batch_size=16)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2)  # meant per epoch
    with pytest.raises(
        ValueError,
        match="scheduler_step='batch'.*every optimiser step.*"
        "scheduler_step='epoch'.*once per epoch",
    ):
        fit(model, train, epochs=2, optimizer=optimizer, scheduler=scheduler, scheduler_step=step)
    assert optimizer.param_groups[0]["lr"] == 1.0  # refused before any training


def test_reduce_on_plateau_is_stepped_every_epoch_with_the_validation_loss():
    train, val = loaders(n_train=32)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5)

    def flat_loss(logits, targets):  # the val loss never improves
        return logits.sum() * 0.0

    history = fit(
        model, train, val, epochs=3, optimizer=optimizer, scheduler=scheduler, loss_fn=flat_loss
    )
    assert history["lr"] == [1.0, 1.0, 0.5]


def test_gradient_clipping_bounds_the_size_of_an_update():
    x, y = make_data(16)
    loader = [(x * 100, y)]  # huge inputs, huge gradients
    model = mlp()
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    fit(model, loader, epochs=1, optimizer=optimizer, grad_clip=0.01)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-3)


def test_without_clipping_the_same_update_is_much_larger():
    x, y = make_data(16)
    model = mlp()
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    fit(model, [(x * 100, y)], epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=1.0))
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() > 1.0


def test_accumulating_two_half_batches_equals_one_full_batch():
    x, y = make_data(64)
    data = TensorDataset(x, y)
    full, half = mlp(), mlp()
    half.load_state_dict(full.state_dict())
    fit(
        full,
        DataLoader(data, batch_size=16),
        epochs=2,
        optimizer=torch.optim.SGD(full.parameters(), lr=0.5),
    )
    fit(
        half,
        DataLoader(data, batch_size=8),
        epochs=2,
        accumulation_steps=2,
        optimizer=torch.optim.SGD(half.parameters(), lr=0.5),
    )
    for a, b in zip(full.parameters(), half.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_accumulation_takes_fewer_optimiser_steps_and_a_last_partial_one():
    train, _ = loaders(n_train=80, batch_size=16)  # 5 batches -> steps after 2, 4 and 5
    model = mlp()
    stats = tr.train_one_epoch(model, train, adam(model), accumulation_steps=2)
    assert stats["steps"] == 3


@pytest.mark.parametrize("amp, dtype", [("bf16", torch.bfloat16), (True, torch.float32)])
def test_on_the_cpu_amp_true_keeps_float32_and_bf16_must_be_asked_for(amp, dtype):
    train, _ = loaders(n_train=32)
    model = mlp()
    seen = []
    model[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    history = fit(model, train, epochs=1, optimizer=adam(model), amp=amp)
    assert set(seen) == {dtype}
    assert model[0].weight.dtype == torch.float32  # the weights stay in float32
    assert np.isfinite(history["train_loss"][0])


def test_fp16_uses_a_grad_scaler_that_is_saved_in_the_checkpoint(tmp_path):
    train, _ = loaders(n_train=32)
    model = mlp()
    fit(
        model,
        train,
        epochs=1,
        optimizer=adam(model),
        amp="fp16",
        checkpoint_path=tmp_path / "ckpt.pt",
    )
    ckpt = load_checkpoint(tmp_path / "ckpt.pt")
    assert ckpt["scaler"] is not None and "scale" in ckpt["scaler"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_amp_trains_on_a_gpu():
    train, val = loaders()
    model = mlp().cuda()
    history = fit(model, train, val, epochs=4, optimizer=adam(model), amp=True)
    assert history["val_accuracy"][-1] > 0.8


def test_early_stopping_ends_training_after_patience_epochs_without_improvement():
    train, val = loaders(n_train=32)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the val loss never improves
    history = fit(
        model, train, val, epochs=10, optimizer=optimizer, callbacks=[EarlyStopping(patience=2)]
    )
    assert history["epoch"] == [1, 2, 3]


def test_early_stopping_rule():
    rule = EarlyStopping(patience=2, min_delta=0.01)
    assert not rule.should_stop([1.0, 0.9, 0.8])
    assert rule.should_stop([1.0, 0.9, 0.895, 0.891])  # improvements smaller than min_delta
    accuracy = EarlyStopping(patience=2, monitor="val_accuracy")  # not a loss: maximised
    assert accuracy.should_stop([0.5, 0.7, 0.6, 0.69])
    assert not accuracy.should_stop([0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


def test_monitoring_a_value_fit_does_not_record_is_refused():
    train, _ = loaders(n_train=32)
    model = mlp()
    with pytest.raises(KeyError, match="monitors 'val_loss'.*train_loss.*val_loader"):
        fit(model, train, epochs=2, optimizer=adam(model), callbacks=[EarlyStopping(1)])


def test_the_tensorboard_callback_logs_the_documented_tags_per_epoch_and_per_step():
    train, val = loaders(n_train=64, batch_size=16)  # 4 batches, 2 steps per epoch
    model = mlp()
    writer = RecordingWriter()
    fit(
        model,
        train,
        val,
        epochs=2,
        optimizer=adam(model),
        accumulation_steps=2,
        callbacks=[TensorBoardCallback(writer)],
    )
    assert writer.tags() == {
        "loss/train",
        "loss/val",
        "accuracy/train",
        "accuracy/val",
        "lr",
        "loss/train_step",
    }
    epoch_steps = [s for tag, _, s in writer.scalars if tag == "loss/val"]
    step_steps = [s for tag, _, s in writer.scalars if tag == "loss/train_step"]
    assert epoch_steps == [1, 2]
    assert step_steps == [1, 2, 3, 4]


def test_the_logged_epoch_values_are_the_history():
    train, val = loaders(n_train=32)
    model = mlp()
    writer = RecordingWriter()
    history = fit(
        model, train, val, epochs=2, optimizer=adam(model), callbacks=[TensorBoardCallback(writer)]
    )
    logged = [v for tag, v, _ in writer.scalars if tag == "loss/train"]
    assert logged == pytest.approx(history["train_loss"])


class Recorder(Callback):
    """Writes down every hook fit calls, in order."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def on_fit_start(self, model, history):
        self.calls.append(("fit_start", len(history)))

    def on_epoch_start(self, epoch, model):
        self.calls.append(("epoch_start", epoch))

    def on_step_end(self, step, loss):
        assert loss.ndim == 0 and not loss.requires_grad
        self.calls.append(("step", step))

    def on_epoch_end(self, epoch, row, model):
        self.calls.append(("epoch_end", epoch))
        return epoch == self.stop_after

    def on_fit_end(self, model, history):
        self.calls.append(("fit_end", len(history["epoch"])))


def test_the_callback_hooks_run_in_the_documented_order():
    train, _ = loaders(n_train=32, batch_size=16)  # 2 steps per epoch
    model = mlp()
    recorder = Recorder()
    fit(model, train, epochs=2, optimizer=adam(model), callbacks=[recorder])
    assert recorder.calls == [
        ("fit_start", 0),
        ("epoch_start", 1),
        ("step", 1),
        ("step", 2),
        ("epoch_end", 1),
        ("epoch_start", 2),
        ("step", 3),
        ("step", 4),
        ("epoch_end", 2),
        ("fit_end", 2),
    ]


def test_a_callback_returning_true_stops_training_and_every_callback_still_runs():
    train, _ = loaders(n_train=32)
    model = mlp()
    stopper, other = Recorder(stop_after=2), Recorder()
    history = fit(model, train, epochs=5, optimizer=adam(model), callbacks=[stopper, other])
    assert history["epoch"] == [1, 2]
    assert other.calls[-2:] == [("epoch_end", 2), ("fit_end", 2)]


def test_the_step_loss_is_the_mean_of_the_accumulated_batches():
    x, y = make_data(32)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)  # 4 batches, 2 steps
    model = mlp()
    losses = []

    class KeepLoss(Callback):
        def on_step_end(self, step, loss):
            losses.append(loss.item())

    stats = tr.train_one_epoch(
        model,
        loader,
        torch.optim.SGD(model.parameters(), lr=0.0),
        accumulation_steps=2,
        callbacks=[KeepLoss()],
    )
    assert len(losses) == 2
    assert sum(losses) / 2 == pytest.approx(stats["loss"], rel=1e-6)  # equal-sized batches


def test_something_that_is_not_a_callback_is_refused_with_a_hint():
    train, _ = loaders(n_train=32)
    model = mlp()
    with pytest.raises(TypeError, match=r"callbacks=\[HistogramCallback"):
        fit(model, train, epochs=1, optimizer=adam(model), callbacks=[42])


def test_callbacks_are_called_after_every_epoch_with_the_row_and_the_model():
    train, val = loaders(n_train=32)
    model = mlp()
    calls = []
    history = fit(
        model,
        train,
        val,
        epochs=2,
        optimizer=adam(model),
        callbacks=[lambda epoch, row, m: calls.append((epoch, row, m))],
    )
    assert [c[0] for c in calls] == [1, 2]
    assert calls[1][1]["val_loss"] == history["val_loss"][1]
    assert calls[0][2] is model


def test_the_sampler_is_told_the_epoch_so_its_shuffle_changes():
    x, y = make_data(32)

    class EpochAwareBatches:
        def __init__(self):
            self.epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def __iter__(self):
            return iter([list(range(0, 16)), list(range(16, 32))])

        def __len__(self):
            return 2

    sampler = EpochAwareBatches()
    loader = DataLoader(TensorDataset(x, y), batch_sampler=sampler)
    model = mlp()
    fit(model, loader, epochs=3, optimizer=adam(model))
    assert sampler.epochs == [0, 1, 2]


# --------------------------------------------------------------------------- quiet mode and plots


@pytest.mark.parametrize(
    "env, quiet",
    [
        ({}, False),
        ({"COURSE_QUIET": "1"}, True),
        ({"CI": "true"}, True),
        ({"COURSE_QUIET": "0"}, False),
    ],
)
def test_is_quiet_follows_course_quiet_and_ci(monkeypatch, env, quiet):
    monkeypatch.delenv("COURSE_QUIET", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert tr.is_quiet() is quiet


def test_the_progress_bar_shows_unless_quiet(monkeypatch, capsys):
    train, _ = loaders(n_train=32)
    model = mlp()
    monkeypatch.delenv("COURSE_QUIET")
    fit(model, train, epochs=1, optimizer=adam(model), callbacks=[ProgressBar()])
    err = capsys.readouterr().err
    assert "epoch 1" in err
    monkeypatch.setenv("CI", "1")
    fit(model, train, epochs=1, optimizer=adam(model), callbacks=[ProgressBar()])
    assert capsys.readouterr().err == ""


def test_without_a_progress_callback_fit_prints_nothing(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_QUIET")
    train, _ = loaders(n_train=32)
    model = mlp()
    fit(model, train, epochs=1, optimizer=adam(model))
    assert capsys.readouterr() == ("", "")


def test_the_live_plot_redraws_the_history_after_every_epoch_in_a_notebook(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.delenv("COURSE_QUIET")
    monkeypatch.setattr(cbs, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda fig: shown.append(fig.get_suptitle()))
    monkeypatch.setattr(IPython.display, "clear_output", lambda wait=False: None)
    train, val = loaders(n_train=32)
    model = mlp()
    fit(model, train, val, epochs=2, optimizer=adam(model), callbacks=[LivePlot()])
    assert shown == ["Training history (epoch 1)", "Training history (epoch 2)"]


def test_the_live_plot_is_silent_in_quiet_mode(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(cbs, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    train, _ = loaders(n_train=32)
    model = mlp()
    fit(model, train, epochs=1, optimizer=adam(model), callbacks=[LivePlot()])
    assert shown == []


# --------------------------------------------------------------------------- checkpoints


def test_a_checkpoint_restores_model_optimizer_scheduler_epoch_and_history(tmp_path):
    train, _ = loaders(n_train=32)
    model = mlp()
    optimizer = adam(model)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.9)
    history = fit(
        model, train, epochs=2, optimizer=optimizer, scheduler=scheduler, scheduler_step="epoch"
    )
    path = save_checkpoint(tmp_path / "c.pt", model, optimizer, scheduler, epoch=2, history=history)

    model2 = mlp()
    optimizer2 = adam(model2)
    scheduler2 = torch.optim.lr_scheduler.StepLR(optimizer2, step_size=1, gamma=0.9)
    ckpt = load_checkpoint(path, model2, optimizer2, scheduler2)
    assert ckpt["epoch"] == 2 and ckpt["history"] == history
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    assert optimizer2.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    assert scheduler2.last_epoch == scheduler.last_epoch


def test_fit_writes_a_checkpoint_after_every_epoch(tmp_path, monkeypatch):
    saved = []
    real_save = ckpt_module.save_checkpoint
    monkeypatch.setattr(
        ckpt_module,
        "save_checkpoint",
        lambda *a, **k: saved.append(k["epoch"]) or real_save(*a, **k),
    )
    train, _ = loaders(n_train=32)
    model = mlp()
    path = tmp_path / "ckpt.pt"
    fit(model, train, epochs=2, optimizer=adam(model), checkpoint_path=path)
    assert saved == [1, 2]
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 2 and ckpt["history"]["epoch"] == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary files left


def test_resuming_gives_the_same_weights_and_history_as_one_uninterrupted_run(tmp_path):
    def run(epochs, resume=None):
        seed_everything(0)
        train, val = loaders()
        model = mlp(dropout=0.3)  # dropout and shuffling both draw random numbers
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
        history = fit(
            model,
            train,
            val,
            epochs=epochs,
            optimizer=optimizer,
            scheduler=scheduler,
            scheduler_step="epoch",
            checkpoint_path=tmp_path / ("resumed.pt" if resume or epochs == 2 else "ref.pt"),
            resume=resume,
        )
        return model, history

    reference, ref_history = run(4)
    run(2)
    seed_everything(123)  # a different global state: resume must restore the saved one
    resumed, res_history = run(4, resume=tmp_path / "resumed.pt")
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    ref_history.pop("seconds"), res_history.pop("seconds")
    assert res_history == ref_history


def test_resuming_a_finished_run_trains_no_further(tmp_path):
    train, _ = loaders(n_train=32)
    model = mlp()
    fit(model, train, epochs=2, optimizer=adam(model), checkpoint_path=tmp_path / "c.pt")
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    history = fit(model, train, epochs=2, optimizer=adam(model), resume=tmp_path / "c.pt")
    assert history["epoch"] == [1, 2]
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_loading_a_missing_or_corrupt_checkpoint_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", mlp())
    with pytest.raises(ValueError, match="does not fit this model"):
        load_checkpoint(path, mlp(classes=3))


# --------------------------------------------------------------------------- bad input


def notes(excinfo):
    """The notes helpers.train attached to an exception (str(error) does not show them)."""
    return "\n".join(getattr(excinfo.value, "__notes__", []))


def test_a_model_that_does_not_fit_the_data_keeps_its_error_and_gets_a_hint():
    train, _ = loaders()  # 8 features
    model = mlp(features=10)
    with pytest.raises(RuntimeError, match="cannot be multiplied") as excinfo:  # torch's own
        fit(model, train, epochs=1, optimizer=adam(model))
    assert re.search(
        r"batch 1 of train_loader.*shape \(16, 8\).*do not fit together.*"
        r"in_features=10",
        notes(excinfo),
        re.S,
    )


def test_token_ids_beyond_the_embedding_are_reported_as_a_mismatch():
    batches = dict_batches(1)
    with pytest.raises(IndexError) as excinfo:
        evaluate(TinyHFClassifier(vocab=5), batches)
    assert re.search(r"Embedding\(5, 8.*num_embeddings", notes(excinfo), re.S)


def test_an_error_in_the_learners_own_forward_is_not_disguised():
    class Buggy(nn.Module):
        def forward(self, x):
            raise KeyError("a bug in my forward")

    train, _ = loaders(n_train=32)
    with pytest.raises(KeyError, match="a bug in my forward") as excinfo:
        fit(Buggy(), train, epochs=1, optimizer=torch.optim.SGD([nn.Parameter(torch.ones(1))]))
    assert "batch 1 of train_loader" in notes(excinfo)


def test_after_the_first_batch_errors_pass_through_without_a_note():
    calls = []

    class FailsOnBatch2(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(8, 2)

        def forward(self, x):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("boom")
            return self.layer(x)

    train, _ = loaders(n_train=32)
    model = FailsOnBatch2()
    with pytest.raises(RuntimeError, match="boom") as excinfo:
        fit(model, train, epochs=1, optimizer=adam(model))
    assert notes(excinfo) == ""


def test_labels_out_of_range_for_the_loss_are_refused():
    x, y = make_data(32)
    loader = DataLoader(TensorDataset(x, y * 2), batch_size=16)  # labels 0 and 2, two outputs
    model = mlp()
    with pytest.raises(ValueError, match="Labels out of range.*labels 0..1.*from 0 to 2"):
        fit(model, loader, epochs=1, optimizer=adam(model))


def test_labels_out_of_range_in_a_later_batch_raise_pytorchs_own_error():
    x, y = make_data(32)
    y[20] = 7
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    model = mlp()
    with pytest.raises(IndexError, match="out of bounds"):
        fit(model, loader, epochs=1, optimizer=adam(model))


def test_targets_that_would_broadcast_against_the_output_are_refused():
    x, y = make_data(32)
    loader = DataLoader(TensorDataset(x, y.float()), batch_size=16)  # (16,) vs logits (16, 1)
    model = mlp(classes=1)
    with pytest.raises(ValueError, match=r"\(16, 1\).*\(16,\).*broadcast"):
        fit(model, loader, epochs=1, optimizer=adam(model), loss_fn=nn.MSELoss(), metrics=())


def test_bce_targets_outside_zero_one_are_refused():
    x, y = make_data(32)
    loader = DataLoader(TensorDataset(x, (y * 3).float().unsqueeze(1)), batch_size=16)
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        evaluate(mlp(classes=1), loader, nn.BCEWithLogitsLoss())


def test_classification_metrics_with_a_regression_loss_are_refused():
    x, y = make_data(32)
    loader = DataLoader(TensorDataset(x, y.float().unsqueeze(1)), batch_size=16)
    with pytest.raises(ValueError, match="classification metrics.*MSELoss"):
        evaluate(mlp(classes=1), loader, nn.MSELoss())


def test_a_nan_loss_stops_training_with_the_batch_number_and_a_hint():
    x, y = make_data(64)
    x[35] = float("nan")  # in the third batch of 16
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    model = mlp()
    with pytest.raises(
        FloatingPointError, match=r"nan at batch 3 of train_loader in epoch 1.*learning rate"
    ):
        fit(model, loader, epochs=1, optimizer=adam(model))


def test_an_infinite_validation_loss_is_reported_too():
    train, _ = loaders(n_train=32)
    x, y = make_data(16)
    x[0] = float("inf")
    model = mlp()
    with pytest.raises(FloatingPointError, match="batch 1 of val_loader"):
        fit(model, train, [(x, y)], epochs=1, optimizer=adam(model))


@pytest.mark.parametrize("which", ["train", "val"])
def test_an_empty_loader_is_refused(which):
    train, val = loaders()
    empty = DataLoader(
        TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long)), batch_size=4
    )
    model = mlp()
    with pytest.raises(ValueError, match=f"{which}_loader has no batches"):
        fit(
            model,
            empty if which == "train" else train,
            empty if which == "val" else val,
            epochs=1,
            optimizer=adam(model),
        )


def test_a_loader_without_len_that_yields_nothing_is_refused():
    model = mlp()
    with pytest.raises(ValueError, match="train_loader in epoch 1 gave no batches"):
        fit(model, iter([]), epochs=1, optimizer=adam(model))


def test_batches_that_are_not_pairs_are_refused():
    x, y = make_data(8)
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pair.*tuple of length 3"):
        evaluate(mlp(), [(x, y, y)])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "epochs"),
        ({"accumulation_steps": 0}, "accumulation_steps"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"scheduler_step": "step"}, "scheduler_step"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    train, _ = loaders(n_train=32)
    model = mlp()
    options = {"epochs": 1, "optimizer": adam(model)} | kwargs
    with pytest.raises(ValueError, match=message):
        fit(model, train, **options)


# --------------------------------------------------------------------------- distributed helpers


def test_distributed_loader_outside_torchrun_returns_the_loader_unchanged():
    train, _ = loaders()
    assert tr.distributed_loader(train) is train
    assert tr.is_main_process()
    assert tr.setup_distributed()[:2] == (0, 1)


def test_distributed_loader_gives_each_process_a_disjoint_shard():
    x, y = make_data(40)
    loader = DataLoader(TensorDataset(torch.arange(40), y), batch_size=8, shuffle=True)
    shards = [tr.distributed_loader(loader, num_replicas=2, rank=r, seed=1) for r in (0, 1)]
    seen = [torch.cat([b[0] for b in shard]).tolist() for shard in shards]
    assert isinstance(shards[0].sampler, torch.utils.data.DistributedSampler)
    assert len(seen[0]) == len(seen[1]) == 20
    assert sorted(seen[0] + seen[1]) == list(range(40))


def test_distributed_loader_refuses_a_custom_batch_sampler():
    x, y = make_data(8)
    loader = DataLoader(TensorDataset(x, y), batch_sampler=[[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="custom batch_sampler"):
        tr.distributed_loader(loader, num_replicas=2, rank=0)
