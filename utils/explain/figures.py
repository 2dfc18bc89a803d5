"""Figures of the explanations: Grad-CAM maps over the face, attributions, region scores."""
import numpy as np
from matplotlib.figure import Figure

from utils.media.colour import to_rgb


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
    :func:`utils.explain.gradcam.compare_gradcam`): red where only the emotion model looks, blue
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
    beside a table of the drops (``regions``: :func:`utils.explain.perturbation.region_sensitivity`)."""
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
