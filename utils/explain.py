"""Opening the CNN up: every layer's output for one face, and Grad-CAM.

Arrays in, arrays out; :mod:`utils.plots` draws them. Layers are found by their
type, never by hard-coded names, so any Keras model in ``models/`` explains itself.
The sub-models are built once per loaded model and kept (building one costs far
more than running it).
"""
import threading
from dataclasses import dataclass

import keras
import numpy as np

from utils.models import LOGITS_LAYER

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
        """The last layer with a spatial map: where Grad-CAM reads the network's evidence.

        A pooling layer is skipped in favour of the conv/activation before it, whose map
        is twice as fine and carries the same evidence.
        """
        spatial = [layer for layer in self.layers if len(layer.output.shape) == 4
                   and layer_kind(layer) in ("conv", "activation", "batchnorm")]
        if not spatial:
            raise ValueError(f"model {self.model.name} has no convolution layer for Grad-CAM")
        return spatial[-1].name

    def check_layer(self, name):
        names = [layer.name for layer in self.layers]
        if name not in names:
            raise ValueError(f"unknown layer '{name}' (layers: {', '.join(names)})")
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
        layer_name = layer_name or self.default_cam_layer()
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

    def _logits_of(self, faces):
        model = self._gradient_model(self.default_cam_layer())
        return keras.ops.convert_to_numpy(model(faces, training=False)[1])


def _resize_unit(cam, height, width):
    """Upsample a coarse map to the face's size and scale it to [0, 1]."""
    import cv2
    resized = cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    peak = resized.max()
    return resized / peak if peak > 0 else np.zeros_like(resized)
