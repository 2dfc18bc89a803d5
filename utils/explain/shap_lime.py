"""SHAP and LIME over superpixels: two model-agnostic explanations, from optional packages.

Both switch patches of similar brightness (SLIC superpixels) on and off, hiding them
with the face's mean, and explain a :class:`utils.explain.targets.Target` computed by a
``source`` (the predictor it describes). ``pip install -r requirements-xai.txt`` adds
the packages; without them each method raises :class:`MissingOptionalPackage`, whose
message says so.
"""
import numpy as np

from utils.explain.perturbation import hide

XAI_INSTALL_HINT = "pip install -r requirements-xai.txt"


class MissingOptionalPackage(ImportError):
    """An optional explanation package is not installed; the message says how to add it."""


def _optional_import(module, package, method):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingOptionalPackage(
            f"{method} needs the optional package '{package}': {XAI_INSTALL_HINT}") from None


def superpixels(face, count=40):
    """SLIC superpixels of a face: ``(H, W)`` labels of patches of similar brightness.

    At 48x48 a face gives about 25, few enough for a few hundred model evaluations.
    """
    from skimage.segmentation import slic
    gray = np.asarray(face, dtype=np.float64).mean(axis=-1)
    return slic(gray, n_segments=count, compactness=0.1, start_label=0, channel_axis=None)


def _paint(segments, values):
    """One value per superpixel -> an ``(H, W)`` map."""
    return np.asarray(values, dtype=np.float32)[segments]


def shap_map(source, face, target, samples=300, segments=None):
    """Kernel SHAP over superpixels: ``(values, segments)``, values an ``(H, W)`` map.

    Each superpixel's Shapley value is its share of the target; together they add up to
    the target on the intact face minus that on the fully hidden one. SHAP's
    model-agnostic KernelExplainer needs only the model's outputs and starts at once,
    where the partition explainer's numba code took 35 s to compile in each new process
    on these 2-core machines.
    """
    shap = _optional_import("shap", "shap", "SHAP")
    segments = superpixels(face) if segments is None else segments
    count = int(segments.max()) + 1
    explainer = shap.KernelExplainer(_superpixel_model(source, face, segments, target), np.zeros((1, count)))
    values = explainer.shap_values(np.ones((1, count)), nsamples=samples, l1_reg=False, silent=True)
    return _paint(segments, np.ravel(values)), segments


def _superpixel_model(source, face, segments, target):
    """On/off rows ``(N, S)`` -> the target with the off superpixels hidden."""
    def model(rows):
        masks = [~np.isin(segments, np.flatnonzero(row)) for row in rows]
        return target.values(source, np.stack([hide(face, mask) for mask in masks]))
    return model


def lime_map(source, face, target, samples=300, segments=None):
    """LIME's image explainer: ``(weights, segments)``, weights an ``(H, W)`` map.

    A linear model of the target fitted to random on/off patterns of the same superpixels
    as SHAP (hidden with the face's mean); a positive weight raises the target. Kernel
    SHAP is this with Shapley weights instead of LIME's distance kernel.
    """
    lime_image = _optional_import("lime.lime_image", "lime", "LIME")
    segments = superpixels(face) if segments is None else segments
    channels = face.shape[-1]
    # LIME works on RGB images and explains one column of what its function returns: the target's.
    rgb = np.repeat(np.asarray(face, dtype=np.float64).mean(axis=-1, keepdims=True), 3, axis=-1)
    explanation = lime_image.LimeImageExplainer(random_state=0).explain_instance(
        rgb, lambda images: target.values(source, images[..., :channels].astype(np.float32))[:, None],
        labels=(0,), top_labels=None, hide_color=float(rgb.mean()), num_samples=samples,
        batch_size=samples, segmentation_fn=lambda image: segments, random_seed=0)
    weights = np.zeros(int(segments.max()) + 1)
    for segment, weight in explanation.local_exp[0]:
        weights[segment] = weight
    return _paint(segments, weights), segments
