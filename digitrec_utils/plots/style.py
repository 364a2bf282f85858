"""What every figure of the reports shares: its colour map for images, and how it is finished and shown.

Every figure function returns its Figure. With ``show=True`` (the default) it displays the figure and then closes
it, so that notebooks never accumulate open figures; pass ``show=False`` to keep it open (tests, or saving to a
file), and close it yourself.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

GRID_CMAP = "gray_r"


def finish_figure(figure: Figure, show: bool) -> Figure:
    """Lay out the figure; when ``show`` is true, display it and close it."""
    figure.tight_layout()
    if show:
        plt.show()
        plt.close(figure)
    return figure
