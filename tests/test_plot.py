"""helpers.plot: every plot returns a titled, labelled Figure that shows the data it was given."""

import matplotlib

matplotlib.use("Agg")  # headless: no window, no display needed

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from helpers import plot

HISTORY = {
    "epoch": [1, 2, 3, 4],
    "train_loss": [1.0, 0.6, 0.4, 0.3],
    "val_loss": [1.1, 0.7, 0.65, 0.8],
    "train_accuracy": [0.5, 0.7, 0.8, 0.9],
    "val_accuracy": [0.45, 0.6, 0.72, 0.7],
    "lr": [1e-3, 1e-3, 5e-4, 5e-4],
    "seconds": [2.0, 2.1, 2.0, 2.2],
}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def heatmap_values(ax, shape):
    return np.asarray(ax.collections[0].get_array()).reshape(shape)


def tiny_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 3))


# ----------------------------------------------------------------------------- plot_history


def test_history_has_one_subplot_per_quantity_loss_first():
    fig = plot.plot_history(HISTORY)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Accuracy"]
    assert fig.get_suptitle()
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() for ax in fig.axes)


def test_history_draws_train_and_validation_values_against_epochs():
    fig = plot.plot_history(HISTORY, title="My run")
    for ax, name in zip(fig.axes, ["loss", "accuracy"]):
        lines = lines_by_label(ax)
        np.testing.assert_allclose(lines["train"].get_ydata(), HISTORY[f"train_{name}"])
        np.testing.assert_allclose(lines["validation"].get_ydata(), HISTORY[f"val_{name}"])
        np.testing.assert_allclose(lines["train"].get_xdata(), HISTORY["epoch"])
    assert fig.get_suptitle() == "My run"


def test_history_stars_the_best_validation_epoch():
    fig = plot.plot_history(HISTORY)
    loss_ax, acc_ax = fig.axes
    best_loss = [ln for ln in loss_ax.get_lines() if ln.get_label().startswith("best val")][0]
    best_acc = [ln for ln in acc_ax.get_lines() if ln.get_label().startswith("best val")][0]
    assert best_loss.get_xdata()[0] == HISTORY["epoch"][int(np.argmin(HISTORY["val_loss"]))]
    assert best_acc.get_xdata()[0] == HISTORY["epoch"][int(np.argmax(HISTORY["val_accuracy"]))]


def test_history_of_train_loss_only_counts_from_one_with_chosen_x_label():
    losses = [2.3, 1.9, 1.2, 0.8, 0.7]
    fig = plot.plot_history({"train_loss": losses}, x_label="step")
    (ax,) = fig.axes
    line = lines_by_label(ax)["train"]
    np.testing.assert_allclose(line.get_xdata(), range(1, len(losses) + 1))
    np.testing.assert_allclose(line.get_ydata(), losses)
    assert ax.get_xlabel() == "step"


def test_history_metrics_chooses_the_panels_and_can_name_plain_keys():
    fig = plot.plot_history(HISTORY, metrics=["lr"])
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "Lr"]
    np.testing.assert_allclose(fig.axes[1].get_lines()[0].get_ydata(), HISTORY["lr"])


def test_history_rejects_empty_unknown_metric_and_non_dict():
    with pytest.raises(ValueError, match="empty"):
        plot.plot_history({"train_loss": [], "val_loss": []})
    with pytest.raises(KeyError, match="f1"):
        plot.plot_history(HISTORY, metrics=["f1"])
    with pytest.raises(TypeError, match="dict"):
        plot.plot_history([0.5, 0.4])


# ----------------------------------------------------------------------------- confusion matrix


def counts(y_true, y_pred, n):
    cm = np.zeros((n, n))
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    return cm


Y_TRUE = [0, 0, 1, 1, 1, 2, 2, 0, 2, 1]
Y_PRED = [0, 1, 1, 1, 2, 2, 0, 0, 2, 1]
NAMES = ["circle", "square", "triangle"]


def test_confusion_matrix_heatmap_holds_the_counts_with_class_names():
    fig = plot.plot_confusion_matrix(torch.tensor(Y_TRUE), np.array(Y_PRED), NAMES)
    ax = fig.axes[0]
    np.testing.assert_allclose(heatmap_values(ax, (3, 3)), counts(Y_TRUE, Y_PRED, 3))
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert ax.get_xlabel() == "predicted label" and ax.get_ylabel() == "true label"
    assert "accuracy 0.700" in ax.get_title()


def test_normalised_confusion_matrix_divides_each_row_by_its_total():
    fig = plot.plot_confusion_matrix(Y_TRUE, Y_PRED, NAMES, normalize=True)
    cm = counts(Y_TRUE, Y_PRED, 3)
    values = heatmap_values(fig.axes[0], (3, 3))
    np.testing.assert_allclose(values, cm / cm.sum(axis=1, keepdims=True))
    assert "normalised" in fig.axes[0].get_title()


def test_confusion_matrix_draws_into_a_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert plot.plot_confusion_matrix(Y_TRUE, Y_PRED, NAMES, ax=right) is fig
    assert right.collections and not left.collections


def test_confusion_matrix_rejects_mismatched_lengths_and_unknown_classes():
    with pytest.raises(ValueError, match="y_pred has 2"):
        plot.plot_confusion_matrix([0, 1, 1], [0, 1], NAMES)
    with pytest.raises(ValueError, match=r"\[5\]"):
        plot.plot_confusion_matrix([0, 5], [0, 1], NAMES)


# ----------------------------------------------------------------------------- show_images


def test_show_images_draws_one_axes_per_image_with_label_and_prediction():
    images = torch.rand(5, 3, 8, 8)
    labels, preds = torch.tensor([0, 1, 2, 0, 1]), torch.tensor([0, 2, 2, 0, 0])
    fig = plot.show_images(images, labels, preds, class_names=NAMES, ncols=3)
    assert len(fig.axes) == 5
    for ax, img, t, p in zip(fig.axes, images, labels, preds):
        np.testing.assert_allclose(ax.get_images()[0].get_array(), img.permute(1, 2, 0).numpy())
        text = ax.get_xlabel()
        assert f"true: {NAMES[t]}" in text and f"pred: {NAMES[p]}" in text
        assert ax.xaxis.label.get_color() == ("green" if t == p else "red")
    assert "3/5 correct" in fig.get_suptitle()


def test_show_images_accepts_grayscale_batches_and_pil_images():
    gray = plot.show_images(torch.rand(3, 10, 12), labels=["a", "b", "c"])
    assert [ax.get_images()[0].get_array().shape for ax in gray.axes] == [(10, 12)] * 3
    assert [ax.get_xlabel() for ax in gray.axes] == ["a", "b", "c"]
    pil = [Image.new("RGB", (6, 4), color=(255, 0, 0)) for _ in range(2)]
    fig = plot.show_images(pil, title="Two red images")
    assert len(fig.axes) == 2 and fig.get_suptitle() == "Two red images"
    assert fig.axes[0].get_images()[0].get_array().shape == (4, 6, 3)


def test_show_images_stretches_each_panel_unless_vmin_vmax_fix_the_range():
    faint_and_bright = torch.stack([torch.full((4, 4), 0.1), torch.full((4, 4), 0.9)])
    faint_and_bright[:, 0, 0] = 0.0
    stretched = plot.show_images(faint_and_bright)
    assert [ax.get_images()[0].get_clim()[1] for ax in stretched.axes] == pytest.approx([0.1, 0.9])
    fixed = plot.show_images(faint_and_bright, vmin=0, vmax=1)
    assert [ax.get_images()[0].get_clim() for ax in fixed.axes] == [(0, 1), (0, 1)]


def test_show_images_undoes_normalisation():
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.1, 0.25]
    raw = torch.rand(1, 3, 4, 4)
    normalised = (raw - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    fig = plot.show_images(normalised, mean=mean, std=std)
    shown = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(shown, raw[0].permute(1, 2, 0).numpy(), atol=1e-6)


def test_show_images_rejects_too_few_labels_and_bad_shapes():
    with pytest.raises(ValueError, match="one per image"):
        plot.show_images(torch.rand(4, 1, 5, 5), labels=[0, 1])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        plot.show_images(torch.rand(5, 5))


# ----------------------------------------------------------------------------- plot_lr_schedule


def test_lr_schedule_plots_recorded_learning_rates():
    lrs = [0.0, 0.5e-3, 1e-3, 0.75e-3, 0.25e-3]
    fig = plot.plot_lr_schedule(lrs)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), lrs)
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "learning rate" and ax.get_title()


def test_lr_schedule_steps_a_throwaway_scheduler():
    fig = plot.plot_lr_schedule(
        scheduler_factory=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
        steps=8,
        lr=0.1,
    )
    ax = fig.axes[0]
    expected = [0.1 * 0.5 ** (i // 3) for i in range(8)]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), expected)
    assert "StepLR" in ax.get_title()


def test_lr_schedule_needs_exactly_one_source_and_positive_steps():
    with pytest.raises(ValueError, match="either"):
        plot.plot_lr_schedule()
    with pytest.raises(ValueError, match="either"):
        plot.plot_lr_schedule([0.1], scheduler_factory=lambda opt: None, steps=3)
    with pytest.raises(ValueError, match="steps"):
        plot.plot_lr_schedule(scheduler_factory=lambda opt: None)


# ----------------------------------------------------------------------------- plot_attention

TOKENS = ["[CLS]", "the", "film", "was", "great", "[SEP]"]


def attention_maps(heads=3, seq=len(TOKENS)):
    torch.manual_seed(0)
    return torch.softmax(torch.randn(heads, seq, seq), dim=-1)


def test_attention_draws_one_heatmap_per_head_with_tokens_on_both_axes():
    att = attention_maps()
    fig = plot.plot_attention(att, TOKENS, layer=2)
    heatmaps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(heatmaps) == 3
    for h, ax in enumerate(heatmaps):
        np.testing.assert_allclose(heatmap_values(ax, att.shape[1:]), att[h].numpy(), rtol=1e-6)
        assert [t.get_text() for t in ax.get_xticklabels()] == TOKENS
        assert [t.get_text() for t in ax.get_yticklabels()] == TOKENS
        assert ax.get_title() == f"head {h}" and ax.get_xlabel() and ax.get_ylabel()
    assert "layer 2" in fig.get_suptitle()


def test_attention_accepts_a_batch_of_one_and_a_choice_of_heads():
    att = attention_maps(heads=4)
    fig = plot.plot_attention(att[None].numpy(), TOKENS, heads=[3, 1])
    heatmaps = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in heatmaps] == ["head 3", "head 1"]
    np.testing.assert_allclose(
        heatmap_values(heatmaps[0], att.shape[1:]), att[3].numpy(), rtol=1e-6
    )


def test_attention_rejects_wrong_tokens_batches_and_heads():
    att = attention_maps()
    with pytest.raises(ValueError, match="5 tokens"):
        plot.plot_attention(att, TOKENS[:5])
    with pytest.raises(ValueError, match="pick one"):
        plot.plot_attention(torch.stack([att, att]), TOKENS)
    with pytest.raises(ValueError, match="heads"):
        plot.plot_attention(att, TOKENS, heads=[7])


# ----------------------------------------------------------------------------- plot_embeddings


def clustered_embeddings(n_per_class=10, dim=8):
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5.0, size=(3, dim))
    x = np.concatenate([c + rng.normal(size=(n_per_class, dim)) for c in centres])
    return x, np.repeat([0, 1, 2], n_per_class)


def scatter_points(ax):
    return np.concatenate([c.get_offsets() for c in ax.collections])


def test_pca_embeddings_scatter_every_vector_in_2d_coloured_by_label():
    from sklearn.decomposition import PCA

    x, y = clustered_embeddings()
    fig = plot.plot_embeddings(torch.tensor(x), torch.tensor(y), label_names=NAMES)
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    points = scatter_points(ax)
    assert points.shape == (len(x), 2)
    expected = PCA(n_components=2).fit_transform(x)
    by_label = np.concatenate([expected[y == k] for k in range(3)])
    np.testing.assert_allclose(np.abs(points), np.abs(by_label))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{name} (10)" for name in NAMES]
    assert "PC1" in ax.get_xlabel() and "PC2" in ax.get_ylabel() and "PCA" in ax.get_title()


def test_tsne_embeddings_are_repeatable_with_the_same_seed():
    x, y = clustered_embeddings()
    first = scatter_points(plot.plot_embeddings(x, y, method="tsne", seed=3).axes[0])
    second = scatter_points(plot.plot_embeddings(x, y, method="t-SNE", seed=3).axes[0])
    assert first.shape == (len(x), 2)
    np.testing.assert_allclose(first, second)


def test_embeddings_reject_unknown_method_and_mismatched_labels():
    x, y = clustered_embeddings()
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        plot.plot_embeddings(x, y, method="umap")
    with pytest.raises(ValueError, match="one label per row"):
        plot.plot_embeddings(x, y[:-1])


# ------------------------------------------------------------------------- weights and gradients


def test_weight_histograms_show_each_weight_matrix_but_not_biases_or_norms():
    model = tiny_mlp()
    fig = plot.plot_weight_histograms(model)
    weights = {"0.weight": model[0].weight, "3.weight": model[3].weight}
    assert len(fig.axes) == len(weights)
    for ax, (name, w) in zip(fig.axes, weights.items()):
        assert ax.get_title().startswith(name)
        assert sum(p.get_height() for p in ax.patches) == w.numel()
        assert ax.get_xlabel() == "weight value" and ax.get_ylabel() == "count"


def test_weight_histograms_select_layers_by_prefix_or_include_everything():
    model = tiny_mlp()
    by_prefix = plot.plot_weight_histograms(model, layers=["3"])
    assert [ax.get_title().split()[0] for ax in by_prefix.axes] == ["3.weight"]
    named = plot.plot_weight_histograms(model, layers=["0.weight", "3.bias"])
    assert [ax.get_title().split()[0] for ax in named.axes] == ["0.weight", "3.bias"]
    every = plot.plot_weight_histograms(model.state_dict(), include_all=True)
    assert len(every.axes) == len(list(model.parameters()))
    with pytest.raises(KeyError, match="available"):
        plot.plot_weight_histograms(model, layers=["decoder"])


def test_grad_flow_bars_are_the_mean_and_max_absolute_gradient_per_layer():
    model = tiny_mlp()
    model(torch.randn(4, 6)).pow(2).mean().backward()
    fig = plot.plot_grad_flow(model.named_parameters())
    ax = fig.axes[0]
    weights = [(n, p) for n, p in model.named_parameters() if not n.endswith("bias")]
    bars = {c.get_label(): [r.get_height() for r in c] for c in ax.containers}
    means = [p.grad.abs().mean().item() for _, p in weights]
    maxes = [p.grad.abs().max().item() for _, p in weights]
    np.testing.assert_allclose(bars["mean |grad|"], means, rtol=1e-6)
    np.testing.assert_allclose(bars["max |grad|"], maxes, rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == [n for n, _ in weights]
    assert ax.get_yscale() == "log" and ax.get_title() and ax.get_ylabel()


def test_grad_flow_without_backward_says_to_call_it():
    with pytest.raises(ValueError, match=r"loss.backward\(\)"):
        plot.plot_grad_flow(tiny_mlp().named_parameters())


# ----------------------------------------------------------------------------- summarize_model


def test_summary_counts_every_parameter_and_records_output_shapes():
    model = tiny_mlp()
    model[0].requires_grad_(False)
    stats = plot.summarize_model(model, input_size=(2, 6))
    assert stats.total_params == sum(p.numel() for p in model.parameters())
    assert stats.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert stats.stats.summary_list[-1].output_size == [2, 3]
    text = str(stats)
    assert "Output Shape" in text and "Trainable" in text
    assert "Total mult-adds (M):" in text and "Units." not in text
    assert repr(stats) == text  # a cell that ends with the summary shows the same table


def test_summary_prints_torchinfo_table_with_readable_units():
    from torchinfo import summary

    model = tiny_mlp()
    table = str(
        summary(
            model,
            input_size=(2, 6),
            verbose=0,
            row_settings=("var_names",),
            col_names=("input_size", "output_size", "num_params", "trainable"),
        )
    )
    assert str(plot.summarize_model(model, input_size=(2, 6))) == plot.models.readable_units(table)
    assert (
        plot.models.readable_units("Total mult-adds (Units.GIGABYTES): 1.50")
        == "Total mult-adds (G): 1.50"
    )


def test_summary_without_input_lists_parameters_only():
    text = str(plot.summarize_model(tiny_mlp()))
    assert "Param #" in text and "Output Shape" not in text


def test_summary_rejects_what_is_not_a_module():
    with pytest.raises(TypeError, match="nn.Module"):
        plot.summarize_model(lambda x: x)


# ----------------------------------------------------------------------------- notebook display


def every_kind_of_figure():
    model = tiny_mlp()
    model(torch.randn(4, 6)).sum().backward()
    x, y = clustered_embeddings()
    return [
        plot.plot_history(HISTORY),
        plot.plot_confusion_matrix(Y_TRUE, Y_PRED, NAMES),
        plot.show_images(torch.rand(2, 1, 4, 4)),
        plot.plot_lr_schedule([0.1, 0.2]),
        plot.plot_attention(attention_maps(), TOKENS),
        plot.plot_embeddings(x, y),
        plot.plot_weight_histograms(model),
        plot.plot_grad_flow(model),
    ]


def test_every_plot_is_a_course_figure_held_by_pyplot_and_printed_as_a_figure():
    for fig in every_kind_of_figure():
        assert isinstance(fig, plot.CourseFigure)
        assert fig.number in plt.get_fignums()  # so the inline backend and plt.show() show it
        assert repr(fig).startswith("<Figure size ")  # what nbval_sanitize.cfg expects


class FakeShell:
    """Just enough of IPython's shell for CourseFigure: its display formatter, with a PNG
    formatter for figures as the inline backend registers one."""

    def __init__(self):
        from IPython.core.formatters import DisplayFormatter

        self.display_formatter = DisplayFormatter()
        self.display_formatter.formatters["image/png"].for_type(Figure, lambda fig: "PNG")


def echo(monkeypatch, fig, backend):
    """What IPython displays when a cell ends with ``fig``, under ``backend``."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", FakeShell)
    monkeypatch.setattr(IPython.display, "display", lambda data, **kw: shown.append(data))
    monkeypatch.setattr(matplotlib, "get_backend", lambda: backend)
    fig._ipython_display_()
    return shown


def test_echoed_figure_is_displayed_once_and_released_by_the_inline_backend(monkeypatch):
    fig = plot.plot_lr_schedule([0.1, 0.2])
    shown = echo(monkeypatch, fig, "module://matplotlib_inline.backend_inline")
    assert shown == [{"text/plain": "<Figure size 700x380 with 1 Axes>", "image/png": "PNG"}]
    assert fig.number not in plt.get_fignums()  # so the backend does not draw it a second time


def test_echoed_figure_stays_open_under_other_backends(monkeypatch):
    fig = plot.plot_lr_schedule([0.1, 0.2])
    assert len(echo(monkeypatch, fig, "qtagg")) == 1
    assert fig.number in plt.get_fignums()  # its window stays
