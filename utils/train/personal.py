"""What a personal read-out does for each person, measured end to end through the photo path.

Each person's photos are read as a front end reads a photo (the first face found, turned upright,
cut out: :func:`utils.train.photo_benchmark.photo_inputs`), and each photo is then labelled twice:
by the model as shipped, and by a read-out (:mod:`utils.model.readout`) fitted on that person's
*other* photos (leave one photo out), so no photo is ever read by a read-out that saw it. The
read-out only knows the expressions a person showed; to tell how much of its gain is just that,
the model as shipped is also scored choosing among those expressions only (``before_among_shown``).

How many frames an expression needs is a curve: the same leave-one-out with at most 1, 2, 4 or
8 of the person's other photos of each expression (chosen at random, seeded).

Layouts: ``FOLDER/person/expression/*.png`` (a folder per expression), or ``FOLDER/person/
expression.png`` (photos named by expression, as the Yale faces are); expression names are
matched to the card's classes as :func:`utils.train.photo_benchmark.class_index` matches them.
"""
import os

import numpy as np

from utils.media.decode import IMAGE_SUFFIXES
from utils.model import readout
from utils.train import photo_benchmark
from utils.train.datasets import DatasetError

FRAME_COUNTS = (1, 2, 4, 8)   # the curve: at most this many of a person's photos per expression
SEED = 0


def find_people(root, classes):
    """``(paths, labels, people)``: every photo of an expression the card has, its label (a class
    index) and its person's folder name; DatasetError in one line when there is none."""
    if not os.path.isdir(root):
        raise DatasetError(f"no folder of people's photos at {root}")
    paths, labels, people = [], [], []
    for person in sorted((entry for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith(".")),
                         key=lambda entry: entry.name):
        for entry in sorted(os.scandir(person.path), key=lambda entry: entry.name):
            name, suffix = os.path.splitext(entry.name)
            if entry.is_dir():
                index, photos = photo_benchmark.class_index(entry.name, classes), sorted(
                    item.path for item in os.scandir(entry.path)
                    if item.is_file() and item.name.lower().endswith(IMAGE_SUFFIXES))
            elif suffix.lower() in IMAGE_SUFFIXES:
                index, photos = photo_benchmark.class_index(name, classes), [entry.path]
            else:
                continue
            if index is not None:
                paths += photos
                labels += [index] * len(photos)
                people += [person.name] * len(photos)
    if not paths:
        raise DatasetError(f"{root} holds no photos of the model's classes: expected one folder per person with "
                           "a folder per expression (anna/happy/1.jpg ...) or photos named by expression "
                           "(subject01/happy.png ...)")
    return paths, np.asarray(labels, np.int64), np.asarray(people)


def leave_one_out(features, labels, people, start, strength=readout.STRENGTH, per_expression=None, seed=SEED):
    """The read-out's label for every photo, each from a read-out fitted on its person's other photos
    (at most ``per_expression`` of each expression, chosen at random with ``seed``; None: all).
    ``start``: the model's ``(weights, bias)``. -1 where the person has no other photo."""
    predicted = np.full(len(labels), -1, np.int64)
    rng = np.random.default_rng(seed)
    for index in range(len(labels)):
        others = np.flatnonzero((people == people[index]) & (np.arange(len(labels)) != index))
        if per_expression is not None:
            others = np.concatenate([rng.permutation(others[labels[others] == label])[:per_expression]
                                     for label in np.unique(labels[others])] or [others])
        if not len(others):
            continue
        fitted = readout.fit(features[others], labels[others], *start, strength=strength)
        predicted[index] = int(np.argmax(features[index] @ fitted.weights + fitted.bias))
    return predicted


def among_shown(probabilities, labels, people):
    """The model's label when it may only choose among the expressions each person showed."""
    chosen = np.empty(len(labels), np.int64)
    for person in np.unique(people):
        mine = people == person
        shown = np.unique(labels[mine])
        chosen[mine] = shown[np.argmax(probabilities[mine][:, shown], axis=1)]
    return chosen


def scores(labels, predicted, classes):
    """Accuracy, macro recall and each class's recall (:func:`utils.train.photo_benchmark.summary`)."""
    return photo_benchmark.summary(labels, predicted, classes)


def measure(predictor, root, detector=None, batch_size=256):
    """The whole measurement for one model (a dict: ``before``, ``after``, ``before_among_shown``,
    ``people``, ``photos``, ``frames``), each photo read through the photo path by ``predictor``."""
    classes = predictor.classes
    paths, labels, people = find_people(root, classes)
    inputs, found = photo_benchmark.photo_inputs(predictor, paths, detector)
    parts = [predictor.features_and_logits(inputs[start:start + batch_size])
             for start in range(0, len(inputs), batch_size)]
    features = np.concatenate([part[0] for part in parts]).astype(np.float64)
    shipped = predictor.calibrated(np.concatenate([part[1] for part in parts]))
    before = shipped.argmax(axis=1)
    start = predictor.last_layer()
    after = leave_one_out(features, labels, people, start)
    kept = after >= 0
    curve = {}
    for count in FRAME_COUNTS:
        limited = leave_one_out(features, labels, people, start, per_expression=count)
        curve[str(count)] = {"photos": int(np.sum(limited >= 0)),
                             "accuracy": float(np.mean(limited[kept] == labels[kept])) if kept.any() else None}
    per_person = []
    for person in np.unique(people):
        mine = people == person
        per_person.append({"person": str(person), "photos": int(mine.sum()),
                           "expressions": [classes[i] for i in np.unique(labels[mine])],
                           "before": float(np.mean(before[mine] == labels[mine])),
                           "after": float(np.mean(after[mine] == labels[mine])) if (after[mine] >= 0).all() else None})
    photos = [{"path": os.path.relpath(path, root), "person": str(person), "true": classes[label],
               "found": bool(face), "before": classes[was], "after": classes[now] if now >= 0 else None}
              for path, person, label, face, was, now in zip(paths, people, labels, found, before, after)]
    return {"data": root, "people_count": len(per_person), "photos_count": len(paths), "found": int(found.sum()),
            "strength": readout.STRENGTH, "left_out": int(np.sum(~kept)),
            "before": scores(labels[kept], before[kept], classes),
            "before_among_shown": scores(labels[kept], among_shown(shipped, labels, people)[kept], classes),
            "after": scores(labels[kept], after[kept], classes),
            "frames": curve, "people": per_person, "photos": photos}
