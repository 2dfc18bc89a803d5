"""The model card: what a saved model is, how it was trained and how it is served; read and written only here.

Every ``models/NAME.h5`` has ``models/NAME.json`` beside it (each key: docs/model_card.md). A card is
checked whole when it is read, so no front end meets one it half understands: a missing required key,
a value of the wrong type or a key this module does not know (a typo such as ``calibation`` would
otherwise be ignored in silence) is a :class:`CardError` whose one line names the key. Optional keys
take the defaults written once, in the classes below; a card is written without the keys whose value
is None, so it lists what it knows.
"""
import dataclasses
import json
import os
import types
import typing
from dataclasses import dataclass, field

import numpy as np

from utils.files import write_json

TASKS = ("emotion", "identity")
LEGACY_PREPROCESSING_KEY = "function"   # preprocessing.function, in cards written by earlier versions


class CardError(ValueError):
    """A model card that cannot be used; the one-line message names the key that is wrong."""


@dataclass(frozen=True)
class InputSize:
    height: int
    width: int
    channels: int

    @property
    def size(self):
        """``(height, width)``, as the loaders and :func:`utils.faces.preprocess.preprocess` takes it."""
        return self.height, self.width

    @property
    def shape(self):
        """``(height, width, channels)``: one face as the network takes it."""
        return self.height, self.width, self.channels


@dataclass(frozen=True)
class Preprocessing:
    """How a face becomes the network's input, in training and when served."""
    color: str = "gray"
    scale: tuple[float, ...] = (0.0, 1.0)
    crop: str | None = None             # how a served face is cut out of its photo, in words
    crop_context: float = 1.0           # the crop is framed this many times as wide as FER2013's faces
    test_time_flip: bool = False        # each face's logits averaged with its mirror image's


@dataclass(frozen=True)
class Distribution:
    """How training was spread over devices and machines (``train.py --distribute``; tf.distribute)."""
    strategy: str           # "mirrored" (this machine's GPUs) or "multi-worker" (several processes)
    replicas: int           # devices training in step, over all workers
    workers: int            # processes (machines) that trained together
    global_batch: int       # faces in one step, over all replicas; each takes an equal share


@dataclass(frozen=True, kw_only=True)
class Training:
    """The record of the train.py run that made the model. The objects among its notes (``teacher``,
    ``weight_average``, ...) are for people to read: what is inside them is not checked."""
    data: str
    train_images: int
    val_images: int
    test_images: int = 0
    skipped_images: int = 0
    val_fraction: float
    seed: int
    chosen_on: str | None = None
    epochs: int
    epochs_requested: int | None = None
    batch_size: int
    learning_rate: float | None = None
    label_smoothing: float | None = None
    augmentation: bool = True
    # Options a card written before they existed lacks: they were off.
    random_erasing: float = 0.0
    served_share: float = 0.0
    schedule: str = "plateau"
    initialised_from: dict | None = None
    class_weights: bool = False
    precision: str
    backend: str | None = None
    command: str
    test_split: dict | None = None      # identity: which photos were held out for testing ("files")
    faces_cropped: dict | None = None
    teacher: dict | None = None
    weight_average: dict | None = None
    distribution: Distribution | None = None   # absent: one process on its own devices

    @property
    def test_files(self):
        """The held-out test photos, relative to ``data`` (identity models list them)."""
        return list((self.test_split or {}).get("files", []))


@dataclass(frozen=True)
class Labels:
    """What the model was taught to say: one label a face (FER2013's), or a crowd's votes (FER+'s ten a face)
    as their distribution (cross-entropy against the share of votes each class got) or their majority."""
    source: str                         # "one label a face" or "votes"
    scheme: str                         # "single", "distribution" or "majority"
    votes_per_face: int | None = None
    pixels: str | None = None           # "raw" or "equalised": the training faces' pixels


@dataclass(frozen=True)
class CrowdMetrics:
    """How well the model agrees with a crowd of people (FER+'s ten votes a face), as evaluate.py measures it."""
    data: str
    faces: int
    majority_accuracy: float            # the model's label is the crowd's most-voted class (a tie: FER+'s first column)
    crowd_choice_probability: float     # the mean probability the model gives the crowd's most-voted class
    vote_cross_entropy: float           # the mean cross-entropy from the vote shares to the model's probabilities
    vote_ece: float | None = None       # calibration against the crowd: |share of votes - confidence| over bins
    per_class: dict[str, float] | None = None      # majority accuracy by the crowd's class
    fer2013_agreement: float | None = None         # how often FER2013's own label is the crowd's choice
    fer2013_accuracy: float | None = None          # how often the model says FER2013's own label
    fer2013_faces: int | None = None               # the faces whose FER2013 label is known

    @classmethod
    def measured(cls, data, figures):
        """The card's entry for :func:`utils.train.metrics.crowd_metrics`' figures on ``data``, to 4 decimals."""
        def rounded(value):
            if isinstance(value, dict):
                return {name: rounded(item) for name, item in value.items()}
            return round(value, 4) if isinstance(value, float) else value
        return cls(data=data, **{name: rounded(value) for name, value in figures.items()})


@dataclass(frozen=True)
class Metrics:
    """What the shipped weights scored, through the served predict path."""
    val_accuracy: float | None = None
    train_accuracy: float | None = None   # instead of val_accuracy, when no image was left for validation
    best_epoch: int | None = None
    test_accuracy: float | None = None
    test_per_class: dict[str, float] | None = None
    test_images: int | None = None


@dataclass(frozen=True)
class Calibration:
    """How logits become the probabilities every front end serves: softmax(logits / T + offsets)."""
    temperature: float
    logit_offsets: dict[str, float] | None = None   # by class name; a class left out has 0
    ece_before: float | None = None
    ece_after: float | None = None
    fitted_on: str | None = None
    val_images: int | None = None
    val_data: str | None = None
    ece_bins: int | None = None
    ece_measured_on: str | None = None
    offsets_fitted_for: str | None = None
    offset_strength: float | None = None
    val_macro_recall_before: float | None = None
    val_macro_recall_after: float | None = None


@dataclass(frozen=True)
class Versions:
    python: str | None = None
    keras: str | None = None
    tensorflow: str | None = None
    numpy: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelCard:
    """One model's card; built from JSON by :meth:`from_dict` (or :func:`read_card`), checked either way."""
    name: str
    task: str
    classes: tuple[str, ...]
    input: InputSize
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    architecture: str
    parameters: int
    training: Training | None = None
    versions: Versions = field(default_factory=Versions)
    created: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    weights_sha256: str | None = None   # the model file this card was written for (utils.model.store.save_model)
    calibration: Calibration | None = None
    labels: Labels | None = None        # a card written before crowd labels existed: one label a face
    crowd: CrowdMetrics | None = None   # train.py, or evaluate.py --record-crowd, on a data set with votes

    def __post_init__(self):
        if self.task not in TASKS:
            raise CardError(f"key 'task' should be one of {', '.join(TASKS)}, not {self.task!r}")
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise CardError("key 'classes' should list each class once, at least one")
        if min(self.input.height, self.input.width, self.input.channels) < 1:
            raise CardError("key 'input' should give a positive height, width and channels")
        unknown = sorted(set(self.calibration.logit_offsets or {}) - set(self.classes)) if self.calibration else []
        if unknown:
            raise CardError(f"key 'calibration.logit_offsets' names classes the card does not have: "
                            f"{', '.join(unknown)}")

    @classmethod
    def from_dict(cls, mapping):
        """The card a JSON object describes; CardError naming the first key that is wrong. Cards written by
        earlier versions named the preprocessing function (read by nothing): that key alone is passed over, so
        a model trained then still loads, and it is not written again."""
        preprocessing = mapping.get("preprocessing") if isinstance(mapping, dict) else None
        if isinstance(preprocessing, dict) and LEGACY_PREPROCESSING_KEY in preprocessing:
            mapping = {**mapping, "preprocessing": {key: value for key, value in preprocessing.items()
                                                    if key != LEGACY_PREPROCESSING_KEY}}
        return _build(cls, mapping, "")

    def to_dict(self):
        """The card as JSON-ready values, keys whose value is None left out."""
        return _plain(self)

    def logit_calibration(self):
        """``(temperature, offsets)``: T (1 without a calibration) and the logit offsets as an array in
        class order (0 for a class they leave out), or None when the card has none."""
        if self.calibration is None:
            return 1.0, None
        named = self.calibration.logit_offsets
        offsets = None if not named else np.array([float(named.get(name, 0.0)) for name in self.classes])
        return self.calibration.temperature, offsets

    def facts(self):
        """``[(label, text)]``: the card as the site's Models page and the desktop window show it."""
        size = self.input
        facts = [("architecture", f"{self.architecture}, {self.parameters:,} parameters"),
                 ("input", f"{size.height} x {size.width} x {size.channels}"),
                 ("classes", ", ".join(self.classes))]
        facts += [(label, f"{value:.1%}") for label, value in (
            ("test accuracy", self.metrics.test_accuracy), ("validation accuracy", self.metrics.val_accuracy),
            ("training accuracy", self.metrics.train_accuracy)) if value is not None]
        if self.training is not None:
            facts += [("trained on", f"{self.training.data}: {self.training.train_images:,} images, "
                                     f"{self.training.epochs} epochs"),
                      ("command", self.training.command)]
        if self.labels is not None:
            facts.append(("taught by", f"the votes of {self.labels.votes_per_face or 'several'} people a face, learnt as "
                          f"their {self.labels.scheme}"
                          + (f" ({self.labels.pixels} pixels)" if self.labels.pixels else "")
                          if self.labels.source == "votes" else "one label a face"))
        if self.crowd is not None:
            crowd = self.crowd
            facts.append(("judged by the crowd",
                          f"says what most people said on {crowd.majority_accuracy:.1%} of {crowd.faces:,} faces "
                          f"({crowd.data}); gives their choice {crowd.crowd_choice_probability:.2f} on average; "
                          f"cross-entropy to their votes {crowd.vote_cross_entropy:.3f}"
                          + (f"; calibration error against their shares {crowd.vote_ece:.3f}"
                             if crowd.vote_ece is not None else "")))
            if crowd.fer2013_agreement is not None:
                facts.append(("FER2013's own label", f"the crowd's choice on {crowd.fer2013_agreement:.1%} of "
                                                     f"{crowd.fer2013_faces:,} faces; the model says it on "
                                                     f"{crowd.fer2013_accuracy:.1%}"))
        if self.calibration is not None:
            offsets = ", per-class logit offsets" if self.calibration.logit_offsets else ""
            facts.append(("calibration", f"temperature {self.calibration.temperature:.2f}{offsets}"))
        if self.created:
            facts.append(("created", self.created))
        return facts


def card_path(model_path):
    return os.path.splitext(model_path)[0] + ".json"


def read_card(model_path):
    """The checked card beside ``model_path``; FileNotFoundError without one, CardError for a bad one."""
    path = card_path(model_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model card {path} is missing")
    try:
        with open(path, encoding="utf-8") as handle:
            mapping = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CardError(f"model card {path} is not valid JSON ({error})") from None
    try:
        return ModelCard.from_dict(mapping)
    except CardError as error:
        raise CardError(f"model card {path}: {error}") from None


def write_card(path, card):
    """Write a model card (JSON) atomically."""
    write_json(path, card.to_dict(), indent=2)


# Checking JSON against the classes above --------------------------------------------------------

_KINDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


def _json_kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _wrong(key, expected, value):
    return CardError(f"key '{key}' should be {expected}, not {_json_kind(value)}")


def _build(cls, mapping, key):
    """``cls`` from the JSON object at ``key`` ("" for the card): every required key present, no unknown
    one, each value of its type."""
    if not isinstance(mapping, dict):
        raise (_wrong(key, "an object", mapping) if key else
               CardError(f"a model card should be a JSON object, not {_json_kind(mapping)}"))
    prefix = f"{key}." if key else ""
    hints = typing.get_type_hints(cls)
    fields = {item.name: item for item in dataclasses.fields(cls)}
    for given in mapping:
        if given not in fields:
            raise CardError(f"unknown key '{prefix}{given}'")
    values = {}
    for name, item in fields.items():
        if name in mapping:
            values[name] = _convert(hints[name], mapping[name], prefix + name)
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise CardError(f"missing key '{prefix}{name}'")
    return cls(**values)


def _convert(hint, value, key):
    """``value`` as type ``hint`` (a class above, a scalar, ``X | None``, ``tuple[X, ...]``, ``dict[str, X]``)."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [argument for argument in arguments if argument is not type(None)]
        return _convert(inner, value, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise _wrong(key, "a list", value)
        return tuple(_convert(arguments[0], item, f"{key}[{index}]") for index, item in enumerate(value))
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _wrong(key, "an object", value)
        return {name: _convert(arguments[1], item, f"{key}.{name}") for name, item in value.items()} \
            if arguments else dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise _wrong(key, _KINDS[hint], value)


def _plain(value):
    """A card or part of one as JSON-ready values, None left out."""
    if dataclasses.is_dataclass(value):
        return {item.name: _plain(getattr(value, item.name)) for item in dataclasses.fields(value)
                if getattr(value, item.name) is not None}
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    return value
