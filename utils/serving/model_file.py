"""A model ready for a front end: found in a folder, loaded once, with what explains it.

The web site and the desktop window both list the models beside their cards and
keep each loaded model's Predictor, layer reader, Grad-CAM, operations and channels
together; this is that one place.
"""
import glob
import logging
import os
import threading
from dataclasses import dataclass

from utils.defaults import CACHE_DIR, model_name, project_path
from utils.explain.channels import ChannelExplainer
from utils.explain.gradcam import GradCam
from utils.explain.layers import LayerReader
from utils.explain.operations import LayerOperations
from utils.explain.targets import Target
from utils.files import file_stamp
from utils.model.card import CardError, card_path, read_card
from utils.model.predict import Predictor

logger = logging.getLogger(__name__)

MODEL_SUFFIXES = (".h5", ".keras")


def find_models(folder, task="emotion"):
    """``name -> path`` for the models in ``folder`` whose card says ``task``, sorted by name.

    Models without a card are not offered; identity models are not emotion models. A model whose card
    cannot be read is offered, so that choosing it says what is wrong with the card.
    """
    paths = sorted(path for suffix in MODEL_SUFFIXES for path in glob.glob(os.path.join(folder, "*" + suffix)))
    found = {}
    for path in paths:
        if os.path.isfile(card_path(path)) and _task(path) in (task, None):
            found.setdefault(model_name(path), path)
    return found


def _task(path):
    """The task the card of the model at ``path`` names, or None when the card cannot be read."""
    try:
        return read_card(path).task
    except CardError:
        return None


@dataclass
class LoadedModel:
    name: str
    path: str
    predictor: Predictor
    layers: LayerReader
    gradcam: GradCam
    operations: LayerOperations   # the operation behind any position of any layer
    channels: ChannelExplainer    # what a channel looks for: its pattern and top test faces

    @classmethod
    def load(cls, path, cache_folder=project_path(CACHE_DIR)):
        """Load a model and its card and build what explains it: a second or more, so once per process.

        ``cache_folder`` keeps the channels' top-test-face rankings (git-ignored ``cache/``).
        """
        predictor = Predictor.from_path(path)
        model = predictor.model
        reader = LayerReader(model)
        return cls(model_name(path), path, predictor, reader, GradCam(model), LayerOperations(model, reader),
                   ChannelExplainer(model, predictor.classes, cache_folder))

    def target(self, class_index):
        """The probability of a class as this model serves it: what its explanations explain."""
        return Target.of(self.predictor, class_index)

    @property
    def card(self):
        return self.predictor.card


class ModelFile:
    """A model loaded on first use and again whenever its file or its card changes (a training job replaced
    them, or ``evaluate.py --calibrate`` rewrote the card); :func:`utils.model.store.load_model` pairs them."""

    def __init__(self, path, hint="train one with train.py"):
        self.path, self.hint = path, hint
        self._loaded, self._stamp = None, None
        self._lock = threading.Lock()
        self.loads = 0  # how many times the file was read (tests check it is once per version)

    def exists(self):
        return os.path.isfile(self.path)

    def get(self):
        """The loaded model; FileNotFoundError with a hint when there is none yet.

        A changed file that cannot be read (a card edited by hand, a retrain still saving) keeps
        the model loaded before, with a warning; the next call tries again.
        """
        if not self.exists():
            raise FileNotFoundError(f"no model at {self.path}: {self.hint}")
        card = card_path(self.path)
        with self._lock:
            stamp = file_stamp(self.path), file_stamp(card) if os.path.isfile(card) else None  # no card: load says so
            if stamp != self._stamp:
                try:
                    loaded = LoadedModel.load(self.path)
                except (OSError, ValueError, KeyError) as error:
                    if self._loaded is None:
                        raise
                    logger.warning("keeping the model loaded before: %s changed but cannot be read (%s)",
                                   self.path, str(error).splitlines()[0] if str(error) else repr(error))
                    return self._loaded
                self._loaded, self._stamp = loaded, stamp
                self.loads += 1
            return self._loaded
