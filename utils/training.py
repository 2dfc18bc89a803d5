"""The pieces of train.py that are not the story: callbacks, resuming, the model card.

Pure Keras 3 and NumPy, so training runs on any backend.
"""
import os
import platform
import sys
from datetime import datetime, timezone

import keras
import numpy as np
import pandas as pd

from utils import plots
from utils.models import build_model, load_model, native_bfloat16

HISTORY_FILE = "history.csv"
BEST_WEIGHTS_FILE = "best.weights.h5"
CURVES_FILE = "curves.png"


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


def learning_rate(schedule, initial, total_steps):
    """A constant rate (lowered by the plateau callback) or a cosine decay to zero over the run.

    The cosine schedule counts optimizer steps, which BackupAndRestore restores, so a
    resumed run picks the curve up where it stopped.
    """
    if schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(initial, decay_steps=total_steps)
    return initial


def copy_weights(source_path, model):
    """Start ``model`` from a saved model's weights (same architecture), for fine-tuning.

    Returns what the card records of the starting point: its path, the command that
    trained it and its test accuracy, so a fine-tuned model's history stays traceable.
    """
    source, card = load_model(source_path)
    if [w.shape for w in source.weights] != [w.shape for w in model.weights]:
        raise ValueError(f"{source_path} is not a {model.name} network of this shape: cannot start from it")
    model.set_weights(source.get_weights())
    return {"path": source_path, "command": card.get("training", {}).get("command"),
            "test_accuracy": card.get("metrics", {}).get("test_accuracy")}


def callbacks(run_dir, early_stop_patience, plateau_patience, resume):
    """Log, back up every epoch (for --resume), keep the best epoch, stop early, lower the rate on plateaus.

    ``plateau_patience`` None leaves the rate to the optimizer's schedule and
    ``early_stop_patience`` None runs every epoch: a cosine schedule only reaches its
    small, accurate steps at the end, after validation may have stalled for a while.
    """
    previous_best = max(read_history(run_dir).get("val_accuracy", [])) if resume and read_history(run_dir) else None
    plateau = [] if plateau_patience is None else [
        keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", mode="max", factor=0.5,
                                          patience=plateau_patience, min_lr=1e-5, verbose=1)]
    early_stop = [] if early_stop_patience is None else [
        keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=early_stop_patience, verbose=1)]
    return plateau + early_stop + [
        keras.callbacks.CSVLogger(os.path.join(run_dir, HISTORY_FILE), append=resume),
        keras.callbacks.ModelCheckpoint(best_weights_path(run_dir), monitor="val_accuracy", mode="max",
                                        save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=previous_best),
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"), double_checkpoint=True,
                                        delete_checkpoint=False),
    ]


def to_float32(model, arch, input_shape, num_classes):
    """The same network with float32 weights and policy, for laptops without bfloat16."""
    keras.config.set_dtype_policy("float32")
    shipped = build_model(arch, input_shape, num_classes)
    shipped.set_weights(model.get_weights())
    return shipped


def _correct(predictor, split, batch_size=256):
    """Which faces of ``split`` the shipped predict path gets right (test-time flip included)."""
    probabilities = np.concatenate([predictor.probabilities(split.images[start:start + batch_size])
                                    for start in range(0, len(split), batch_size)])
    return np.argmax(probabilities, axis=1) == split.labels


def test_metrics(predictor, dataset, history):
    """Best validation accuracy, and test accuracy overall and per class when test/ exists.

    Measured through :class:`utils.predict.Predictor`, so the card reports what users get.
    """
    metrics = {"val_accuracy": round(float(np.mean(_correct(predictor, dataset.val))), 4)}
    if history.get("val_accuracy"):
        metrics["best_epoch"] = int(np.argmax(history["val_accuracy"])) + 1
    if dataset.test is not None and len(dataset.test):
        correct = _correct(predictor, dataset.test)
        metrics["test_accuracy"] = round(float(np.mean(correct)), 4)
        metrics["test_per_class"] = {
            name: round(float(np.mean(correct[dataset.test.labels == i])), 4)
            for i, name in enumerate(dataset.classes) if np.any(dataset.test.labels == i)}
        metrics["test_images"] = len(dataset.test)
    return metrics


def _tensorflow_version():
    try:
        import tensorflow
    except ImportError:  # trained on the JAX or torch backend
        return None
    return tensorflow.__version__


def test_split_note(args, dataset):
    """How the identity test photos were chosen, and which files they are (the front ends step through them)."""
    if dataset.test is None:
        return None
    if os.path.isdir(os.path.join(dataset.source, "test")):
        note = {"from": "the data set's test/ folder"}
    else:
        note = {"held_out_per_class": args.test_per_person, "seed": args.seed,
                "from": "photos of each person held out of the data before the validation split"}
    if dataset.test.paths:
        note["files"] = [os.path.relpath(path, dataset.source) for path in dataset.test.paths]
    return note


def model_card(name, args, dataset, model, history, precision, start=None):
    """The JSON model card (see Contracts in DESIGN.md); train.py adds its metrics."""
    card = {
        "name": name,
        "task": args.task,
        "classes": list(dataset.classes),
        "input": {"height": args.img_size, "width": args.img_size, "channels": args.channels},
        "preprocessing": {"color": "gray", "scale": [0, 1], "face_margin": args.face_margin,
                          "function": "utils.faces.preprocess", "test_time_flip": args.test_time_flip},
        "architecture": args.arch,
        "parameters": int(model.count_params()),
        "training": {
            "data": dataset.source, "train_images": len(dataset.train), "val_images": len(dataset.val),
            "test_images": len(dataset.test) if dataset.test is not None else 0,
            "skipped_images": int(dataset.train.skipped),
            "val_fraction": args.val_split, "seed": args.seed,
            "epochs": len(history.get("epoch", [])), "epochs_requested": args.epochs,
            "batch_size": args.batch_size, "learning_rate": args.learning_rate,
            "label_smoothing": args.label_smoothing, "augmentation": not args.no_augment,
            "random_erasing": args.erase, "schedule": args.schedule, "initialised_from": start,
            "class_weights": args.class_weights, "precision": precision,
            "backend": keras.backend.backend(),
            "command": "python " + " ".join([os.path.basename(sys.argv[0]) or "train.py"] + sys.argv[1:]),
        },
        "versions": {"python": platform.python_version(), "keras": keras.__version__,
                     "tensorflow": _tensorflow_version(), "numpy": np.__version__},
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if args.task == "identity":
        card["training"]["test_split"] = test_split_note(args, dataset)
        card["training"]["faces_cropped"] = {"no_face_found": int(dataset.train.no_face),
                                             "note": "each photo cropped to its largest face; "
                                                     "photos without one kept whole"}
    return card


def save_curves(history, run_dir):
    """history.csv is written as training goes; this adds the curves PNG beside it."""
    if history.get("loss"):
        plots.training_curves(history).savefig(os.path.join(run_dir, CURVES_FILE), dpi=100)
