"""The pieces of train.py that are not the story: callbacks, resuming, the run's status, the model card.

Pure Keras 3 and NumPy, so training runs on any backend. What a run is asked for comes in as a
:class:`TrainingSettings`, never as a command line's namespace.
"""
import dataclasses
import os
import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from utils.cpu import native_bfloat16
from utils.defaults import RUN_BACKUP_DIR, RUN_STATUS_FILE
from utils.files import atomic_write, write_json
from utils.media import charts
from utils.model.architectures import LOGITS_LAYER, build_model
from utils.model.predict import Predictor
from utils.model.store import load_model
from utils.train import photo_path
from utils.train.record import accuracy, selection

HISTORY_FILE = "history.csv"
BEST_WEIGHTS_FILE = "best.weights.h5"
AVERAGE_FILE = "average.weights.npz"
CURVES_FILE = "curves.png"
SERVED_FILE = "served_train.npy"


@dataclass(frozen=True)
class TrainingSettings:
    """What one training run is asked for, as the card records it (train.py's options, one to one)."""
    task: str                 # "emotion" or "identity"
    arch: str
    img_size: int             # square input side in pixels
    channels: int
    val_fraction: float       # of train/ held out for validation
    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    label_smoothing: float
    augment: bool
    erase: float              # the share of faces with a random rectangle erased
    served_share: float       # the share of faces shown framed as the photo path frames them
    schedule: str             # "plateau", "cosine" or "cyclic"
    class_weights: bool
    crop_context: float       # how much wider than FER2013's faces a served face is framed
    test_time_flip: bool      # serve the mean of each face's and its mirror image's logits
    test_per_person: int      # identity photos held out per person when the data has no test/
    labels: str = "distribution"   # a crowd's votes as the target: "distribution" or "majority"
    pixels: str = "raw"       # the training faces as the data set has them, or "equalised"


def choose_precision(requested):
    """``mixed_bfloat16`` where the CPU has native bfloat16 (2-3x faster here), else float32."""
    if requested != "auto":
        return requested
    return "mixed_bfloat16" if native_bfloat16() else "float32"


def read_history(run_dir):
    """The per-epoch log as ``{column: list}``; an epoch logged twice (resumed) keeps its last row."""
    path = os.path.join(run_dir, HISTORY_FILE)
    if not os.path.isfile(path):
        return {}
    frame = pd.read_csv(path).drop_duplicates("epoch", keep="last").sort_values("epoch")
    return {column: frame[column].tolist() for column in frame.columns}


def best_weights_path(run_dir):
    return os.path.join(run_dir, BEST_WEIGHTS_FILE)


def learning_rate(schedule, initial, total_steps, steps_per_epoch):
    """A constant rate (lowered by the plateau callback), a cosine decay to zero over the run,
    or the same cosine fall within every epoch (cyclic: each epoch ends at a low-rate point,
    the weights stochastic weight averaging collects).

    The schedules count optimizer steps, which BackupAndRestore restores, so a resumed
    run picks the curve up where it stopped.
    """
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(initial, decay_steps=total_steps)
    if schedule == "cyclic":
        return keras.optimizers.schedules.CosineDecayRestarts(initial, first_decay_steps=steps_per_epoch,
                                                              t_mul=1.0, m_mul=1.0)
    return initial


def copy_weights(source_path, model, classes=None):
    """Start ``model`` from a saved model's weights (same architecture), for fine-tuning.

    When the two know other classes (a FER2013 model under FER+'s eight), every layer but the last
    is copied and the last gets a new head: the weights of each class both know, by name, and the
    starting values of a class the source never learnt (contempt). Returns what the card records of
    the starting point: its path, the command that trained it, its test accuracy and, with a new
    head, the classes carried over, so a fine-tuned model's history stays traceable.
    """
    source, card = load_model(source_path)
    classes = list(card.classes) if classes is None else list(classes)
    start = {"path": source_path, "command": card.training.command if card.training else None,
             "test_accuracy": card.metrics.test_accuracy}
    if list(card.classes) == classes and [w.shape for w in source.weights] == [w.shape for w in model.weights]:
        model.set_weights(source.get_weights())
        return start
    for layer in model.layers:
        if not layer.weights or layer.name == LOGITS_LAYER:
            continue
        try:
            weights = source.get_layer(layer.name).get_weights()
        except ValueError:
            raise ValueError(f"{source_path} has no layer {layer.name}: it is not a {model.name} network") from None
        if [w.shape for w in weights] != [w.shape for w in layer.get_weights()]:
            raise ValueError(f"{source_path}'s layer {layer.name} has another shape: cannot start from it")
        layer.set_weights(weights)
    kernel, bias = source.get_layer(LOGITS_LAYER).get_weights()
    head = model.get_layer(LOGITS_LAYER)
    new_kernel, new_bias = head.get_weights()
    if new_kernel.shape[0] != kernel.shape[0]:
        raise ValueError(f"{source_path}'s last layer reads {kernel.shape[0]} features, this network's "
                         f"{new_kernel.shape[0]}: cannot start from it")
    shared = [name for name in classes if name in card.classes]
    for name in shared:
        new_kernel[:, classes.index(name)] = kernel[:, card.classes.index(name)]
        new_bias[classes.index(name)] = bias[card.classes.index(name)]
    head.set_weights([new_kernel, new_bias])
    return {**start, "new_head": {"classes_from_source": shared,
                                  "new_classes": [name for name in classes if name not in shared]}}


def load_teacher(path, classes, input_shape):
    """A saved model's logits for a batch of faces, for distillation, and what the card records of it.

    Its classes (in order) and input must be the student's: the soft targets are read
    class by class from its outputs.
    """
    teacher, card = load_model(path)
    if list(card.classes) != list(classes):
        raise ValueError(f"teacher {path} knows {', '.join(card.classes)}; this data has "
                         f"{', '.join(classes)}: they must match, in order")
    if tuple(teacher.input.shape[1:]) != tuple(input_shape):
        raise ValueError(f"teacher {path} takes {tuple(teacher.input.shape[1:])} faces, not {tuple(input_shape)}")
    logits = keras.Model(teacher.input, teacher.get_layer(LOGITS_LAYER).output)
    return logits.predict_on_batch, {"path": path, "architecture": card.architecture,
                                     "test_accuracy": card.metrics.test_accuracy}


def callbacks(run_dir, early_stop_patience, plateau_patience, resume, average=False, monitor="val_accuracy",
              status=None):
    """Log, back up every epoch (for --resume), keep the best epoch, stop early, lower the rate on plateaus,
    and with ``average`` keep the running mean of every epoch's weights; "best" and "plateau" by
    ``monitor`` (see :func:`selection`). ``status`` (a :class:`RunStatus`) records each epoch for the
    front ends.

    ``plateau_patience`` None leaves the rate to the optimizer's schedule and
    ``early_stop_patience`` None runs every epoch: a cosine schedule only reaches its
    small, accurate steps at the end, after validation may have stalled for a while.
    """
    previous_best = max(read_history(run_dir).get(monitor, [])) if resume and read_history(run_dir) else None
    plateau = [] if plateau_patience is None else [
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode="max", factor=0.5,
                                          patience=plateau_patience, min_lr=1e-5, verbose=1)]
    early_stop = [] if early_stop_patience is None else [
        keras.callbacks.EarlyStopping(monitor=monitor, mode="max", patience=early_stop_patience, verbose=1)]
    averaging = [WeightAverage(run_dir, resume)] if average else []
    return plateau + early_stop + averaging + ([status] if status else []) + [
        keras.callbacks.CSVLogger(os.path.join(run_dir, HISTORY_FILE), append=resume),
        keras.callbacks.ModelCheckpoint(best_weights_path(run_dir), monitor=monitor, mode="max",
                                        save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=previous_best),
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, RUN_BACKUP_DIR), double_checkpoint=True,
                                        delete_checkpoint=False),
    ]


class RunStatus(keras.callbacks.Callback):
    """The run's progress in ``runs/NAME/status.json``, replaced atomically at the start and after every
    epoch, and when the model is saved: a background job (:mod:`utils.train.jobs`) shows it from there.

    ``{"state": "training" | "saved", "epoch": epochs done, "epochs": epochs asked for,
    "metrics": {the last epoch's loss, accuracy, ...; once saved: the card's metrics},
    "model": the saved model's path (once saved), "updated": seconds since the epoch}``
    """

    def __init__(self, run_dir, epochs, done=0):
        super().__init__()
        self.path = os.path.join(run_dir, RUN_STATUS_FILE)
        self.epochs, self.done = epochs, done

    def on_train_begin(self, logs=None):
        self.write("training", self.done, {})

    def on_epoch_end(self, epoch, logs=None):
        self.done = epoch + 1
        self.write("training", self.done, {name: float(value) for name, value in (logs or {}).items()})

    def saved(self, model_path, card):
        """The model and its card are in place."""
        self.write("saved", self.done, card.to_dict()["metrics"], model_path)

    def write(self, state, epoch, metrics, model=None):
        write_json(self.path, {"state": state, "epoch": epoch, "epochs": self.epochs, "metrics": metrics,
                               "model": model, "updated": time.time()})


class WeightAverage(keras.callbacks.Callback):
    """Stochastic weight averaging: the running mean of the weights at the end of every epoch.

    Averaging the end points of a run's last, low-rate phase lands in a flatter, more
    accurate spot than any single one (Izmailov et al. 2018). The mean is saved to
    runs/NAME/ after every epoch, with the last epoch it includes, so ``--resume``
    continues it without counting an epoch twice.
    """

    def __init__(self, run_dir, resume):
        super().__init__()
        self.path = os.path.join(run_dir, AVERAGE_FILE)
        self.resume = resume
        self.mean, self.count, self.next_epoch = None, 0, 0

    def on_train_begin(self, logs=None):
        if self.resume and os.path.isfile(self.path):
            self.mean, self.count, self.next_epoch = read_average(self.path)

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.next_epoch:  # already in the mean (an epoch redone after an interruption)
            return
        weights = [np.asarray(w, np.float64) for w in self.model.get_weights()]
        self.count += 1
        self.mean = weights if self.mean is None else [
            mean + (weight - mean) / self.count for mean, weight in zip(self.mean, weights)]
        self.next_epoch = epoch + 1
        atomic_write(self.path, lambda temp_path: np.savez(temp_path, count=self.count, next_epoch=self.next_epoch,
                                                           **{f"w{i}": w for i, w in enumerate(self.mean)}))


def read_average(path):
    """``(weights, epochs averaged, next epoch)`` as :class:`WeightAverage` saved them."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} is missing: this run did not average its weights "
                                "(run it with --average-weights from its first epoch)")
    with np.load(path) as saved:
        weights = [saved[f"w{i}"] for i in range(len(saved.files) - 2)]
        return weights, int(saved["count"]), int(saved["next_epoch"])


def recompute_batch_norm(model, images, batch_size=256):
    """Set every batch-norm layer's statistics to their exact mean over ``images``.

    An average of weights is a new network: the running statistics averaged with it do
    not describe its activations, so they are measured again (SWA's last step). Each
    batch enters with weight ``size / seen so far``, which makes the moving statistics
    the plain mean over all batches.
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.moving_mean.assign(np.zeros(norm.moving_mean.shape, "float32"))
        norm.moving_variance.assign(np.ones(norm.moving_variance.shape, "float32"))
    seen = 0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        for norm in norms:
            norm.momentum = seen / (seen + len(batch))
        model(batch, training=True)
        seen += len(batch)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum


def to_float32(model, arch, input_shape, num_classes, **options):
    """The same network with float32 weights and policy, for laptops without bfloat16 (``options``: its builder's)."""
    keras.config.set_dtype_policy("float32")
    shipped = build_model(arch, input_shape, num_classes, **options)
    shipped.set_weights(model.get_weights())
    return shipped


def average_or_best(run_dir, best, card, dataset):
    """The run's weight average, batch norm recomputed on train, if it beats the best epoch on validation
    (on the training images when there is no validation split: :func:`selection`).

    Both are scored through the shipped predict path; returns the winner and the card with
    the choice in its training record (``weight_average``).
    """
    weights, count, _ = read_average(os.path.join(run_dir, AVERAGE_FILE))
    averaged = keras.models.clone_model(best)
    averaged.set_weights(weights)
    recompute_batch_norm(averaged, dataset.train.images)
    scores = [accuracy(Predictor(model, card), selection(dataset)[1]) for model in (averaged, best)]
    use_average = scores[0] >= scores[1]
    note = {"epochs_averaged": count, "val_accuracy": scores[0], "best_epoch_val_accuracy": scores[1],
            "shipped": "weight average" if use_average else "best epoch"}
    return (averaged if use_average else best), dataclasses.replace(
        card, training=dataclasses.replace(card.training, weight_average=note))


def served_train_faces(run_dir, train, context):
    """The training faces as the photo path serves them (:func:`utils.train.photo_path.served_faces`), kept in
    the run's folder: a few minutes to compute, so a resumed run reads them back."""
    path = os.path.join(run_dir, SERVED_FILE)
    if os.path.isfile(path):
        return np.load(path)
    served, on_square = photo_path.served_faces(train.images, context=context)
    print(f"photo path: the detector found {np.isfinite(on_square).sum()} of {len(train)} training faces "
          "on their grey squares")
    atomic_write(path, lambda temp_path: np.save(temp_path, served))
    return served


def save_curves(history, run_dir):
    """history.csv is written as training goes; this adds the curves PNG beside it."""
    if history.get("loss"):
        charts.training_curves(history).savefig(os.path.join(run_dir, CURVES_FILE), dpi=100)
