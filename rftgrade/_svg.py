"""A matplotlib figure as inline SVG text, for self-contained HTML reports."""

from __future__ import annotations

import io
from typing import Any

__all__ = ["figure_svg"]


def figure_svg(fig: Any) -> str:
    """The figure as an ``<svg>`` element (no XML prolog); the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg") :]
