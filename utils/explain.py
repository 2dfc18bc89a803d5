"""Opening the CNN up: every layer's output for one face, Grad-CAM, occlusion,
facial-region sensitivity, SHAP and LIME, and the checks that they are faithful.

Arrays in, arrays out; :mod:`utils.plots` draws them. Layers are found by their
type, never by hard-coded names, so any Keras model in ``models/`` explains itself.
The sub-models are built once per loaded model and kept (building one costs far
more than running it).

The perturbation methods (occlusion, regions, deletion, SHAP, LIME) take a
``source`` of probabilities: a :class:`utils.predict.Predictor` (calibrated, the
same numbers as the softmax bars), an :class:`Explainer` or a Keras model (its own
softmax). A face is always one preprocessed float ``(H, W, C)`` array in [0, 1].
"""
import threading
from dataclasses import dataclass

import keras
import numpy as np

from utils.models import LOGITS_LAYER
from utils.predict import softmax
from utils.regions import region_boxes

XAI_INSTALL_HINT = "pip install -r requirements-xai.txt"

# Keras layer class -> the kind of step a student sees.
LAYER_KINDS = {
    "Conv2D": "conv", "DepthwiseConv2D": "conv", "SeparableConv2D": "conv",
    "MaxPooling2D": "pool", "AveragePooling2D": "pool",
    "GlobalAveragePooling2D": "pool", "GlobalMaxPooling2D": "pool",
    "BatchNormalization": "batchnorm", "Activation": "activation", "ReLU": "activation",
    "Dense": "dense", "Flatten": "flatten", "Dropout": "dropout", "Rescaling": "rescale",
}


@dataclass
class LayerOutput:
    name: str
    kind: str
    array: np.ndarray  # one face: (H, W, C) for spatial layers, (N,) for dense ones

    @property
    def shape(self):
        return tuple(self.array.shape)


def layer_kind(layer):
    kind = LAYER_KINDS.get(type(layer).__name__, "other")
    if kind == "activation" and getattr(layer.activation, "__name__", "") == "softmax":
        return "softmax"
    return kind


class Explainer:
    """Layer outputs and Grad-CAM for one model; safe to share between threads."""

    def __init__(self, model):
        self.model = model
        self.layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        self._outputs_model = keras.Model(model.input, [layer.output for layer in self.layers])
        self._gradient_models = {}
        self._lock = threading.Lock()

    # ---- which layers -------------------------------------------------------
    def spatial_layers(self):
        """Names of the layers whose output is a stack of feature maps."""
        return [layer.name for layer in self.layers if len(layer.output.shape) == 4]

    def conv_layers(self):
        return [layer.name for layer in self.layers if layer_kind(layer) == "conv"]

    def default_cam_layer(self):
        """The last convolution: where Grad-CAM reads the network's evidence.

        Its own output, not the ReLU (or batch norm) after it: in the VGG model the ReLU'd
        map weighted by the averaged gradients was entirely negative, so Grad-CAM gave an
        empty map, for 24 of 61 real faces; the convolution's output gave none empty.
        """
        convolutions = self.conv_layers()
        if not convolutions:
            raise ValueError(f"model {self.model.name} has no convolution layer for Grad-CAM")
        return convolutions[-1]

    def check_layer(self, name):
        names = [layer.name for layer in self.layers]
        if name not in names:
            raise ValueError(f"unknown layer '{name}' (layers: {', '.join(names)})")
        return name

    def check_cam_layer(self, name):
        """``name`` if Grad-CAM can read it: it must exist and output feature maps."""
        spatial = self.spatial_layers()
        if self.check_layer(name) not in spatial:
            raise ValueError(f"layer '{name}' has no feature maps for Grad-CAM (choose one of: {', '.join(spatial)})")
        return name

    # ---- computations -------------------------------------------------------
    def layer_outputs(self, face):
        """Every layer's output for one preprocessed face ``(H, W, C)``, in network order."""
        outputs = self._outputs_model(face[None].astype(np.float32), training=False)
        return [LayerOutput(layer.name, layer_kind(layer), keras.ops.convert_to_numpy(out)[0])
                for layer, out in zip(self.layers, outputs)]

    def first_kernels(self):
        """The first convolution's kernels ``(kh, kw, in, out)``: what each filter looks for."""
        for layer in self.layers:
            if layer_kind(layer) == "conv":
                return keras.ops.convert_to_numpy(layer.kernel)
        raise ValueError(f"model {self.model.name} has no convolution layer")

    def _gradient_model(self, layer_name):
        with self._lock:
            if layer_name not in self._gradient_models:
                self._gradient_models[layer_name] = keras.Model(
                    self.model.input,
                    [self.model.get_layer(layer_name).output, self.model.get_layer(LOGITS_LAYER).output])
            return self._gradient_models[layer_name]

    def activations_and_gradients(self, faces, class_indices, layer_name):
        """A layer's activations and d(logit of each face's class)/d(activations), for a batch."""
        import tensorflow as tf
        model = self._gradient_model(self.check_layer(layer_name))
        batch = tf.convert_to_tensor(np.asarray(faces, dtype=np.float32))
        with tf.GradientTape() as tape:
            activations, logits = model(batch, training=False)
            target = tf.gather(logits, tf.constant(class_indices), axis=1, batch_dims=1)
        gradients = tape.gradient(target, activations)
        return activations.numpy(), gradients.numpy(), logits.numpy()

    def gradcam_batch(self, faces, class_indices=None, layer_name=None):
        """Grad-CAM maps ``(N, H, W)`` in [0, 1] at the input's size.

        ``class_indices`` None explains each face's predicted class.
        """
        faces = np.asarray(faces, dtype=np.float32)
        layer_name = self.check_cam_layer(layer_name or self.default_cam_layer())
        if class_indices is None:
            class_indices = np.argmax(self._logits_of(faces), axis=1)
        class_indices = np.broadcast_to(np.asarray(class_indices, dtype=np.int32), (len(faces),))
        activations, gradients, _ = self.activations_and_gradients(faces, class_indices, layer_name)
        weights = gradients.mean(axis=(1, 2), keepdims=True)          # one weight per channel
        cams = np.maximum((weights * activations).sum(axis=-1), 0.0)   # ReLU: evidence for the class
        height, width = faces.shape[1:3]
        return np.stack([_resize_unit(cam, height, width) for cam in cams])

    def gradcam(self, face, class_index=None, layer_name=None):
        """Grad-CAM for one face: an ``(H, W)`` map in [0, 1]."""
        indices = None if class_index is None else [class_index]
        return self.gradcam_batch(face[None], indices, layer_name)[0]

    def gradcam_all_classes(self, face, num_classes, layer_name=None):
        """One Grad-CAM map per class ``(K, H, W)``: where the network looks for each emotion."""
        return self.gradcam_batch(np.repeat(face[None], num_classes, axis=0), np.arange(num_classes), layer_name)

    def probabilities(self, faces):
        """The model's own softmax for a batch (no calibration; a Predictor adds that)."""
        return softmax(self._logits_of(np.asarray(faces, dtype=np.float32)))

    def _logits_of(self, faces):
        model = self._gradient_model(self.default_cam_layer())
        return keras.ops.convert_to_numpy(model(faces, training=False)[1])


def compare_gradcam(emotion_explainer, identity_explainer, face_emotion, face_identity,
                    emotion_class=None, identity_class=None):
    """Where the emotion model and the identity model look on the same face.

    Each model gets the crop preprocessed for its own card (sizes and channels may
    differ); the identity map is resized to the emotion map's size so the two can be
    subtracted. Returns ``{"emotion": (H, W), "identity": (H, W), "difference": (H, W)}``,
    the maps in [0, 1] and the difference ``emotion - identity`` in [-1, 1]: positive
    where only "how they feel" looks, negative where only "who it is" looks.
    Classes default to each model's prediction.
    """
    emotion = emotion_explainer.gradcam(face_emotion, emotion_class)
    identity = identity_explainer.gradcam(face_identity, identity_class)
    height, width = emotion.shape
    if identity.shape != emotion.shape:
        import cv2
        identity = np.clip(cv2.resize(identity, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    return {"emotion": emotion, "identity": identity, "difference": emotion - identity}


def _resize_unit(cam, height, width):
    """Upsample a coarse map to the face's size and scale it to [0, 1]."""
    import cv2
    resized = cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    peak = resized.max()
    return resized / peak if peak > 0 else np.zeros_like(resized)


# ---- perturbation methods: hide part of the face, watch the probability ----------

def probability_function(source):
    """``batch -> (N, K)`` probabilities for a Predictor, an Explainer or a Keras model."""
    if hasattr(source, "probabilities"):
        return source.probabilities
    if isinstance(source, keras.Model):
        return lambda batch: keras.ops.convert_to_numpy(source(np.asarray(batch, dtype=np.float32), training=False))
    raise TypeError(f"cannot get probabilities from a {type(source).__name__}")


def _target_class(probabilities_of, face, class_index):
    """The class to explain (the predicted one by default) and its probability on the intact face."""
    probabilities = probabilities_of(face[None])[0]
    index = int(np.argmax(probabilities)) if class_index is None else int(class_index)
    return index, float(probabilities[index])


def hide(face, mask):
    """``face`` with the pixels where ``mask`` (H, W) is true filled with the face's mean colour.

    The mean adds no new edges, so a drop comes from what was removed, not from a black
    patch the network never saw in training.
    """
    hidden = np.array(face, dtype=np.float32, copy=True)
    hidden[mask] = hidden.mean(axis=(0, 1))
    return hidden


def deletion_drops(source, face, masks, class_index=None):
    """Drop in the class's probability when each mask's pixels are hidden: ``(M,)``, one batch."""
    return _probabilities_when_hidden(source, face, masks, class_index)[0]


def _probabilities_when_hidden(source, face, masks, class_index):
    """``(drops, base)``: the class's probability on the intact face minus with each mask hidden."""
    probabilities_of = probability_function(source)
    index, base = _target_class(probabilities_of, face, class_index)
    return base - probabilities_of(np.stack([hide(face, mask) for mask in masks]))[:, index], base


def top_fraction_mask(saliency, fraction):
    """A boolean mask of the ``fraction`` of pixels with the highest ``saliency``."""
    count = int(round(fraction * saliency.size))
    top = np.argsort(saliency.ravel(), kind="stable")[::-1][:count]
    mask = np.zeros(saliency.size, dtype=bool)
    mask[top] = True
    return mask.reshape(saliency.shape)


def occlusion_sensitivity(source, face, class_index=None, patch=None, stride=None):
    """How much the class's probability drops when a square patch hides each place: ``(H, W)``.

    Every patch position goes through the model in one batch; a pixel's value is the
    mean drop over the patches that covered it (negative: hiding it helped the class).
    Default patch: a sixth of the face (8 px at 48x48), moved by half a patch.
    """
    height, width = face.shape[:2]
    patch = patch or max(2, min(height, width) // 6)
    stride = stride or max(1, patch // 2)
    masks = []
    for top in _patch_starts(height, patch, stride):
        for left in _patch_starts(width, patch, stride):
            mask = np.zeros((height, width), dtype=bool)
            mask[top:top + patch, left:left + patch] = True
            masks.append(mask)
    masks = np.stack(masks)
    drops = deletion_drops(source, face, masks, class_index)
    return np.tensordot(drops, masks, axes=1) / np.maximum(masks.sum(axis=0), 1)


def _patch_starts(size, patch, stride):
    """Patch positions that cover ``size`` entirely, the last one flush with the edge."""
    last = max(0, size - patch)
    return sorted(set(range(0, last + 1, stride)) | {last})


def _boxes_mask(shape, boxes):
    mask = np.zeros(shape[:2], dtype=bool)
    for x, y, w, h in boxes:
        mask[y:y + h, x:x + w] = True
    return mask


def region_sensitivity(source, face, class_index=None, keypoints=None):
    """The drop in the class's probability when each facial region is hidden.

    One dict per region of :data:`utils.regions.REGION_LAYOUT` (forehead/brows, eyes, nose,
    mouth, cheeks), placed on ``keypoints`` (in pixels of ``face``; the canonical face's
    when None): ``{"region": "eyes", "boxes": [[x, y, w, h], ...], "probability": p_hidden,
    "drop": p - p_hidden}``. A large drop means the network relies on that region for the
    class (the predicted one by default); a negative one, that the region argued against it.
    """
    boxes = region_boxes(face.shape, keypoints)
    masks = [_boxes_mask(face.shape, rects) for rects in boxes.values()]
    drops, base = _probabilities_when_hidden(source, face, masks, class_index)
    return [{"region": name, "boxes": rects, "probability": float(base - drop), "drop": float(drop)}
            for (name, rects), drop in zip(boxes.items(), drops)]


# ---- sanity checks: are the explanations about the model? ---------------------------

def reinitialised_copy(model, seed=0):
    """The same architecture with fresh random weights, for the model-randomisation check.

    Adebayo et al. (2018): a method whose maps barely change when the learned weights are
    thrown away explains the image (edges), not the model. Seeds Keras' global generators.
    """
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def rank_correlation(first, second):
    """Spearman rank correlation of two maps; 0 when either is constant (it ranks nothing)."""
    from scipy.stats import spearmanr
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return 0.0
    return float(spearmanr(np.ravel(first), np.ravel(second))[0])


# ---- SHAP and LIME (optional packages) ------------------------------------------------

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

    SHAP and LIME switch these on and off (hidden with the face's mean); at 48x48 a
    face gives about 25, few enough for a few hundred model evaluations.
    """
    from skimage.segmentation import slic
    gray = np.asarray(face, dtype=np.float64).mean(axis=-1)
    return slic(gray, n_segments=count, compactness=0.1, start_label=0, channel_axis=None)


def _paint(segments, values):
    """One value per superpixel -> an ``(H, W)`` map."""
    return np.asarray(values, dtype=np.float32)[segments]


def shap_map(source, face, class_index=None, samples=300, segments=None):
    """Kernel SHAP over superpixels: ``(values, segments)``, values an ``(H, W)`` map.

    Each superpixel's Shapley value is its share of the class's probability (the
    predicted class by default); together they add up to the probability of the intact
    face minus that of the fully hidden one. SHAP's model-agnostic KernelExplainer needs
    only the model's outputs and starts at once, where the partition explainer's numba
    code took 35 s to compile in each new process on these 2-core machines.
    """
    shap = _optional_import("shap", "shap", "SHAP")
    probabilities_of = probability_function(source)
    index, _ = _target_class(probabilities_of, face, class_index)
    segments = superpixels(face) if segments is None else segments
    count = int(segments.max()) + 1
    explainer = shap.KernelExplainer(_superpixel_model(probabilities_of, face, segments, index), np.zeros((1, count)))
    values = explainer.shap_values(np.ones((1, count)), nsamples=samples, l1_reg=False, silent=True)
    return _paint(segments, np.ravel(values)), segments


def _superpixel_model(probabilities_of, face, segments, index):
    """On/off rows ``(N, S)`` -> the class's probability with the off superpixels hidden."""
    def model(rows):
        masks = [~np.isin(segments, np.flatnonzero(row)) for row in rows]
        return probabilities_of(np.stack([hide(face, mask) for mask in masks]))[:, index]
    return model


def lime_map(source, face, class_index=None, samples=300, segments=None):
    """LIME's image explainer: ``(weights, segments)``, weights an ``(H, W)`` map.

    A linear model of the class's probability fitted to random on/off patterns of the
    same superpixels as SHAP (hidden with the face's mean); a positive weight supports
    the class. Kernel SHAP is this with Shapley weights instead of LIME's distance kernel.
    """
    lime_image = _optional_import("lime.lime_image", "lime", "LIME")
    probabilities_of = probability_function(source)
    index, _ = _target_class(probabilities_of, face, class_index)
    segments = superpixels(face) if segments is None else segments
    channels = face.shape[-1]
    # LIME works on RGB images; the model's channels are gray copies, so any of them is the face.
    rgb = np.repeat(np.asarray(face, dtype=np.float64).mean(axis=-1, keepdims=True), 3, axis=-1)
    explanation = lime_image.LimeImageExplainer(random_state=0).explain_instance(
        rgb, lambda images: probabilities_of(images[..., :channels].astype(np.float32)),
        labels=(index,), top_labels=None, hide_color=float(rgb.mean()), num_samples=samples,
        batch_size=samples, segmentation_fn=lambda image: segments, random_seed=0)
    weights = np.zeros(int(segments.max()) + 1)
    for segment, weight in explanation.local_exp[index]:
        weights[segment] = weight
    return _paint(segments, weights), segments
