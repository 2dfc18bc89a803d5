"""The models a process serves, each loaded on first use and kept until its file or card changes.

Loading a Keras model and building its explanation sub-models takes about a second;
a request must never pay that. The registry is a lock-protected dict
``name -> ModelFile`` stored on the app; the models folder is scanned on each
listing, so a model trained while the site runs appears without a restart, and a
model retrained or recalibrated (``evaluate.py --calibrate`` rewrites its card) is read
again on its next request.

The dict's lock is held only to read or add an entry, never while a model loads; each
model's own lock (in :class:`utils.serving.model_file.ModelFile`) makes concurrent first requests
for one model load it once, and holds up no request for another.
"""
import os
import threading

import numpy as np
from flask import current_app, request

from utils.cli import one_line
from utils.defaults import model_name
from utils.model.card import CardError, read_card
from utils.serving.model_file import find_models, ModelFile


MODEL_COOKIE = "model"


class ModelNotFound(LookupError):
    """No usable model of that name: none, the default model file is missing, or its card cannot be read;
    the message says which."""


class ModelRegistry:
    def __init__(self, folder, default_path):
        self.folder = folder
        self.default_path = default_path
        self.default_name = model_name(default_path)
        self._files = {}     # name -> ModelFile
        self._lock = threading.Lock()

    @property
    def loads(self):
        """How many times a model file was read (tests check it stays at one per model and version)."""
        with self._lock:
            return sum(model_file.loads for model_file in self._files.values())

    def paths(self):
        """``name -> path`` for every model with a card in the folder, plus the default model."""
        found = find_models(self.folder)
        if os.path.isfile(self.default_path):
            found[self.default_name] = self.default_path
        return found

    def cards(self):
        """``name -> card`` for every available model, without loading any of them; for a card that cannot be
        read, the one-line reason instead, which the Models page and ``/api/models`` show."""
        found = {}
        for name, path in self.paths().items():
            try:
                found[name] = read_card(path)
            except (OSError, CardError) as error:
                found[name] = one_line(error)
        return found

    def resolve(self, name=None):
        """A valid model name: ``name`` itself, or the default model when ``name`` is empty."""
        return self.locate(name)[0]

    def locate(self, name=None):
        """``(name, path)`` of a model that is there (``name`` empty: the default one); ModelNotFound otherwise."""
        name = name or self.default_name
        paths = self.paths()
        if name not in paths:
            if name == self.default_name:
                raise ModelNotFound(f"no model at {self.default_path}: train one with "
                                    "`python train.py --data dataset/fer2013` or start with --model PATH")
            raise ModelNotFound(f"unknown model {name!r} (available: {', '.join(paths) or 'none'})")
        return name, paths[name]

    def get(self, name=None):
        """The loaded model called ``name`` (default: the shipped one), loading it on first use and
        again when its file or card has changed.

        A model already known is served without rescanning the folder (a few file stats a request).
        """
        with self._lock:
            model_file = self._files.get(name or self.default_name)
        if model_file is None:
            name, path = self.locate(name)   # the folder is scanned outside the lock
            with self._lock:
                model_file = self._files.setdefault(name, ModelFile(path))
        try:
            return model_file.get()
        except (FileNotFoundError, CardError) as error:  # deleted while the site runs, or a bad card
            raise ModelNotFound(one_line(error)) from None


def init_app(app):
    """Create the app's registry; load the default model now when ``WARM_UP`` is set.

    Warming up at start-up (loading, then one prediction on a blank picture so Keras
    compiles its predict step) means each gunicorn worker is ready before its first request.
    """
    app.extensions["models"] = ModelRegistry(app.config["MODELS_DIR"], app.config["DEFAULT_MODEL"])
    if app.config["WARM_UP"]:
        try:
            app.extensions["models"].get().predictor.predict_image(np.zeros((64, 64), np.uint8))
        except ModelNotFound as error:
            app.logger.warning("%s", error)


def registry():
    return current_app.extensions["models"]


def chosen_model():
    """The model picked on the Models page (a cookie, so every page and API call a page makes
    use it), or the default one when none (or a vanished one) is set."""
    name = request.cookies.get(MODEL_COOKIE)
    return name if name in registry().paths() else registry().default_name
