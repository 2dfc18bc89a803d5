"""Figures for every front end, drawn with matplotlib's object API.

Functions return a ``matplotlib.figure.Figure`` and never show it: the site renders
it to PNG (:mod:`utils.pictures`), the desktop window embeds it, the CLIs save it. No ``pyplot`` global
state, so threads can draw at the same time.
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


def to_rgb(image):
    """A face or photo as uint8 RGB: gray or BGR, uint8 or float in [0, 1] (a preprocessed face)."""
    import cv2
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image * 255.0 if image.max() <= 1.0 else image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def cam_overlay(face, cam, alpha=0.45):
    """A Grad-CAM map blended over a face: ``(H, W, 3)`` uint8 RGB.

    ``face`` is gray or BGR (any size; the map is resized to it), ``cam`` in [0, 1].
    """
    import cv2
    rgb = to_rgb(face)
    heat = cv2.resize(np.asarray(cam, dtype=np.float32), (rgb.shape[1], rgb.shape[0]))
    colour = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)[:, :, ::-1]
    return np.uint8((1 - alpha) * rgb + alpha * colour)


def _overlay_beside_map(title, map_title, values, draw_overlay, **colours):
    """Two panels: an overlay drawn by ``draw_overlay(axis)``, and the map alone with a colour bar."""
    figure = Figure(figsize=(6, 3.2))
    overlay_axis, map_axis = figure.subplots(1, 2)
    draw_overlay(overlay_axis)
    overlay_axis.set_title("overlay")
    image = map_axis.imshow(values, **colours)
    map_axis.set_title(map_title)
    figure.colorbar(image, ax=map_axis, fraction=0.046)
    for axis in (overlay_axis, map_axis):
        axis.set_axis_off()
    figure.suptitle(title)
    return figure


def gradcam_figure(face, cam, title="Grad-CAM"):
    """The overlay beside the standalone heatmap."""
    return _overlay_beside_map(title, "heatmap", cam, lambda axis: axis.imshow(cam_overlay(face, cam)),
                               cmap="jet", vmin=0, vmax=1)


def gradcam_comparison_figure(face, maps, emotion_label, identity_label):
    """Emotion Grad-CAM, identity Grad-CAM and their difference on one face (``maps`` from
    :func:`utils.gradcam.compare_gradcam`): red where only the emotion model looks, blue
    where only the identity model does."""
    figure = Figure(figsize=(9, 3.4))
    emotion_axis, identity_axis, difference_axis = figure.subplots(1, 3)
    emotion_axis.imshow(cam_overlay(face, maps["emotion"]))
    emotion_axis.set_title(f"emotion: {emotion_label}")
    identity_axis.imshow(cam_overlay(face, maps["identity"]))
    identity_axis.set_title(f"identity: {identity_label}")
    image = difference_axis.imshow(maps["difference"], cmap="coolwarm", vmin=-1, vmax=1)
    difference_axis.set_title("emotion minus identity")
    figure.colorbar(image, ax=difference_axis, fraction=0.046)
    for axis in (emotion_axis, identity_axis, difference_axis):
        axis.set_axis_off()
    figure.tight_layout()
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
    return _tile_figure(kernels[:, :, 0, :], columns, "gray", 0.8,
                        f"First-layer kernels {kernels.shape[0]}x{kernels.shape[1]}, {count} filters", numbered=False)


# Explanations (utils.perturbation, utils.shap_lime): the input, occlusion, facial regions, SHAP, LIME.

KEYPOINT_RGB = (0, 200, 255)
EYE_LINE_RGB = (255, 220, 0)
BOX_RGB = (255, 140, 0)


def alignment_picture(image, prediction, crop, side=256):
    """The face where it was found: the photo around it with the detector's box, its keypoints,
    the eye line and the square that is cut out and turned upright (``crop``, a
    :class:`utils.faces.FaceCrop`), as ``(side, side, 3)`` uint8 RGB."""
    import cv2
    photo = to_rgb(image)
    x, y, w, h = prediction["box"]
    height, width = crop.image.shape[:2]
    outline = crop.to_picture([(0, 0), (width, 0), (width, height), (0, height)])
    reach = np.vstack([outline, [(x, y), (x + w, y + h)]])
    (left, top), (right, bottom) = reach.min(axis=0), reach.max(axis=0)
    extent = max(right - left, bottom - top) * 1.15
    centre = ((left + right) / 2, (top + bottom) / 2)
    scale = side / extent
    shift = np.array([[scale, 0, side / 2 - scale * centre[0]], [0, scale, side / 2 - scale * centre[1]]])
    view = cv2.warpAffine(photo, shift, (side, side), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderValue=(255, 255, 255))

    def at(points):
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return np.round(points @ shift[:, :2].T + shift[:, 2]).astype(np.int32)

    cv2.rectangle(view, *[tuple(p) for p in at([(x, y), (x + w, y + h)])], BOX_RGB, 1)
    cv2.polylines(view, [at(outline)], True, (255, 255, 255), 2)
    points = prediction.get("keypoints") or {}
    if "right_eye" in points and "left_eye" in points:
        cv2.line(view, *[tuple(p) for p in at([points["right_eye"], points["left_eye"]])], EYE_LINE_RGB, 2)
    for point in at(list(points.values())) if points else []:
        cv2.circle(view, tuple(point), 3, KEYPOINT_RGB, -1)
    return view


def input_figure(image, prediction, crop, face):
    """How the photo becomes the network's input: the face where it was found (box, keypoints,
    eye line, the square cut out), that square turned upright, and the input itself."""
    figure = Figure(figsize=(8, 3.2))
    photo_axis, crop_axis, input_axis = figure.subplots(1, 3)
    photo_axis.imshow(alignment_picture(image, prediction, crop))
    photo_axis.set_title("no face found: whole image" if prediction.get("whole_image") else "detected face")
    crop_axis.imshow(to_rgb(crop.image))
    crop_axis.set_title(f"upright ({crop.angle:+.0f}\u00b0)")
    input_axis.imshow(to_rgb(face))
    input_axis.set_title("input " + "x".join(str(v) for v in np.shape(face)))
    for axis in (photo_axis, crop_axis, input_axis):
        axis.set_axis_off()
    figure.tight_layout()
    return figure


def attribution_figure(face, values, title, segments=None):
    """A signed explanation map (occlusion drop, SHAP, LIME) over the face and on its own.

    Red supports the class, blue argues against it; the colour scale is symmetric around
    zero so white means "no effect". ``segments`` draws the superpixels SHAP/LIME used.
    """
    values = np.asarray(values, dtype=np.float32)
    limit = float(np.abs(values).max()) or 1.0
    colours = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}

    def draw_overlay(axis):
        axis.imshow(_with_boundaries(face, segments) if segments is not None else to_rgb(face),
                    extent=(-0.5, values.shape[1] - 0.5, values.shape[0] - 0.5, -0.5))
        axis.imshow(values, alpha=0.5, **colours)

    return _overlay_beside_map(title, "map", values, draw_overlay, **colours)


def _with_boundaries(face, segments, scale=4):
    """The face enlarged ``scale`` times with thin yellow superpixel outlines."""
    from skimage.segmentation import find_boundaries
    big = np.kron(to_rgb(face), np.ones((scale, scale, 1), dtype=np.uint8))
    big[find_boundaries(np.kron(segments, np.ones((scale, scale), dtype=segments.dtype)), mode="inner")] = (255, 255, 0)
    return big


def region_figure(face, regions, class_name):
    """Facial regions on the face, coloured by how much hiding each lowers ``class_name``,
    beside a table of the drops (``regions``: :func:`utils.perturbation.region_sensitivity`)."""
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle
    figure = Figure(figsize=(8, 3.6))
    face_axis, table_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    face_axis.imshow(to_rgb(face))
    limit = max(abs(region["drop"]) for region in regions) or 1.0
    for region in regions:
        colour = colormaps["RdBu_r"](0.5 + 0.5 * region["drop"] / limit)
        for x, y, w, h in region["boxes"]:
            face_axis.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=True, alpha=0.55,
                                          facecolor=colour, edgecolor="black", linewidth=0.8))
        x, y, w, h = region["boxes"][0]
        face_axis.text(x + w / 2, y + h / 2, region["region"], ha="center", va="center", fontsize=7)
    face_axis.set_axis_off()
    table_axis.set_axis_off()
    rows = [[r["region"], f"{r['probability'] + r['drop']:.0%}", f"{r['probability']:.0%}", f"{r['drop']:+.0%}"]
            for r in regions]
    table = table_axis.table(cellText=rows, colLabels=["region", "intact", "hidden", "drop"], loc="center")
    table.scale(1, 1.5)
    figure.suptitle(f"Hiding facial regions: {class_name}")
    figure.tight_layout()
    return figure


# Evaluation figures (evaluate.py): confusion matrices, calibration, mistakes, model comparison.

def confusion_heatmap(matrix, classes, normalised=False, title="Confusion matrix", row_classes=None):
    """Rows are true classes, columns predicted: counts, or each row's shares when ``normalised``.
    ``row_classes``: the true classes of the rows when they are not all of ``classes``."""
    import seaborn as sns  # slow to import; only this figure needs it
    figure = Figure(figsize=(7, 6))
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

    ``bins`` is :func:`utils.metrics.reliability_bins`' dict. A bar under the diagonal
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
    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    sns.barplot(x=names, y=shares, hue=names, palette=class_colours(names), legend=False, ax=axis)
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
