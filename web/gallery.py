"""Test faces to step through: FER+'s test faces with ten people's votes each when they are there
(``make data FERPLUS=...``), else FER2013's ``<class>/*.jpg`` test split.

The faces are read from the user's own copy of the data set when a page asks for them; nothing of
the data set is part of the project. Files are listed once and sorted by name, which mixes the
classes (FER2013's names are ids, not labels). With FER+, each face's true label is what most of
the ten people said, and the Gallery can list the faces where they split and those where the
model and the crowd disagree.
"""
import os
import threading
from dataclasses import dataclass

import numpy as np

from utils.media.decode import IMAGE_SUFFIXES
from utils.train import ferplus
from utils.train.fer2013 import FER2013_CLASSES

# FER+'s two columns that are not emotions, as the page words them.
NOT_EMOTIONS = {"unknown": "unknown", "NF": "not a face"}
# People "split" on a face when the most-voted class got at most this share of the votes.
SPLIT_SHARE = 0.5
LISTS = ("split", "disagree")   # Gallery?show=...: the faces where people split; where model and crowd disagree
LIST_LIMIT = 120                # faces a list shows (the most split first; the rest in the order of their names)


@dataclass(frozen=True)
class GalleryFace:
    label: str                   # the true label: the class folder's, or the crowd's majority
    path: str
    votes: dict = None           # FER+: {class or "unknown" / "not a face": votes}, most votes first
    fer2013: str = None          # FER2013's own label of the face, where known

    @property
    def top_share(self):
        """The share of the votes the crowd's majority got (None without votes)."""
        return max(self.votes.values()) / sum(self.votes.values()) if self.votes else None

    @property
    def people_split(self):
        return self.votes is not None and self.top_share <= SPLIT_SHARE


class Gallery:
    lists = LISTS

    def __init__(self, folder):
        self.folder = folder
        self._items = None
        self.problem = None    # why a FER+ folder's label.csv could not be read, when it could not
        self._predicted = {}   # model name -> (the LoadedModel, each face's label as it reads the face)
        self._lock = threading.Lock()

    @property
    def has_votes(self):
        return os.path.isfile(os.path.join(self.folder, ferplus.LABEL_FILE))

    def items(self):
        """``[GalleryFace, ...]``, or an empty list when the folder is missing or its label.csv cannot be
        read (:attr:`problem` says why, in one line)."""
        with self._lock:
            if self._items is None:
                try:
                    found = _scan_votes(self.folder) if self.has_votes else _scan(self.folder)
                except ferplus.FerPlusError as error:
                    found, self.problem = [], str(error)
                self._items = sorted(found, key=lambda item: os.path.basename(item.path))
            return self._items

    def __len__(self):
        return len(self.items())

    def item(self, index):
        """The ``index``-th face, wrapping around, so "Next image" never runs off the end."""
        items = self.items()
        return items[index % len(items)]

    def predicted(self, loaded):
        """Each face's label as ``loaded`` (a :class:`utils.serving.model_file.LoadedModel`) serves it, read once
        per model and kept until the model is loaded again (a new file or card under the same name): each face
        read whole (detail "whole"), as the Gallery page reads it; None for a face whose file cannot be read.
        Computed outside the lock, so the Gallery's pages do not wait for it."""
        with self._lock:
            kept_for, known = self._predicted.get(loaded.name, (None, None))
        if kept_for is loaded:
            return known
        predictor = loaded.predictor
        faces = [_read_face(predictor, item.path) for item in self.items()]
        readable = [i for i, face in enumerate(faces) if face is not None]
        labels = [None] * len(faces)
        for start in range(0, len(readable), 256):
            batch = readable[start:start + 256]
            found = predictor.probabilities(np.stack([faces[i] for i in batch])).argmax(1)
            for i, k in zip(batch, found):
                labels[i] = predictor.classes[k]
        with self._lock:
            self._predicted[loaded.name] = (loaded, labels)
        return labels

    def listed(self, show, loaded=None):
        """``([(index, GalleryFace, predicted label or None)], how many in all)``: the faces where people split
        (``show="split"``), most split first, or where the model and the crowd disagree (``show="disagree"``);
        the first LIST_LIMIT of them."""
        items = self.items()
        if show == "split":
            chosen = sorted((i for i, item in enumerate(items) if item.people_split), key=lambda i: items[i].top_share)
            return [(i, items[i], None) for i in chosen[:LIST_LIMIT]], len(chosen)
        predicted = self.predicted(loaded)
        chosen = [i for i, item in enumerate(items) if predicted[i] is not None and predicted[i] != item.label]
        return [(i, items[i], predicted[i]) for i in chosen[:LIST_LIMIT]], len(chosen)


def _read_face(predictor, path):
    """The model's input for the face in ``path`` read whole (the crop the Gallery page's "whole" search gives),
    or None when the file cannot be read."""
    from utils.faces.detect import WHOLE
    from utils.media.decode import ImageError, read_image
    try:
        _, crops, _ = predictor.face_crops(read_image(path), WHOLE)
    except (ImageError, OSError):
        return None
    return predictor.preprocess(crops[0].image)


def _scan(folder):
    if not os.path.isdir(folder):
        return []
    found = []
    for label in sorted(os.listdir(folder)):
        class_folder = os.path.join(folder, label)
        if os.path.isdir(class_folder):
            found += [GalleryFace(label.lower(), os.path.join(class_folder, name)) for name in os.listdir(class_folder)
                      if name.lower().endswith(IMAGE_SUFFIXES)]
    return found


def _scan_votes(folder):
    """FER+'s faces of one folder with their votes, less those most people called unknown or not a face and
    those whose file is not there (as :func:`_scan` lists only the files that are); FerPlusError for a row
    that is not a face's votes."""
    import csv
    known = {name: FER2013_CLASSES[label]
             for name, label in ferplus.read_fer2013_labels(os.path.join(folder, ferplus.FER2013_LABEL_FILE)).items()}
    found = []
    with open(os.path.join(folder, ferplus.LABEL_FILE), newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            counts = ferplus.parse_votes([field.strip() for field in row[2:]], f"{folder} row {number}")
            kept, top = ferplus.emotion_majority([counts])
            if not kept[0] or not os.path.isfile(os.path.join(folder, row[0].strip())):
                continue
            names = [ferplus.CLASS_OF_COLUMN.get(column) or NOT_EMOTIONS[column] for column in ferplus.VOTE_COLUMNS]
            votes = {name: count for name, count in sorted(zip(names, counts), key=lambda pair: -pair[1]) if count}
            found.append(GalleryFace(names[top[0]], os.path.join(folder, row[0].strip()), votes, known.get(row[0].strip())))
    return found
