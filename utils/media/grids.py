"""Figures of many small pictures: feature maps, kernels and faces as numbered tiles.

Like every figure here they are drawn with matplotlib's object API and returned, never shown: the
site encodes them (:mod:`utils.media.encode`), the desktop window embeds them, the CLIs save them.
:func:`tile_at` answers which tile a click fell on, for the desktop window.
"""
import numpy as np
from matplotlib.figure import Figure


def _grid_shape(count, columns=None):
    columns = columns or int(np.ceil(np.sqrt(count)))
    return int(np.ceil(count / columns)), columns


def _tiles(maps, columns, gap):
    """Channels ``(H, W, N)`` tiled into one image, each scaled to its own [0, 1] range
    (as separate panels would be), NaN between tiles; and each tile's top-left corner."""
    height, width, count = maps.shape
    rows, cols = _grid_shape(count, columns)
    mosaic = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap), np.nan)
    corners = []
    for index in range(count):
        top, left = (index // cols) * (height + gap), (index % cols) * (width + gap)
        channel = maps[:, :, index].astype(np.float64)
        spread = channel.max() - channel.min()
        mosaic[top:top + height, left:left + width] = (channel - channel.min()) / spread if spread > 0 else 0.0
        corners.append((top, left))
    return mosaic, corners, (rows, cols)


def _tile_gap(height):
    """Blank pixels between two tiles of maps ``height`` pixels tall."""
    return max(1, height // 6)


def tile_at(shape, row, column, columns=None):
    """The ``(channel, y, x)`` under pixel ``(row, column)`` of a tiled figure of maps of ``shape``
    ``(H, W, N)`` (:func:`feature_map_grid`), or None between tiles: where a click on it landed."""
    height, width, count = shape
    gap = _tile_gap(height)
    rows, cols = _grid_shape(count, columns)
    (tile_row, y), (tile_column, x) = divmod(int(row), height + gap), divmod(int(column), width + gap)
    channel = tile_row * cols + tile_column
    if row < 0 or column < 0 or y >= height or x >= width or tile_column >= cols or channel >= count:
        return None
    return channel, y, x


def _tile_figure(maps, columns, cmap, tile_inches, title, numbered):
    """One ``imshow`` of all channels: an axis per channel takes seconds at 256 channels."""
    from matplotlib import colormaps
    mosaic, corners, (rows, cols) = _tiles(maps, columns, gap=_tile_gap(maps.shape[0]))
    figure = Figure(figsize=(cols * tile_inches, rows * tile_inches + 0.6))
    axis = figure.subplots()
    axis.imshow(mosaic, cmap=colormaps[cmap].with_extremes(bad="white"), vmin=0, vmax=1, interpolation="nearest")
    if numbered:
        for index, (top, left) in enumerate(corners):
            axis.text(left - 0.5, top - 0.6, str(index), fontsize=6, va="bottom")
    axis.set_axis_off()
    axis.set_title(title, fontsize=10, pad=12 if numbered else 6)
    return figure


def feature_map_grid(layer_output, max_channels=None, columns=None):
    """Every channel of a spatial layer's output, labelled with the layer's name and shape."""
    maps = layer_output.array
    channels = maps.shape[-1] if max_channels is None else min(max_channels, maps.shape[-1])
    shape = "x".join(str(v) for v in maps.shape)
    return _tile_figure(maps[:, :, :channels], columns, "viridis", 1.1,
                        f"{layer_output.name} ({layer_output.kind}) output {shape}", numbered=True)


def kernel_grid(kernels, columns=None):
    """The first convolution's kernels as small images (first input channel)."""
    count = kernels.shape[-1]
    return _tile_figure(kernels[:, :, 0, :], columns, "gray", 0.8,
                        f"First-layer kernels {kernels.shape[0]}x{kernels.shape[1]}, {count} filters", numbered=False)


def face_grid(faces, titles, columns=6, title=None):
    """Faces (``(N, H, W, C)`` in [0, 1]) in a grid, each above its title (a line break allowed)."""
    count = max(1, len(faces))
    columns = min(columns, count)
    rows = int(np.ceil(count / columns))
    figure = Figure(figsize=(columns * 1.6, rows * 1.9 + (0.4 if title else 0.0)))
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for axis in axes:
        axis.set_axis_off()
    for axis, face, text in zip(axes, faces, titles):
        axis.imshow(face[:, :, 0], cmap="gray", vmin=0, vmax=1)
        axis.set_title(text, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    return figure


def mistakes_grid(faces, true_labels, predicted_labels, confidences, columns=6):
    """The given faces (``(N, H, W, C)`` in [0, 1]) titled with true and predicted class."""
    titles = [f"true {true}\npred {predicted} {confidence:.2f}"
              for true, predicted, confidence in zip(true_labels, predicted_labels, confidences)]
    return face_grid(faces, titles, columns, "Most confident mistakes" if len(faces) else "No mistakes")
