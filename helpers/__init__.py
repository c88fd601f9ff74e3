"""Shared utilities for the course *Large-Model Development and Fine-Tuning from Scratch*.

Each topic is one small module, imported explicitly where a notebook needs it::

    from helpers.device import get_device, seed_everything
    from helpers.train import fit

Importing ``helpers`` itself is cheap: it does not import torch or transformers.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The course checkout this package was installed from (``pip install -e .``).
REPO_ROOT = Path(__file__).resolve().parent.parent
