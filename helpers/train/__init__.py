"""The training loop and what it needs, one module per concern.

- ``loop``: ``train_one_epoch``, ``evaluate``, ``predict`` and ``fit`` (read this first);
- ``callbacks``: the ``Callback`` protocol and the callbacks ``fit`` is used with
  (``EarlyStopping``, ``ProgressBar``, ``LivePlot``; TensorBoard's are in ``helpers.tb``);
- ``metrics``: the epoch's loss and scikit-learn metrics;
- ``checks``: diagnostics of the first batch and of the loss;
- ``checkpoint``: atomic checkpoints and exact resumption;
- ``distributed``: ``torchrun`` and ``DistributedDataParallel``.

Typical use::

    from helpers.train import EarlyStopping, fit
    model.to(device)
    history = fit(model, train_loader, val_loader, epochs=5,
                  optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
                  metrics=("accuracy", "f1"), callbacks=[EarlyStopping(patience=2)],
                  checkpoint_path="checkpoints/model.pt")
"""

from helpers.train.callbacks import (
    QUIET_ENV_VARS,
    Callback,
    EarlyStopping,
    LivePlot,
    ProgressBar,
    is_quiet,
)
from helpers.train.checkpoint import load_checkpoint, save_checkpoint
from helpers.train.distributed import (
    cleanup_distributed,
    distributed_loader,
    is_main_process,
    setup_distributed,
)
from helpers.train.loop import evaluate, fit, predict, train_one_epoch
from helpers.train.metrics import METRICS

__all__ = [
    "fit",
    "train_one_epoch",
    "evaluate",
    "predict",
    "Callback",
    "EarlyStopping",
    "ProgressBar",
    "LivePlot",
    "QUIET_ENV_VARS",
    "is_quiet",
    "METRICS",
    "save_checkpoint",
    "load_checkpoint",
    "setup_distributed",
    "cleanup_distributed",
    "is_main_process",
    "distributed_loader",
]
