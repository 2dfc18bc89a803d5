"""What a channel looks for: the input that excites it most, and the test faces that do.

The pattern is found by gradient ascent on the input from a grey start, with the usual
regularisers that keep it an image rather than noise the network happens to like:
random jitter of a pixel or two each step, a light Gaussian blur every few steps and an
L2 penalty pulling towards grey (Olah et al., "Feature Visualization", Distill 2017).
Patterns are kept in memory (per :class:`ChannelExplainer`, so per model); the test
faces' ranking is computed once for every channel of a layer and kept on disk, in a
git-ignored folder.
"""
import hashlib
import json
import os
import threading

import cv2
import keras
import numpy as np

from utils.defaults import CACHE_DIR, FER2013_TEST, project_path
from utils.explain.layers import conv_layers, convolution_inputs
from utils.faces.preprocess import preprocess
from utils.files import write_json

TOP_FACES = 9
DATA_HINT = "put FER2013 in dataset/fer2013 ('make data' unpacks it; see dataset/README.md)"

STEPS = 96
STEP_SIZE = 0.02      # mean absolute change of a pixel per step: the gradient is normalised
L2_DECAY = 0.01       # each step moves every pixel this share of the way back to grey
JITTER = 2            # pixels, either way
BLUR_EVERY = 4
BLUR_SIGMA = 0.5
GREY = 0.5
BATCH = 256


class ChannelExplainer:
    """Patterns and top test faces for the channels of one model; safe to share between threads.

    ``classes`` are the model card's, the order of the test folder's labels.
    """

    def __init__(self, model, classes, cache_folder=project_path(CACHE_DIR)):
        self.model, self.classes, self.cache_folder = model, list(classes), cache_folder
        self._patterns, self._gradients, self._rankings = {}, {}, {}
        self._weights_digest = None
        self._gradients_lock, self._rankings_lock = threading.Lock(), threading.Lock()

    # ---- the input that excites a channel most ----------------------------------------
    def pattern(self, layer_name, channel, seed=0):
        """The input (model-sized, in [0, 1]) that excites the convolution channel most.

        ``{"layer": str, "channel": int, "seed": int, "steps": int, "image": (H, W, C) nested floats,
        "response": float, "grey_response": float}``: ``response`` is the channel's mean over
        its map as the next ReLU passes it on (see :meth:`_gradient_function`), for the
        pattern and for a plain grey input. The seed draws the jitter: the same seed
        gives the same pattern, and a second call returns the kept one at once.
        """
        layer = self._convolution(layer_name)
        _check_channel(layer, channel)
        key = (layer.name, int(channel), int(seed))
        if key not in self._patterns:
            self._patterns[key] = self._ascend(layer, int(channel), int(seed))
        return self._patterns[key]

    def convolutions(self):
        """Names of the layers whose channels have a pattern, in network order: every convolution."""
        return conv_layers(self.model)

    def _convolution(self, name):
        if name not in self.convolutions():
            raise ValueError(f"'{name}' is not a convolution of this model "
                             f"(convolutions: {', '.join(self.convolutions())})")
        return self.model.get_layer(name)

    def _ascend(self, layer, channel, seed):
        import tensorflow as tf
        rng = np.random.default_rng(seed)
        gradient_of = self._gradient_function(layer)
        shape = (1,) + tuple(self.model.input.shape[1:])
        image = np.full(shape, GREY, dtype=np.float32)
        channel_tensor, no_shift = tf.constant(channel), tf.constant([0, 0])
        grey_response, _ = gradient_of(tf.constant(image), no_shift, channel_tensor)
        for step in range(1, STEPS + 1):
            shift = tf.constant(rng.integers(-JITTER, JITTER + 1, size=2), dtype=tf.int32)
            _, gradient = gradient_of(tf.constant(image), shift, channel_tensor)
            gradient = gradient.numpy()
            image += STEP_SIZE * gradient / (np.abs(gradient).mean() + 1e-12) - L2_DECAY * (image - GREY)
            if step % BLUR_EVERY == 0:
                image[0] = cv2.GaussianBlur(image[0], (0, 0), BLUR_SIGMA).reshape(image.shape[1:])
            np.clip(image, 0.0, 1.0, out=image)
        response, _ = gradient_of(tf.constant(image), no_shift, channel_tensor)
        return {"layer": layer.name, "channel": channel, "seed": seed, "steps": STEPS,
                "image": image[0].astype(float).tolist(), "response": float(response),
                "grey_response": float(grey_response)}

    def _gradient_function(self, layer):
        """``(image, shift, channel) -> (response, d objective / d image)``, compiled once per layer.

        The channel's value is taken where the next ReLU reads it: the convolution plus
        bias, through the batch normalisations that follow it (VGG). The response is its
        mean over the map after that ReLU (without one, the mean of a first-layer filter
        would be largest on a flat image). While the whole channel is silent the ReLU
        passes no gradient, so the objective is then the mean before the ReLU, which
        pushes the input the way the channel grows. The image is rolled by ``shift``
        pixels first (the jitter); only the channel's own kernel is computed.
        """
        import tensorflow as tf
        with self._gradients_lock:
            if layer.name not in self._gradients:
                to_layer = keras.Model(self.model.input, layer.input)
                normalisations = _normalisations_after(self.model, layer)

                @tf.function(reduce_retracing=True)
                def gradient_of(image, shift, channel):
                    with tf.GradientTape() as tape:
                        tape.watch(image)
                        inputs = to_layer(tf.roll(image, shift, axis=[1, 2]), training=False)
                        response = _convolution_channel(layer, inputs, channel)
                        for norm in normalisations:
                            response = _normalise(norm, response, channel)
                        rectified = tf.reduce_mean(tf.nn.relu(response))
                        objective = tf.where(rectified > 0, rectified, tf.reduce_mean(response))
                    return rectified, tape.gradient(objective, image)
                self._gradients[layer.name] = gradient_of
            return self._gradients[layer.name]

    # ---- the test faces that excite a channel most ----------------------------------------
    def top_faces(self, layer_name, channel, test_folder=project_path(FER2013_TEST)):
        """The nine test faces with the largest mean activation of the channel (its output, as shown).

        ``{"layer": str, "channel": int, "test_folder": str, "faces": [{"path": str (under the
        test folder), "class": str, "activation": float, "image": (H, W, C) nested floats}]}``,
        strongest first. The ranking of every channel of the layer is computed in one pass
        over the test set and kept under ``cache_folder``; a DatasetError says how to get
        FER2013 when the folder is missing.
        """
        from utils.train.datasets import DatasetError
        if not os.path.isdir(test_folder):
            raise DatasetError(f"the test faces are not in {test_folder}: {DATA_HINT}")
        layer = self._layer_with_channels(layer_name)
        _check_channel(layer, channel)
        ranking = self._ranking(layer, test_folder)
        height, width, channels = self.model.input.shape[1:]
        faces = []
        for index, activation in zip(ranking["top"][channel], ranking["activations"][channel]):
            path = ranking["paths"][index]
            gray = cv2.imread(os.path.join(test_folder, path), cv2.IMREAD_GRAYSCALE)
            faces.append({"path": path, "class": ranking["classes"][ranking["labels"][index]],
                          "activation": activation,
                          "image": preprocess(gray, height, width, channels).astype(float).tolist()})
        return {"layer": layer.name, "channel": int(channel), "test_folder": test_folder, "faces": faces}

    def _layer_with_channels(self, name):
        names = [layer.name for layer in self.model.layers if len(layer.output.shape) in (2, 4)
                 and not isinstance(layer, keras.layers.InputLayer)]
        if name not in names:
            raise ValueError(f"unknown layer '{name}' (layers with channels: {', '.join(names)})")
        return self.model.get_layer(name)

    def _ranking(self, layer, test_folder):
        """The top faces of every channel of ``layer``: from memory, from disk, or computed and saved."""
        with self._rankings_lock:  # one pass over the test set per layer, however many ask
            path = self._ranking_path(layer, test_folder)
            if path not in self._rankings:
                if os.path.isfile(path):
                    with open(path) as handle:
                        self._rankings[path] = json.load(handle)
                else:
                    self._rankings[path] = self._rank(layer, test_folder)
                    write_json(path, self._rankings[path])
            return self._rankings[path]

    def _ranking_path(self, layer, test_folder):
        """A file named by the model's weights and the test set's file names, so neither goes stale."""
        if self._weights_digest is None:
            weights = hashlib.sha256()
            for array in self.model.get_weights():
                weights.update(np.ascontiguousarray(array).tobytes())
            self._weights_digest = weights.hexdigest()
        digest = hashlib.sha256(self._weights_digest.encode())
        for root, _, names in sorted(os.walk(test_folder)):
            digest.update("\n".join([os.path.relpath(root, test_folder)] + sorted(names)).encode())
        return os.path.join(self.cache_folder, "top_faces", f"{self.model.name}-{digest.hexdigest()[:16]}",
                            f"{layer.name}.json")

    def _rank(self, layer, test_folder):
        from utils.train.datasets import load_test_split
        height, width, channels = self.model.input.shape[1:]
        split = load_test_split(test_folder, self.classes, (height, width), channels)
        to_layer = keras.Model(self.model.input, layer.output)
        means = np.concatenate([_channel_means(to_layer.predict_on_batch(split.images[start:start + BATCH]))
                                for start in range(0, len(split), BATCH)])
        top = np.argsort(-means, axis=0, kind="stable")[:TOP_FACES].T   # (channels, TOP_FACES)
        return {"model": self.model.name, "layer": layer.name, "images": len(split), "classes": self.classes,
                "paths": [os.path.relpath(path, test_folder) for path in split.paths],
                "labels": split.labels.tolist(), "top": top.tolist(),
                "activations": np.take_along_axis(means.T, top, axis=1).astype(float).tolist()}


def _convolution_channel(layer, inputs, channel):
    """Output ``channel`` (a tensor) of a convolution before its activation ``(N, H, W, 1)``, from
    that channel's weights alone (a separable convolution's depthwise step serves all its channels)."""
    first, count = convolution_inputs(layer, channel)
    inputs = keras.ops.slice(inputs, (0, 0, 0, first), (-1, -1, -1, count))
    settings = {"strides": layer.strides, "padding": layer.padding, "dilation_rate": layer.dilation_rate,
                "data_format": layer.data_format}
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        rows, columns = layer.kernel_size
        kernel = keras.ops.slice(layer.kernel, (0, 0, first, channel % layer.depth_multiplier), (rows, columns, 1, 1))
        response = keras.ops.depthwise_conv(inputs, kernel, **settings)
    elif isinstance(layer, keras.layers.SeparableConv2D):
        response = keras.ops.separable_conv(inputs, layer.depthwise_kernel,
                                            layer.pointwise_kernel[..., channel:channel + 1], **settings)
    else:
        response = keras.ops.conv(inputs, layer.kernel[..., channel:channel + 1], **settings)
    return response + layer.bias[channel] if layer.use_bias else response


def _normalisations_after(model, layer):
    """The batch normalisations that directly follow a linear ``layer``, in order."""
    found, current = [], layer
    while getattr(current, "activation", keras.activations.linear) is keras.activations.linear:
        following = [other for other in model.layers if not isinstance(other, keras.layers.InputLayer)
                     and other.input is current.output]
        if len(following) != 1 or not isinstance(following[0], keras.layers.BatchNormalization):
            break
        current = following[0]
        found.append(current)
    return found


def _normalise(norm, value, channel):
    """One channel of a batch normalisation with its learned moving statistics."""
    import tensorflow as tf
    scaled = (value - norm.moving_mean[channel]) * tf.math.rsqrt(norm.moving_variance[channel] + norm.epsilon)
    if norm.scale:
        scaled = scaled * norm.gamma[channel]
    return scaled + norm.beta[channel] if norm.center else scaled


def _channel_means(activations):
    """``(N, ..., C)`` -> each image's mean of each channel ``(N, C)``."""
    activations = np.asarray(activations)
    return activations.reshape(len(activations), -1, activations.shape[-1]).mean(axis=1)


def _check_channel(layer, channel):
    channels = layer.output.shape[-1]
    if not 0 <= channel < channels:
        raise ValueError(f"layer '{layer.name}' has channels 0..{channels - 1}, not {channel}")

