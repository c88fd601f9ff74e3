"""Every plot the course draws more than once, one module per topic:

- ``curves``: :func:`plot_history` (``fit``'s training curves), :func:`plot_lr_schedule`;
- ``classification``: :func:`plot_confusion_matrix`, :func:`plot_embeddings` (PCA / t-SNE);
- ``images``: :func:`show_images` (a grid with labels and predictions);
- ``attention``: :func:`plot_attention` (one heatmap per head);
- ``models``: :func:`summarize_model` (a torchinfo table), :func:`plot_weight_histograms`,
  :func:`plot_grad_flow`;
- ``figure``: :class:`CourseFigure` and :func:`new_figure`, the figure they all draw into.

Each function returns a ``matplotlib.figure.Figure`` with a title and labelled axes and never
calls ``plt.show()``. Inputs may be torch tensors (any device, with or without gradients) or
NumPy arrays (:func:`helpers.tensors.to_numpy` converts them). In a notebook, the recommended
pattern is to **assign the figure and end the cell there**, so the figure can still be saved or
inspected afterwards::

    from helpers.plot import plot_history
    fig = plot_history(history)        # shown once, when the cell ends

The other habits show the figure exactly once too: a bare ``plot_history(history)``,
``fig = ...`` followed by ``fig``, or ``fig`` again in a later cell. Change a figure in the cell
that creates it (``fig = plot_history(h); fig.axes[0].set_ylim(0, 1)``). In a script call
``plt.show()`` or ``fig.savefig(path)`` yourself, and ``plt.close(fig)`` when you draw many.
"""

from helpers.plot.attention import plot_attention
from helpers.plot.classification import plot_confusion_matrix, plot_embeddings
from helpers.plot.curves import plot_history, plot_lr_schedule
from helpers.plot.figure import CourseFigure, new_figure
from helpers.plot.images import show_images
from helpers.plot.models import (
    ModelSummary,
    plot_grad_flow,
    plot_weight_histograms,
    summarize_model,
)

__all__ = [
    "plot_history",
    "plot_confusion_matrix",
    "show_images",
    "plot_lr_schedule",
    "plot_attention",
    "plot_embeddings",
    "plot_weight_histograms",
    "plot_grad_flow",
    "summarize_model",
    "ModelSummary",
    "CourseFigure",
    "new_figure",
]
