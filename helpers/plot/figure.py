"""The figure every plot of ``helpers.plot`` (and ``helpers.tb.plot_scalars``) draws into.

:func:`new_figure` makes a :class:`CourseFigure` through pyplot, with constrained layout (no
overlapping titles and labels) and a 2-D array of subplots. Because pyplot holds the figure,
``plt.show()`` shows it in a script and Jupyter's inline backend shows it when the cell ends;
:class:`CourseFigure` only makes sure that Jupyter does not show it a second time when the
cell also ends with it (``fig = plot_history(h)`` then ``fig``, or a bare ``plot_history(h)``).
"""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["CourseFigure", "new_figure", "grid_shape", "pretty_name"]


class CourseFigure(Figure):
    """A matplotlib ``Figure`` that Jupyter displays exactly once.

    A figure made with pyplot is shown by the inline backend at the end of the cell. When the
    cell also *ends with* the figure, IPython shows it as the cell's result as well: twice.
    IPython lets an object display itself through ``_ipython_display_``; here it shows the
    figure as usual and then closes it in pyplot (``plt.close``), which only tells the inline
    backend that there is nothing left to draw: the figure can still be changed and saved.
    """

    def __repr__(self) -> str:
        # "<Figure size 500x380 with 1 Axes>", as for any Figure (nbval_sanitize.cfg expects it)
        return super().__repr__().replace(type(self).__name__, "Figure", 1)

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        formatter = get_ipython().display_formatter
        data, metadata = {}, {}
        for mime in formatter.active_types:  # text/plain, image/png, ... as for any object
            out = formatter.formatters[mime](self)
            if isinstance(out, tuple):  # (data, metadata), e.g. retina PNGs
                out, metadata[mime] = out
            if out is not None:
                data[mime] = out
        display(data, metadata=metadata, raw=True)
        if "inline" in matplotlib.get_backend():
            plt.close(self)


def new_figure(
    nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float]
) -> tuple[CourseFigure, np.ndarray]:
    """A new :class:`CourseFigure` of ``figsize`` inches with constrained layout, and its
    subplots as an ``(nrows, ncols)`` array of Axes (a 2-D array even for one subplot: use
    ``axes[0, 0]``).

    Example::

        fig, axes = new_figure(1, 2, figsize=(10, 3.8))
        axes[0, 0].plot([1, 2, 3])
    """
    return plt.subplots(
        nrows, ncols, figsize=figsize, squeeze=False, layout="constrained", FigureClass=CourseFigure
    )


def grid_shape(n: int, ncols: int) -> tuple[int, int]:
    """The ``(rows, columns)`` of a grid for ``n`` panels with at most ``ncols`` columns.

    Example::

        >>> grid_shape(10, 4)
        (3, 4)
    """
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def pretty_name(name: str) -> str:
    """A history key as a panel title: underscores become spaces, the first letter capital.

    Example::

        >>> pretty_name("f1_macro")
        'F1 macro'
    """
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]
