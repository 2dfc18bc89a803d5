"""Reading FER+: FER2013's faces with ten people's votes each (Barsoum et al., ICMI 2016).

Two layouts, as FER+'s users have them:

- FERPlus's own (``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/``): PNG faces and a ``label.csv``
  without a header, each row ``image name, face box, ten vote counts``;
- the paper's route: ``fer2013new.csv`` (``Usage, Image name, ten vote counts``, row for row beside
  ``fer2013.csv``), whose faces are the pixels of ``fer2013.csv``; there FER2013's own label is known too.

The ten counts are in FER+'s order: neutral, happiness, surprise, sadness, anger, disgust, fear,
contempt, unknown, not a face. They are kept per face, mapped to this project's class names
(FER2013's seven words in FER2013's order, then contempt). A face whose most-voted column is
"unknown" or "not a face" is left out, as the paper does. Unlike FER2013's reader, a bad row, a
missing image or a malformed vote count is an error naming the file and the row: a crowd label
read wrong would teach the model silently.
"""
import csv
import os
import re
from dataclasses import dataclass

import cv2
import numpy as np
from tqdm import tqdm

from utils.train.fer2013 import FER2013_CLASSES, fer2013_row

# FER+'s vote columns, in its files' order.
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                "unknown", "NF")
# FER+'s words for the emotions in this project's (FER2013's) words.
CLASS_OF_COLUMN = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                   "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "contempt"}
# A FER+ model's classes: FER2013's, in FER2013's order (so its colours and a FER2013 model's agree),
# then contempt.
FERPLUS_CLASSES = FER2013_CLASSES + ("contempt",)
# FERPlus's folders and the FER2013 usage each holds.
FOLDER_USAGES = {"FER2013Train": "Training", "FER2013Valid": "PublicTest", "FER2013Test": "PrivateTest"}
LABEL_FILE = "label.csv"
# Beside a folder's label.csv when FER2013's own label of each face is known (make data writes it from
# fer2013.csv): ``image name, FER2013 class``.
FER2013_LABEL_FILE = "fer2013_label.csv"
NEW_CSV, FER2013_CSV = "fer2013new.csv", "fer2013.csv"
_BOX = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)$")


class FerPlusError(ValueError):
    """FER+ cannot be read as it is; the one-line message names the file and the row."""


@dataclass
class VotedFaces:
    """One FER2013 usage's faces as FER+ has them, before any face is left out."""
    names: list            # image names, ferNNNNNNN.png (the row of fer2013.csv)
    faces: np.ndarray      # (N, 48, 48) uint8, raw pixels
    votes: np.ndarray      # (N, 10) int: VOTE_COLUMNS' counts
    fer2013: np.ndarray    # (N,) FER2013's own label (index into FER2013_CLASSES), -1 where unknown

    def __len__(self):
        return len(self.names)


def class_votes(votes, classes=FERPLUS_CLASSES):
    """``(N, 10)`` FER+ counts -> ``(N, len(classes))`` counts in ``classes``' order (the card's); a class
    FER+ has no column for gets 0 votes."""
    votes = np.asarray(votes)
    column = {CLASS_OF_COLUMN[name]: i for i, name in enumerate(VOTE_COLUMNS) if name in CLASS_OF_COLUMN}
    out = np.zeros((len(votes), len(classes)), dtype=np.float32)
    for k, name in enumerate(classes):
        if name in column:
            out[:, k] = votes[:, column[name]]
    return out


def emotion_majority(votes):
    """Which faces the paper keeps (their most-voted column is an emotion, not unknown or not a face) and
    their majority class in FER+'s column order (the first of tied columns)."""
    votes = np.asarray(votes)
    top = np.argmax(votes, axis=1)
    return top < len(CLASS_OF_COLUMN), top


def is_ferplus(path):
    """Whether ``path`` is FER+ in either layout."""
    return bool(path) and os.path.isdir(path) and (
        any(os.path.isfile(os.path.join(path, folder, LABEL_FILE)) for folder in FOLDER_USAGES)
        or os.path.isfile(os.path.join(path, NEW_CSV)))


def read_ferplus(path):
    """FER+ at ``path`` (either layout) -> ``{usage: VotedFaces}`` for each usage it holds."""
    if os.path.isfile(os.path.join(path, NEW_CSV)):
        return read_new_csv(os.path.join(path, NEW_CSV), os.path.join(path, FER2013_CSV))
    found = {usage: read_folder(os.path.join(path, folder))
             for folder, usage in FOLDER_USAGES.items() if os.path.isfile(os.path.join(path, folder, LABEL_FILE))}
    if not found:
        raise FerPlusError(f"{path} is not FER+: it has neither FER2013Train/{LABEL_FILE} nor {NEW_CSV}")
    return found


def parse_votes(fields, where):
    """Ten vote counts (non-negative whole numbers, at least one vote) as ints, or a FerPlusError at ``where``."""
    if len(fields) != len(VOTE_COLUMNS):
        raise FerPlusError(f"{where}: {len(fields)} vote counts, expected {len(VOTE_COLUMNS)} "
                           f"({', '.join(VOTE_COLUMNS)})")
    try:
        votes = [int(field) for field in fields]
    except ValueError:
        raise FerPlusError(f"{where}: vote counts must be whole numbers, not {', '.join(fields)}") from None
    if min(votes) < 0 or sum(votes) == 0:
        raise FerPlusError(f"{where}: vote counts must be 0 or more with at least one vote, not {fields}")
    return votes


def read_folder(folder):
    """One FERPlus folder (PNGs and label.csv, FER2013's labels when fer2013_label.csv is there) -> VotedFaces."""
    label_path = os.path.join(folder, LABEL_FILE)
    known = read_fer2013_labels(os.path.join(folder, FER2013_LABEL_FILE))
    names, faces, votes = [], [], []
    with open(label_path, newline="") as handle:
        rows = list(csv.reader(handle))
    for number, row in enumerate(tqdm(rows, desc=f"reading {label_path}", unit=" faces"), start=1):
        where = f"{label_path} row {number}"
        if len(row) < 2:
            raise FerPlusError(f"{where}: expected an image name, a face box and {len(VOTE_COLUMNS)} vote counts")
        name, box = row[0].strip(), _parse_box(row[1], where)
        counts = parse_votes([field.strip() for field in row[2:]], where)
        image = cv2.imread(os.path.join(folder, name), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FerPlusError(f"{where}: image {name} is missing or unreadable in {folder}")
        left, top, right, bottom = box
        if not (right <= image.shape[1] and bottom <= image.shape[0] and left < right and top < bottom):
            raise FerPlusError(f"{where}: face box {row[1]} is outside the {image.shape[1]}x{image.shape[0]} image")
        names.append(name)
        faces.append(image[top:bottom, left:right])
        votes.append(counts)
    if not names:
        raise FerPlusError(f"{label_path} lists no faces")
    return VotedFaces(names, _stack(faces, label_path), np.array(votes, dtype=np.int64),
                      np.array([known.get(name, -1) for name in names], dtype=np.int64))


def read_new_csv(new_path, fer2013_path):
    """The paper's route: ``fer2013new.csv``'s votes beside ``fer2013.csv``'s pixels and labels, row for row."""
    if not os.path.isfile(fer2013_path):
        raise FerPlusError(f"{new_path} needs {FER2013_CSV} beside it (its faces): {fer2013_path} is missing")
    found = {}
    with open(new_path, newline="") as new_handle, open(fer2013_path, newline="") as old_handle:
        new_rows, old_rows = csv.reader(new_handle), csv.DictReader(old_handle)
        header = [field.strip() for field in next(new_rows, [])]
        if header[:2] != ["Usage", "Image name"] or len(header) != 2 + len(VOTE_COLUMNS):
            raise FerPlusError(f"{new_path} row 1: expected the header Usage, Image name, {', '.join(VOTE_COLUMNS)}")
        for number, new_row in enumerate(tqdm(new_rows, desc=f"reading {new_path}", unit=" rows"), start=2):
            old_row = next(old_rows, None)
            where = f"{new_path} row {number}"
            if old_row is None:
                raise FerPlusError(f"{where}: {fer2013_path} ends before it (the two files go row for row)")
            if len(new_row) != len(header):
                raise FerPlusError(f"{where}: {len(new_row)} fields, expected {len(header)}")
            usage, name = new_row[0].strip(), new_row[1].strip()
            if not name:  # a face FER+ dropped (not a face, or unreadable): no votes to read
                continue
            counts = parse_votes([field.strip() for field in new_row[2:]], where)
            parsed = fer2013_row(old_row)
            if parsed is None:
                raise FerPlusError(f"{fer2013_path} row {number}: not a FER2013 row (emotion 0-6 and a square of "
                                   f"0-255 pixels), yet {NEW_CSV} has votes for it")
            if (old_row.get("Usage") or "").strip() != usage:
                raise FerPlusError(f"{where}: usage {usage} but {fer2013_path} row {number} says "
                                   f"{old_row.get('Usage')}: are these the matching files?")
            label, face = parsed
            entry = found.setdefault(usage, ([], [], [], []))
            for values, value in zip(entry, (name, face, counts, label)):
                values.append(value)
    if not found:
        raise FerPlusError(f"{new_path} has no faces with votes")
    return {usage: VotedFaces(names, _stack(faces, new_path), np.array(votes, dtype=np.int64),
                              np.array(labels, dtype=np.int64))
            for usage, (names, faces, votes, labels) in found.items()}


def _parse_box(text, where):
    """FERPlus's face box ``(left, top, right, bottom)``."""
    match = _BOX.match(text.strip())
    if not match:
        raise FerPlusError(f"{where}: face box {text!r} is not (left, top, right, bottom)")
    return tuple(int(value) for value in match.groups())


def read_fer2013_labels(path):
    """``{image name: FER2013 label index}`` from fer2013_label.csv, or {} when the file is not there."""
    if not os.path.isfile(path):
        return {}
    labels = {}
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if len(row) != 2 or row[1].strip() not in FER2013_CLASSES:
                raise FerPlusError(f"{path} row {number}: expected an image name and one of {', '.join(FER2013_CLASSES)}")
            labels[row[0].strip()] = FER2013_CLASSES.index(row[1].strip())
    return labels


def _stack(faces, source):
    sizes = {face.shape for face in faces}
    if len(sizes) > 1:
        raise FerPlusError(f"{source}: faces of different sizes {sorted(sizes)}")
    return np.stack(faces)


# Matching faces by their pixels: both sides histogram-equalised (so FER2013's equalised copies match
# FER+'s raw faces), shrunk to 16x16 and compared by correlation. The same face correlates 0.95 and more
# (median 0.9998); a face matched equally well by two FER2013 files of different labels (FER2013 holds
# duplicates) stays unknown.
MATCH_SIDE = 16
MATCH_MIN = 0.95
MATCH_TIE = 1e-3


def _match_keys(faces):
    """Unit-length, zero-mean 16x16 equalised thumbnails, one row a face."""
    thumbs = np.stack([cv2.resize(cv2.equalizeHist(face), (MATCH_SIDE, MATCH_SIDE), interpolation=cv2.INTER_AREA)
                       for face in faces]).reshape(len(faces), -1).astype(np.float32)
    thumbs -= thumbs.mean(axis=1, keepdims=True)
    return thumbs / (np.linalg.norm(thumbs, axis=1, keepdims=True) + 1e-9)


def match_labels(faces, labelled_faces, labels, chunk=2048):
    """For each of ``faces``, the label of the same face among ``labelled_faces`` (another copy of FER2013,
    raw or equalised), or -1 where none matches or two matches disagree."""
    keys, others = _match_keys(faces), _match_keys(labelled_faces)
    labels = np.asarray(labels)
    found = np.full(len(faces), -1, dtype=np.int64)
    for start in range(0, len(keys), chunk):
        similarity = keys[start:start + chunk] @ others.T
        best = similarity.max(axis=1)
        for row, score in enumerate(best):
            if score < MATCH_MIN:
                continue
            candidates = np.unique(labels[similarity[row] >= score - MATCH_TIE])
            if len(candidates) == 1:
                found[start + row] = candidates[0]
    return found
