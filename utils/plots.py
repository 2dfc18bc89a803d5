"""Figures for every front end, drawn with matplotlib's object API.

Functions return a ``matplotlib.figure.Figure`` and never show it: the site renders
it to PNG, the desktop window embeds it, the CLIs save it. No ``pyplot`` global
state, so threads can draw at the same time.
"""
import io

from matplotlib.figure import Figure


def figure_png(figure, dpi=100):
    """A figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def training_curves(history):
    """Loss and accuracy per epoch, training against validation (``history``: column -> list)."""
    figure = Figure(figsize=(10, 4))
    for axis, metric in zip(figure.subplots(1, 2), ("loss", "accuracy")):
        epochs = range(1, len(history[metric]) + 1)
        axis.plot(epochs, history[metric], label="training")
        if f"val_{metric}" in history:
            axis.plot(epochs, history[f"val_{metric}"], label="validation")
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.set_title(metric.capitalize())
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure
