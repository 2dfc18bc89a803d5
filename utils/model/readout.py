"""A personal read-out: the model's last layer fitted again on one person's own frames.

The convolutions stay as trained; only the final dense layer (the logits of the card's
classes from the model's last features) is fitted anew, on features of one person's
faces, each labelled with the expression that person was asked to show. The fit is a
multinomial logistic regression started from the model's own final weights and pulled
towards them::

    minimise   mean_i cross_entropy(softmax(W f_i + b), y_i)
             + strength / 2 * (|W - W_model|^2 + |b - b_model|^2)

so the weights move only as far, and only in the directions, that the person's frames
call for; a class the person did not show keeps close to the model's weights. The pull
makes the problem strictly convex: it has one answer, which limited-memory BFGS finds in
a few dozen steps (:func:`fit`). ``static/engine/readout.js`` runs the very same steps
in the browser; Python is the reference, held to it by ``tests/test_browser_readout.py``.

A read-out serves ``softmax(W f + b)``: it replaces the last layer, temperature and
logit offsets included, because its own fit on the person's frames is its calibration.
The features ``f`` are the input of the model's final dense layer, each face averaged
with its mirror image as served (:meth:`utils.model.predict.Predictor.features`).

A read-out belongs to one model: its file names the model's weights digest (the card's
``weights_sha256``) and is refused, in one line, by any other model (:func:`check_model`).
"""
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from utils.files import write_json

FORMAT = "emodetect-readout"
VERSION = 1
# The fit's settings, the same in Python and in the browser (handed over in the engine constants).
STRENGTH = 0.1          # the pull towards the model's own weights, per unit of mean cross-entropy
TOLERANCE = 1e-6        # done when no coordinate of the objective's gradient is larger than this
MAX_ITERATIONS = 300    # a bound that a strictly convex problem of this size never meets in practice
MEMORY = 10             # the (step, gradient change) pairs L-BFGS remembers
ARMIJO = 1e-4           # a step is taken when it lowers the objective by this share of the slope's promise
BACKTRACK = 0.5         # otherwise the step is halved, at most MAX_HALVINGS times
MAX_HALVINGS = 40


def fit_settings():
    """The fit's settings as JSON, for the browser engine (``engine_constants``)."""
    return {"strength": STRENGTH, "tolerance": TOLERANCE, "max_iterations": MAX_ITERATIONS, "memory": MEMORY,
            "armijo": ARMIJO, "backtrack": BACKTRACK, "max_halvings": MAX_HALVINGS}


class ReadoutError(ValueError):
    """A read-out file that cannot be used here (another model's, or not a read-out); one line."""


def last_layer(model):
    """``(weights (features, classes), bias (classes,))`` of the model's final dense layer, in float64."""
    from utils.model.architectures import LOGITS_LAYER
    weights, bias = model.get_layer(LOGITS_LAYER).get_weights()
    return np.asarray(weights, np.float64), np.asarray(bias, np.float64)


def softmax_rows(logits):
    """softmax over the last axis, in float64."""
    shifted = np.asarray(logits, np.float64) - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def objective(theta, features, labels, start, strength):
    """``(value, gradient)`` of the fit's objective at ``theta`` (the weights row by row, then the bias)."""
    count, width = features.shape
    classes = len(start) // (width + 1)
    weights, bias = theta[:width * classes].reshape(width, classes), theta[width * classes:]
    probabilities = softmax_rows(features @ weights + bias)
    picked = probabilities[np.arange(count), labels]
    change = theta - start
    value = -np.mean(np.log(np.maximum(picked, 1e-300))) + strength / 2 * change @ change
    error = probabilities
    error[np.arange(count), labels] -= 1
    error /= count
    gradient = np.concatenate([(features.T @ error).ravel(), error.sum(axis=0)]) + strength * change
    return value, gradient


@dataclass
class Fit:
    """What :func:`fit` found: the weights and bias, how many steps it took and how long."""
    weights: np.ndarray
    bias: np.ndarray
    iterations: int
    seconds: float
    gradient: float   # the largest coordinate of the objective's gradient at the answer


def fit(features, labels, weights, bias, strength=STRENGTH):
    """The read-out for ``features`` (N, F) labelled ``labels`` (N class indices), started from and
    pulled towards ``weights`` (F, C) and ``bias`` (C,): limited-memory BFGS with a backtracking
    (Armijo) line search, every step as ``static/engine/readout.js`` takes it."""
    started = time.perf_counter()
    features = np.asarray(features, np.float64)
    labels = np.asarray(labels, np.int64)
    weights, bias = np.asarray(weights, np.float64), np.asarray(bias, np.float64)
    if features.ndim != 2 or features.shape[1] != weights.shape[0] or len(labels) != len(features):
        raise ValueError(f"features {features.shape} and labels {labels.shape} do not fit a last layer of "
                         f"{weights.shape[0]} features")
    if not len(labels):
        raise ValueError("no frames to fit a read-out on")
    if labels.min() < 0 or labels.max() >= len(bias):
        raise ValueError(f"labels must be class indices 0 to {len(bias) - 1}")
    start = np.concatenate([weights.ravel(), bias])
    theta = start.copy()
    value, gradient = objective(theta, features, labels, start, strength)
    steps, changes = [], []
    iterations = 0
    while iterations < MAX_ITERATIONS and np.abs(gradient).max() > TOLERANCE:
        direction = -two_loop(gradient, steps, changes)
        slope = gradient @ direction
        if slope >= 0:   # not a descent direction (rounding): start the memory again
            steps, changes = [], []
            direction, slope = -gradient, -(gradient @ gradient)
        size, taken = 1.0, None
        for _ in range(MAX_HALVINGS):
            candidate = theta + size * direction
            new_value, new_gradient = objective(candidate, features, labels, start, strength)
            if new_value <= value + ARMIJO * size * slope:
                taken = candidate
                break
            size *= BACKTRACK
        if taken is None:   # no step lowers it any more: as close as float64 gets
            break
        step, change = taken - theta, new_gradient - gradient
        if step @ change > 1e-12:
            steps.append(step)
            changes.append(change)
            if len(steps) > MEMORY:
                steps.pop(0)
                changes.pop(0)
        theta, value, gradient = taken, new_value, new_gradient
        iterations += 1
    width, classes = weights.shape
    return Fit(theta[:width * classes].reshape(width, classes), theta[width * classes:], iterations,
               time.perf_counter() - started, float(np.abs(gradient).max()))


def two_loop(gradient, steps, changes):
    """L-BFGS' estimate of the inverse Hessian times ``gradient``, from the remembered pairs (the
    identity, scaled by the newest pair, as its start; the identity itself without pairs)."""
    direction = gradient.copy()
    alphas = []
    for step, change in zip(reversed(steps), reversed(changes)):
        alpha = (step @ direction) / (step @ change)
        direction -= alpha * change
        alphas.append(alpha)
    if steps:
        direction *= (steps[-1] @ changes[-1]) / (changes[-1] @ changes[-1])
    for (step, change), alpha in zip(zip(steps, changes), reversed(alphas)):
        beta = (change @ direction) / (step @ change)
        direction += (alpha - beta) * step
    return direction


@dataclass(frozen=True)
class Readout:
    """One person's last layer for one model: the weights and bias, the model they belong to, and
    how they were made (frames per class, the pull's strength)."""
    model: str
    weights_sha256: str
    classes: tuple
    weights: np.ndarray     # (features, classes)
    bias: np.ndarray        # (classes,)
    strength: float = STRENGTH
    frames: dict = field(default_factory=dict)   # class name -> frames it was fitted on
    created: str = ""

    def probabilities(self, features):
        """softmax(f W + b) for features (N, F): what the read-out serves, no temperature or offsets."""
        return softmax_rows(np.asarray(features, np.float64) @ self.weights + self.bias)

    def to_dict(self):
        return {"format": FORMAT, "version": VERSION, "model": self.model, "weights_sha256": self.weights_sha256,
                "classes": list(self.classes), "features": int(self.weights.shape[0]),
                "weights": self.weights.tolist(), "bias": self.bias.tolist(), "strength": self.strength,
                "frames": dict(self.frames), "created": self.created}

    @classmethod
    def from_dict(cls, mapping):
        """The read-out a JSON object describes; :class:`ReadoutError` in one line when it is not one."""
        if not isinstance(mapping, dict) or mapping.get("format") != FORMAT:
            raise ReadoutError("this is not a read-out file (it has no \"format\": \"emodetect-readout\")")
        if mapping.get("version") != VERSION:
            raise ReadoutError(f"read-out version {mapping.get('version')!r} is not one this program reads ({VERSION})")
        try:
            classes = tuple(str(name) for name in mapping["classes"])
            weights = np.asarray(mapping["weights"], np.float64)
            bias = np.asarray(mapping["bias"], np.float64)
            readout = cls(model=str(mapping["model"]), weights_sha256=str(mapping["weights_sha256"]), classes=classes,
                          weights=weights, bias=bias, strength=float(mapping.get("strength", STRENGTH)),
                          frames={str(k): int(v) for k, v in dict(mapping.get("frames", {})).items()},
                          created=str(mapping.get("created", "")))
        except (KeyError, TypeError, ValueError) as error:
            raise ReadoutError(f"the read-out file is incomplete or damaged ({error})") from None
        if weights.ndim != 2 or weights.shape != (int(mapping.get("features", -1)), len(classes)) \
                or bias.shape != (len(classes),) or not (np.isfinite(weights).all() and np.isfinite(bias).all()):
            raise ReadoutError("the read-out file's weights do not match its features and classes")
        return readout


def check_model(readout, card):
    """Refuse, in one line, a read-out made for another model than the one ``card`` describes."""
    if card.weights_sha256 is None:
        raise ReadoutError(f"model {card.name} has no weights digest in its card, so no read-out can be tied to it")
    if readout.weights_sha256 != card.weights_sha256 or tuple(readout.classes) != tuple(card.classes):
        raise ReadoutError(f"this read-out belongs to model {readout.model} (weights {readout.weights_sha256[:12]}), "
                           f"not to {card.name} (weights {card.weights_sha256[:12]}): calibrate again with this model")


def make_readout(card, result, frames):
    """A :class:`Readout` of model ``card`` from a :class:`Fit`; ``frames``: class name -> frames fitted on."""
    if card.weights_sha256 is None:
        raise ReadoutError(f"model {card.name} has no weights digest in its card, so no read-out can be tied to it")
    return Readout(model=card.name, weights_sha256=card.weights_sha256, classes=tuple(card.classes),
                   weights=result.weights, bias=result.bias, strength=STRENGTH, frames=dict(frames),
                   created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def save_readout(path, readout):
    """Write a read-out as a small JSON file, atomically."""
    write_json(path, readout.to_dict())


def load_readout(path, card):
    """The read-out in ``path``, checked against the model ``card`` describes; one-line errors."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no read-out file at {path}")
    try:
        with open(path, encoding="utf-8") as handle:
            mapping = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ReadoutError(f"{path} is not a read-out file (not JSON)") from None
    try:
        readout = Readout.from_dict(mapping)
    except ReadoutError as error:
        raise ReadoutError(f"{path}: {error}") from None
    check_model(readout, card)
    return readout
