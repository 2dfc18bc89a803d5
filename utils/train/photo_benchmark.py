"""A second benchmark: whole photos of posed expressions, from people unlike FER2013's, read as photos are.

FER2013's test faces come from the same web search as its training faces. A benchmark of other
people's photos asks how the model reads faces it was not gathered with (a classroom's: milder,
evenly lit, frontal), end to end through the photo path every front end uses: the photo is
decoded, its faces found, the first face (:func:`utils.faces.detect.face_order`: the surest, the
largest) turned upright, cut out and classified.

Two layouts are read, told apart by what the folder holds:

- **one folder per person, photos named by expression**, as the Yale Face Database is
  (``subject01/happy.png``, ``subject01/normal.png``, ``subject01/sad.png``,
  ``subject01/surprised.png``); files whose names are not an expression (``glasses``,
  ``leftlight``, ``wink`` ...) are left out;
- **a folder of class folders of whole photos** (``happy/*.jpg``, ``sad/*.jpg`` ...).

Names are matched to the model card's classes by name, in any case, through a few synonyms
(``normal`` is neutral, ``surprised`` is surprise). Nothing here imports TensorFlow.
"""
import os

import numpy as np

from utils.media.decode import IMAGE_SUFFIXES, ImageError, read_image
from utils.train.datasets import DatasetError

# Names photos and folders use for the card's classes.
SYNONYMS = {"normal": "neutral", "surprised": "surprise", "happiness": "happy", "smile": "happy",
            "sadness": "sad", "anger": "angry", "fearful": "fear", "afraid": "fear",
            "disgusted": "disgust"}


def class_index(name, classes):
    """The index in ``classes`` that a folder or file name stands for, or None."""
    name = name.strip().lower()
    name = SYNONYMS.get(name, name) or ""
    lowered = [cls.lower() for cls in classes]
    return lowered.index(name) if name in lowered else None


def _images(folder):
    return sorted((entry for entry in os.scandir(folder)
                   if entry.is_file() and entry.name.lower().endswith(IMAGE_SUFFIXES)), key=lambda entry: entry.name)


def _folders(root):
    return sorted((entry for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith(".")),
                  key=lambda entry: entry.name)


def find_photos(root, classes):
    """``(paths, labels, layout)``: every photo of ``root`` whose class the card has, with its label
    (an index into ``classes``) and the layout found ("people" or "classes").

    :class:`utils.train.datasets.DatasetError` with a one-line reason when ``root`` is missing or holds no
    photo of any of the card's classes.
    """
    if not os.path.isdir(root):
        raise DatasetError(f"no photo benchmark at {root}")
    folders = _folders(root)
    class_folders = [(folder, class_index(folder.name, classes)) for folder in folders]
    class_folders = [(folder, index) for folder, index in class_folders if index is not None]
    if class_folders:
        paths, labels = [], []
        for folder, index in class_folders:
            for entry in _images(folder.path):
                paths.append(entry.path)
                labels.append(index)
        layout = "classes"
    else:
        paths, labels = [], []
        for folder in folders:
            for entry in _images(folder.path):
                index = class_index(os.path.splitext(entry.name)[0], classes)
                if index is not None:
                    paths.append(entry.path)
                    labels.append(index)
        layout = "people"
    if not paths:
        raise DatasetError(f"{root} holds no photos of the model's classes: expected class folders "
                           "(happy/*.jpg ...) or one folder per person with photos named by expression "
                           "(subject01/happy.png ...)")
    return paths, np.asarray(labels, dtype=np.int64), layout


def photo_inputs(predictor, paths, detector=None):
    """``(inputs, found)``: each photo's first face as the model receives it ``(N, H, W, C)``,
    found by the detector, turned upright and cut out (:meth:`utils.model.predict.Predictor.choose_faces`),
    and whether a face was found (the whole photo stands in when none is)."""
    from tqdm import tqdm

    inputs, found = [], []
    for path in tqdm(paths, desc="photo benchmark", unit=" photos"):
        try:
            image = read_image(path)
        except (ImageError, OSError) as error:
            raise DatasetError(f"cannot read {path}: {error}")
        first = predictor.choose_faces(image, detector=detector)[0]
        inputs.append(first.input)
        found.append(not first.prediction["whole_image"])
    return np.stack(inputs), np.asarray(found)


def summary(labels, predicted, classes):
    """Accuracy, macro recall (the mean of the recalls of the classes the benchmark has), each of
    those classes' recall, and the confusion counts (rows: those classes; columns: all of ``classes``)."""
    present = sorted(set(int(label) for label in labels))
    counts = np.zeros((len(present), len(classes)), dtype=np.int64)
    for row, index in enumerate(present):
        counts[row] = np.bincount(predicted[labels == index], minlength=len(classes))
    per_class = {classes[index]: {"photos": int(counts[row].sum()), "right": int(counts[row, index]),
                                  "recall": float(counts[row, index] / counts[row].sum())}
                 for row, index in enumerate(present)}
    return {"photos": int(len(labels)), "accuracy": float(np.mean(predicted == labels)),
            "macro_recall": float(np.mean([row["recall"] for row in per_class.values()])),
            "per_class": per_class, "confusion": {"rows": [classes[i] for i in present],
                                                  "columns": list(classes), "counts": counts.tolist()}}
