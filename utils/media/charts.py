"""Charts for every front end: training curves, probabilities, confusion matrices, reliability, timelines.

Functions return a ``matplotlib.figure.Figure`` and never show it: the site renders
it to PNG (:mod:`utils.media.encode`), the desktop window embeds it, the CLIs save it. No ``pyplot``
global state, so threads can draw at the same time.
"""
import numpy as np
from matplotlib.figure import Figure

from utils.defaults import class_colour


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


def vector_bars(layer_output):
    """A dense layer's activations as bars, one per unit."""
    figure = Figure(figsize=(8, 2.4))
    axis = figure.subplots()
    values = layer_output.array.ravel()
    axis.bar(np.arange(values.size), values, width=1.0, color="tab:blue")
    axis.set_xlabel("unit")
    axis.set_ylabel("activation")
    axis.set_title(f"{layer_output.name} ({layer_output.kind}) output {values.size}")
    figure.tight_layout()
    return figure


def probability_bars(probabilities, highlight=None):
    """The softmax probabilities as horizontal bars, one per class, the predicted class's bar in its
    class's colour (the colour of its box in every picture), the others grey.

    ``probabilities``: ``{class name: probability}`` in the card's order.
    """
    names = list(probabilities)
    values = [probabilities[name] for name in names]
    highlight = highlight or names[int(np.argmax(values))]
    figure = Figure(figsize=(5, 0.35 * len(names) + 0.8))
    axis = figure.subplots()
    colours = [class_colour(index) if name == highlight else "tab:gray" for index, name in enumerate(names)]
    bars = axis.barh(names, values, color=colours)
    axis.bar_label(bars, labels=[f"{v:.0%}" for v in values], padding=2, fontsize=8)
    axis.set_xlim(0, 1.1)
    axis.invert_yaxis()
    axis.set_xlabel("probability")
    axis.set_title("Softmax probabilities")
    figure.tight_layout()
    return figure


def confusion_heatmap(matrix, classes, normalised=False, title="Confusion matrix", row_classes=None):
    """Rows are true classes, columns predicted: counts, or each row's shares when ``normalised``.
    ``row_classes``: the true classes of the rows when they are not all of ``classes``."""
    import seaborn as sns  # slow to import; only this figure needs it
    side = max(6, 0.6 * len(classes) + 1.8)   # every class's cell stays readable, however many the card has
    figure = Figure(figsize=(side + 1, side))
    axis = figure.subplots()
    sns.heatmap(matrix, annot=True, fmt=".2f" if normalised else "d", cmap="Blues", square=True,
                vmin=0, vmax=1 if normalised else None, xticklabels=classes, yticklabels=row_classes or classes,
                cbar_kws={"label": "share of the true class" if normalised else "faces"}, ax=axis)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def reliability_diagram(curves):
    """One panel per ``(label, bins, ece)``: accuracy per confidence bin against the diagonal.

    ``bins`` is :func:`utils.train.metrics.reliability_bins`' dict. A bar under the diagonal
    means over-confidence; the red part is the gap the ECE averages.
    """
    figure = Figure(figsize=(4.5 * len(curves), 4.5))
    axes = np.atleast_1d(figure.subplots(1, len(curves)))
    for axis, (label, bins, ece) in zip(axes, curves):
        edges = bins["edges"]
        width, left = np.diff(edges), edges[:-1]
        filled = bins["count"] > 0
        accuracy = np.where(filled, bins["accuracy"], 0.0)
        confidence = np.where(filled, bins["confidence"], 0.0)
        axis.bar(left, accuracy, width=width, align="edge", color="tab:blue", edgecolor="black",
                 linewidth=0.5, label="accuracy")
        axis.bar(left, confidence - accuracy, bottom=accuracy, width=width, align="edge",
                 color="tab:red", alpha=0.3, edgecolor="tab:red", hatch="//", linewidth=0.5, label="gap")
        axis.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_xlabel("confidence")
        axis.set_ylabel("accuracy")
        axis.set_title(f"{label}: ECE {ece:.3f}")
        axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    return figure


def per_class_accuracy_bars(accuracies, classes):
    """Grouped bars: per-class accuracy of each model (``accuracies``: model name -> list in class order)."""
    figure = Figure(figsize=(max(7, 1.2 * len(classes) + 1), 4.5))
    axis = figure.subplots()
    width = 0.8 / len(accuracies)
    positions = np.arange(len(classes))
    for offset, (name, values) in enumerate(accuracies.items()):
        axis.bar(positions + (offset - (len(accuracies) - 1) / 2) * width, values, width=width, label=name)
    axis.set_xticks(positions)
    axis.set_xticklabels(classes)
    axis.set_ylim(0, 1)
    axis.set_ylabel("accuracy (share of the class labelled correctly)")
    axis.set_title("Per-class accuracy")
    axis.grid(axis="y", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def class_colours(classes):
    """RGB (0-1) per class, in card order: :data:`utils.defaults.CLASS_PALETTE`, the colours of
    every figure, video overlay, the desktop window and the site."""
    from matplotlib.colors import to_rgb as hex_to_rgb
    return {name: hex_to_rgb(class_colour(index)) for index, name in enumerate(classes)}


def emotion_distribution(counts, title="Emotion distribution"):
    """Share of faces per emotion (``counts``: emotion -> count, in card order) as bars."""
    import seaborn as sns
    names = list(counts)
    total = max(1, sum(counts.values()))
    shares = [100 * counts[name] / total for name in names]
    figure = Figure(figsize=(max(7, 0.8 * len(names) + 1), 4))
    axis = figure.subplots()
    # saturation 1: seaborn otherwise greys the colours, and the classes' colours must be the ones everywhere else
    sns.barplot(x=names, y=shares, hue=names, palette=class_colours(names), saturation=1, legend=False, ax=axis)
    for position, (share, count) in enumerate(zip(shares, counts.values())):
        axis.annotate(f"{count}", (position, share), ha="center", va="bottom", fontsize=8)
    axis.set_ylabel("share of faces (%)")
    axis.set_title(title)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def emotion_timeline(times, probabilities, classes, title="Emotion over time"):
    """Each class's probability against time (seconds), one line per class."""
    colours = class_colours(classes)
    probabilities = np.asarray(probabilities, dtype=float).reshape(len(times), len(classes))
    figure = Figure(figsize=(10, 4))
    axis = figure.subplots()
    for index, name in enumerate(classes):
        axis.plot(times, probabilities[:, index], label=name, color=colours[name], linewidth=1.5)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("probability")
    axis.set_ylim(0, 1)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    figure.tight_layout()
    return figure
