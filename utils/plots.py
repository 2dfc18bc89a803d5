"""Figures for every front end, drawn with matplotlib's object API.

Functions return a ``matplotlib.figure.Figure`` and never show it: the site renders
it to PNG, the desktop window embeds it, the CLIs save it. No ``pyplot`` global
state, so threads can draw at the same time.
"""
import io

import numpy as np
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


def _grid_shape(count, columns=None):
    columns = columns or int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / columns)), columns


def feature_map_grid(layer_output, max_channels=None, columns=None):
    """Every channel of a spatial layer's output, labelled with the layer's name and shape."""
    maps = layer_output.array
    channels = maps.shape[-1] if max_channels is None else min(max_channels, maps.shape[-1])
    rows, cols = _grid_shape(channels, columns)
    figure = Figure(figsize=(cols * 1.1, rows * 1.1 + 0.6))
    axes = np.atleast_1d(figure.subplots(rows, cols)).ravel()
    for index, axis in enumerate(axes):
        axis.set_axis_off()
        if index < channels:
            axis.imshow(maps[:, :, index], cmap="viridis")
            axis.set_title(str(index), fontsize=6, pad=1)
    shape = "x".join(str(v) for v in maps.shape)
    figure.suptitle(f"{layer_output.name} ({layer_output.kind}) output {shape}", fontsize=10)
    figure.subplots_adjust(wspace=0.05, hspace=0.3)
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
    """The softmax probabilities as horizontal bars, the predicted class highlighted.

    ``probabilities``: ``{class name: probability}`` in the card's order.
    """
    names = list(probabilities)
    values = [probabilities[name] for name in names]
    highlight = highlight or names[int(np.argmax(values))]
    figure = Figure(figsize=(5, 0.35 * len(names) + 0.8))
    axis = figure.subplots()
    colours = ["tab:orange" if name == highlight else "tab:gray" for name in names]
    bars = axis.barh(names, values, color=colours)
    axis.bar_label(bars, labels=[f"{v:.0%}" for v in values], padding=2, fontsize=8)
    axis.set_xlim(0, 1.1)
    axis.invert_yaxis()
    axis.set_xlabel("probability")
    axis.set_title("Softmax probabilities")
    figure.tight_layout()
    return figure


def cam_overlay(face, cam, alpha=0.45):
    """A Grad-CAM map blended over a face: ``(H, W, 3)`` uint8 RGB.

    ``face`` is gray or BGR (any size; the map is resized to it), ``cam`` in [0, 1].
    """
    import cv2
    face = np.asarray(face)
    if face.dtype != np.uint8:
        face = np.clip(face * 255.0 if face.max() <= 1.0 else face, 0, 255).astype(np.uint8)
    if face.ndim == 3 and face.shape[2] == 1:
        face = face[:, :, 0]
    rgb = cv2.cvtColor(face, cv2.COLOR_GRAY2RGB) if face.ndim == 2 else cv2.cvtColor(face, cv2.COLOR_BGR2RGB)
    heat = cv2.resize(np.asarray(cam, dtype=np.float32), (rgb.shape[1], rgb.shape[0]))
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)[:, :, ::-1]
    return np.uint8((1 - alpha) * rgb + alpha * colour)


def gradcam_figure(face, cam, title="Grad-CAM"):
    """The overlay beside the standalone heatmap."""
    figure = Figure(figsize=(6, 3.2))
    overlay_axis, heat_axis = figure.subplots(1, 2)
    overlay_axis.imshow(cam_overlay(face, cam))
    overlay_axis.set_title("overlay")
    image = heat_axis.imshow(cam, cmap="jet", vmin=0, vmax=1)
    heat_axis.set_title("heatmap")
    figure.colorbar(image, ax=heat_axis, fraction=0.046)
    for axis in (overlay_axis, heat_axis):
        axis.set_axis_off()
    figure.suptitle(title)
    return figure


def gradcam_classes_figure(face, cams, classes, probabilities=None):
    """Grad-CAM for every class side by side: where the network looks for each emotion."""
    figure = Figure(figsize=(1.9 * len(classes), 2.3))
    for axis, cam, name in zip(np.atleast_1d(figure.subplots(1, len(classes))), cams, classes):
        axis.imshow(cam_overlay(face, cam))
        label = name if probabilities is None else f"{name} {probabilities[name]:.0%}"
        axis.set_title(label, fontsize=9)
        axis.set_axis_off()
    figure.tight_layout()
    return figure


def kernel_grid(kernels, columns=None):
    """The first convolution's kernels as small images (first input channel)."""
    count = kernels.shape[-1]
    rows, cols = _grid_shape(count, columns)
    figure = Figure(figsize=(cols * 0.8, rows * 0.8 + 0.5))
    for index, axis in enumerate(np.atleast_1d(figure.subplots(rows, cols)).ravel()):
        axis.set_axis_off()
        if index < count:
            axis.imshow(kernels[:, :, 0, index], cmap="gray")
    figure.suptitle(f"First-layer kernels {kernels.shape[0]}x{kernels.shape[1]}, {count} filters", fontsize=10)
    return figure
