"""Logging training runs with tensorboardX, and reading the logs back into pandas.

- ``writing``: :func:`create_writer` (one run folder per writer), :func:`log_histograms`,
  :func:`log_confusion_matrix`, :func:`log_embedding` (the Projector tab), :func:`log_hparams`;
- ``callback``: the ``fit`` callbacks :class:`TensorBoardCallback` (losses, metrics, learning
  rate) and :class:`HistogramCallback` (weight and gradient histograms);
- ``reading``: :func:`read_scalars` (every scalar as one DataFrame), :func:`smooth`,
  :func:`plot_scalars`.

Every run is written to ``runs/<experiment>/<run>``, the layout TensorBoard understands:
``tensorboard --logdir runs/<experiment>`` shows the runs of one experiment side by side, and
:func:`read_scalars` returns every scalar of every run under a folder as one DataFrame, so the
curves can be compared, asserted and plotted in Python as well. Typical use::

    from helpers.tb import (HistogramCallback, TensorBoardCallback, create_writer, log_hparams,
                            plot_scalars, read_scalars)
    from helpers.train import fit
    with create_writer("digits", "lr_0.01") as writer:        # flushed and closed at the end
        history = fit(model, train_loader, val_loader, epochs=5, optimizer=optimizer,
                      callbacks=[TensorBoardCallback(writer), HistogramCallback(writer, model)])
        log_hparams(writer, {"lr": 0.01}, {"val_loss": history["val_loss"][-1]})
    fig = plot_scalars(read_scalars("runs/digits"), tags=["loss/val"])

Runs are named as TensorBoard names them: the path of the folder holding the event files,
relative to the folder that was read (``"."`` for that folder itself). ``writer.add_scalars``
(grouped scalars: several series on one chart) writes each series into its own sub-folder, so
``add_scalars("loss", {"train": ..., "val": ...})`` in run ``lr_0.01`` gives the runs
``lr_0.01/loss/train`` and ``lr_0.01/loss/val``, both with the tag ``loss``.
"""

from helpers.tb.callback import HistogramCallback, TensorBoardCallback
from helpers.tb.reading import SCALAR_COLUMNS, plot_scalars, read_scalars, smooth
from helpers.tb.writing import (
    create_writer,
    log_confusion_matrix,
    log_embedding,
    log_histograms,
    log_hparams,
)

__all__ = [
    "SCALAR_COLUMNS",
    "create_writer",
    "log_histograms",
    "log_confusion_matrix",
    "log_embedding",
    "log_hparams",
    "TensorBoardCallback",
    "HistogramCallback",
    "read_scalars",
    "smooth",
    "plot_scalars",
]
