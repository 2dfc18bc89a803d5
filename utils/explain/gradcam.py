"""Grad-CAM (Selvaraju et al., 2017): where in the face a layer found the evidence for a target.

A layer's feature maps are weighted by how much the target (:class:`utils.explain.targets.Target`:
the probability shown beside the face) rises with each of them, averaged over the map,
and summed; the positive part, enlarged to the face, is the map. When the target
averages the face with its mirror image, so does Grad-CAM: the mirror's map is flipped
back and added, so the map explains the very number on screen.
"""
import threading

import cv2
import keras
import numpy as np

from utils.explain.layers import conv_layers, named_layer, spatial_layers
from utils.model.architectures import LOGITS_LAYER


class GradCam:
    """Grad-CAM for one model; the sub-models are built once per layer and kept; safe to share between threads."""

    def __init__(self, model):
        self.model = model
        self._models = {}
        self._lock = threading.Lock()

    @property
    def precision(self):
        """What the maps are computed in: the model's own precision (the float32 network, whichever
        precision the predictor serves its labels in)."""
        return keras.backend.standardize_dtype(self.model.dtype_policy.compute_dtype)

    def default_layer(self):
        """The last convolution: where Grad-CAM reads the network's evidence.

        Its own output, not the ReLU (or batch norm) after it: in the VGG model the ReLU'd
        map weighted by the averaged gradients was entirely negative, so Grad-CAM gave an
        empty map, for 24 of 61 real faces; the convolution's output gave none empty.
        """
        convolutions = conv_layers(self.model)
        if not convolutions:
            raise ValueError(f"model {self.model.name} has no convolution layer for Grad-CAM")
        return convolutions[-1]

    def layers(self):
        """The layers Grad-CAM can read: those whose output is a stack of feature maps."""
        return spatial_layers(self.model)

    def check_layer(self, name):
        """``name`` if Grad-CAM can read it (None: the default layer)."""
        name = named_layer(self.model, name or self.default_layer()).name
        if name not in self.layers():
            raise ValueError(f"layer '{name}' has no feature maps for Grad-CAM (choose one of: {', '.join(self.layers())})")
        return name

    def _model(self, layer_name):
        with self._lock:
            if layer_name not in self._models:
                self._models[layer_name] = keras.Model(
                    self.model.input, [self.model.get_layer(layer_name).output, self.model.get_layer(LOGITS_LAYER).output])
            return self._models[layer_name]

    def activations_and_gradients(self, faces, targets, layer_name):
        """``(activations, gradients, values)``: a layer's maps for every view of every face
        ``(V, N, h, w, k)`` (V = 2 with the mirror image), the gradient of each face's target
        with respect to them, and the targets' values ``(N,)``. The targets share their
        temperature, offsets and mirroring (they describe one predictor)."""
        import tensorflow as tf
        faces = np.asarray(faces, dtype=np.float32)
        first = targets[0]
        views = 2 if first.mirror else 1
        indices = tf.constant([target.class_index for target in targets], dtype=tf.int32)
        batch = tf.convert_to_tensor(first.batch(faces))
        with tf.GradientTape() as tape:
            activations, logits = self._model(layer_name)(batch, training=False)
            probabilities = tf.nn.softmax(first.scaled(logits), axis=-1)
            values = tf.gather(probabilities, indices, axis=1, batch_dims=1)
        gradients = tape.gradient(values, activations)
        shape = (views, len(faces), *activations.shape[1:])
        return (activations.numpy().reshape(shape), gradients.numpy().reshape(shape), values.numpy())

    def maps(self, faces, targets, layer_name=None):
        """Grad-CAM maps ``(N, H, W)`` in [0, 1] at the faces' size, one target per face."""
        faces = np.asarray(faces, dtype=np.float32)
        layer_name = self.check_layer(layer_name)
        activations, gradients, _ = self.activations_and_gradients(faces, targets, layer_name)
        weights = gradients.mean(axis=(2, 3), keepdims=True)              # one weight per channel and view
        cams = (weights * activations).sum(axis=-1)                      # (V, N, h, w)
        if len(cams) == 2:
            cams[1] = cams[1][:, :, ::-1]                                # the mirror's map, back in place
        cams = np.maximum(cams.sum(axis=0), 0.0)                         # ReLU: evidence for the target
        height, width = faces.shape[1:3]
        return np.stack([_resize_unit(cam, height, width) for cam in cams])

    def gradcam(self, face, target, layer_name=None):
        """Grad-CAM for one face: an ``(H, W)`` map in [0, 1]."""
        return self.maps(face[None], [target], layer_name)[0]

    def all_classes(self, face, predictor, layer_name=None):
        """One map per class ``(K, H, W)``: where the network looks for each emotion."""
        from utils.explain.targets import Target
        targets = [Target.of(predictor, index) for index in range(len(predictor.classes))]
        return self.maps(np.repeat(face[None], len(targets), axis=0), targets, layer_name)


def compare_gradcam(emotion, identity, face_emotion, face_identity, emotion_target, identity_target):
    """Where the emotion model and the identity model look on the same face.

    ``emotion`` and ``identity`` are :class:`GradCam` s; each model gets the crop
    preprocessed for its own card (sizes and channels may differ); the identity map is
    resized to the emotion map's size so the two can be subtracted. Returns ``{"emotion":
    (H, W), "identity": (H, W), "difference": (H, W)}``, the maps in [0, 1] and the
    difference ``emotion - identity`` in [-1, 1]: positive where only "how they feel"
    looks, negative where only "who it is" looks.
    """
    emotion_map = emotion.gradcam(face_emotion, emotion_target)
    identity_map = identity.gradcam(face_identity, identity_target)
    height, width = emotion_map.shape
    if identity_map.shape != emotion_map.shape:
        identity_map = np.clip(cv2.resize(identity_map, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    return {"emotion": emotion_map, "identity": identity_map, "difference": emotion_map - identity_map}


def _resize_unit(cam, height, width):
    """Upsample a coarse map to the face's size and scale it to [0, 1]."""
    resized = cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    peak = resized.max()
    return resized / peak if peak > 0 else np.zeros_like(resized)
