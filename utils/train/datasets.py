"""Reading FER2013 (the CSV or class folders), people folders or LFW; splits and class weights.

Every face goes through :func:`utils.faces.preprocess.preprocess`, the function inference uses.
Photos of whole heads (an identity set such as Yale) are first cut down to their
largest face, upright, with :func:`utils.faces.align.largest_face`, as inference cuts faces out.
Class folders are matched to FER2013's label order by name, case-insensitively, never
by alphabetical position; a folder set with other classes trains unchanged. Broken
rows and unreadable images are skipped and counted, never fatal.
"""
import csv
import os
from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from utils.faces.align import largest_face
from utils.faces.preprocess import preprocess
from utils.media.decode import IMAGE_SUFFIXES
from utils.train import ferplus
from utils.train.fer2013 import CSV_USAGES, FER2013_CLASSES, fer2013_row

LFW = "lfw"  # ``--data lfw``: Labeled Faces in the Wild through scikit-learn (needs the internet once)
LFW_HINT = "or pass --data FOLDER with one folder of photos per person (e.g. dataset/people, see make data)"
# Photos each person needs when test photos are held out of their folder: one to test on, one to learn from.
MIN_PHOTOS_TO_HOLD_OUT = 2


class DatasetError(ValueError):
    """The data set cannot be used; the message says why in one line."""


@dataclass
class Split:
    """Preprocessed faces ``(N, H, W, C)`` float32 with integer labels.

    A crowd-labelled set (FER+) also keeps each face's ``votes`` (``(N, classes)`` counts in the card's
    class order; ``labels`` is then the majority) and, where known, FER2013's own label of the face
    (``fer2013``: an index into the same classes, -1 where unknown).
    """
    images: np.ndarray
    labels: np.ndarray
    skipped: int = 0
    paths: list = None    # the file of each image, when read from folders
    no_face: int = 0      # photos cropped to a face where none was found, so kept whole
    votes: np.ndarray = None
    fer2013: np.ndarray = None

    def __len__(self):
        return len(self.labels)

    def subset(self, index):
        paths = None if self.paths is None else [self.paths[i] for i in index]
        picked = {name: None if getattr(self, name) is None else getattr(self, name)[index]
                  for name in ("votes", "fer2013")}
        return Split(self.images[index], self.labels[index], paths=paths, **picked)


@dataclass
class Dataset:
    classes: list
    train: Split
    val: Split
    test: Split = None
    source: str = ""
    notes: list = field(default_factory=list)


def canonical_class_order(names):
    """FER2013 classes in their label order first, then any others alphabetically."""
    lowered = {name.lower() for name in names}
    known = [name for name in FER2013_CLASSES if name in lowered]
    return known + sorted(lowered - set(known))


def load_fer2013_csv(path, size=(48, 48), channels=1):
    """``fer2013.csv`` -> ``{usage: Split}`` for Training, PublicTest and PrivateTest."""
    rows = {}
    skipped = 0
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{path} has no {', '.join(sorted(missing))} column")
        for row in tqdm(reader, desc=f"reading {os.path.basename(path)}", unit=" rows"):
            parsed = fer2013_row(row)
            if parsed is None:
                skipped += 1
                continue
            label, face = parsed
            usage = (row.get("Usage") or "Training").strip()
            rows.setdefault(usage, ([], []))
            rows[usage][0].append(preprocess(face, size[0], size[1], channels))
            rows[usage][1].append(label)
    splits = {usage: Split(np.stack(images), np.array(labels, dtype=np.int64))
              for usage, (images, labels) in rows.items()}
    if not splits:
        raise DatasetError(f"{path} holds no readable rows")
    return splits, skipped


def find_class_folders(root):
    """``{lower-case class name: folder path}`` for the subfolders of ``root`` that hold images."""
    folders = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_dir() and any(name.lower().endswith(IMAGE_SUFFIXES) for name in os.listdir(entry.path)):
            folders[entry.name.lower()] = entry.path
    return folders


def load_class_folders(root, classes, size=(48, 48), channels=1, crop_context=None):
    """Images under ``root/<class>/`` -> Split, labels by position in ``classes``.

    ``crop_context`` (a number) cuts each photo down to its largest face first, framed that
    much wider than FER2013's faces (see :func:`utils.faces.align.aligned_crop`); photos without a
    detected face are kept whole and counted in ``no_face``.
    """
    folders = find_class_folders(root)
    unknown = sorted(set(folders) - set(classes))
    if unknown:
        raise DatasetError(f"{root} has classes {unknown} that are not in {classes}")
    files = [(os.path.join(path, name), classes.index(cls))
             for cls, path in folders.items()
             for name in sorted(os.listdir(path)) if name.lower().endswith(IMAGE_SUFFIXES)]
    images, labels, paths, skipped, no_face = [], [], [], 0, 0
    for file_path, label in tqdm(files, desc=f"reading {root}", unit=" images"):
        face = cv2.imread(file_path, cv2.IMREAD_GRAYSCALE if crop_context is None else cv2.IMREAD_COLOR)
        if face is None or face.size == 0:
            skipped += 1
            continue
        if crop_context is not None:
            face, found = largest_face(face, context=crop_context, multiple=size[1])
            no_face += not found
        images.append(preprocess(face, size[0], size[1], channels))
        labels.append(label)
        paths.append(file_path)
    if not images:
        raise DatasetError(f"{root} holds no readable images")
    return Split(np.stack(images), np.array(labels, dtype=np.int64), skipped, paths, no_face)


def stratified_split(labels, fraction, seed, per_class=None):
    """Indices ``(keep, held_out)``: ``fraction`` (or ``per_class`` images) of every class held out, reproducibly."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for label in np.unique(labels):
        index = rng.permutation(np.flatnonzero(labels == label))
        if per_class is not None:
            count = min(per_class, len(index) - 1)  # a class keeps at least one image to learn from
        else:
            count = int(round(len(index) * fraction)) if fraction > 0 else 0
        held.extend(index[:count])
        keep.extend(index[count:])
    return np.sort(np.array(keep, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))


def load_dataset(path, val_fraction=0.1, seed=0, size=(48, 48), channels=1, crop_context=None,
                 test_per_class=0, lfw_min_faces=70, pixels="raw"):
    """Any accepted layout -> Dataset with train, validation and (when present) test splits.

    Layouts: ``fer2013.csv`` (or a folder holding it); FER+ (:mod:`utils.train.ferplus`: its training
    faces' votes kept, its PublicTest faces the test split); a folder with ``train/`` and
    optionally ``test/`` class folders; a single folder of class folders; ``lfw``.
    ``pixels="equalised"`` histogram-equalises FER+'s training and validation faces (test faces stay as
    the data set has them, as a camera gives them).
    ``crop_context`` cuts photos down to their face (see :func:`load_class_folders`).
    Without a test/ folder, ``test_per_class`` images of every class are held out for
    testing (seeded) before the validation part is.
    """
    if path == LFW:
        return load_lfw(lfw_min_faces, val_fraction, seed, size, channels, test_per_class)
    if not os.path.exists(path):
        raise DatasetError(f"no data set at {path} (run 'make data', or see dataset/README.md)")
    if ferplus.is_ferplus(path):
        return _dataset_from_ferplus(path, val_fraction, seed, size, channels, pixels)
    csv_path = os.path.join(path, "fer2013.csv") if os.path.isdir(path) else path
    if os.path.isfile(csv_path):
        return _dataset_from_csv(csv_path, val_fraction, seed, size, channels)
    train_root = os.path.join(path, "train")
    root = train_root if os.path.isdir(train_root) else path
    test_root = os.path.join(path, "test") if root == train_root else None
    names = set(find_class_folders(root))
    if test_root and os.path.isdir(test_root):
        names |= set(find_class_folders(test_root))
    if not names:
        raise DatasetError(f"{path} has no class folders with images (expected train/<class>/*.jpg)")
    classes = canonical_class_order(names)
    has_test = bool(test_root) and os.path.isdir(test_root)
    if test_per_class > 0 and not has_test:
        _check_enough_to_hold_out(find_class_folders(root))
    train = load_class_folders(root, classes, size, channels, crop_context)
    test = load_class_folders(test_root, classes, size, channels, crop_context) if has_test else None
    dataset = _split(classes, train, test, val_fraction, seed, test_per_class, source=path)
    dataset.train.skipped = train.skipped + (test.skipped if test else 0)
    dataset.train.no_face = train.no_face + (test.no_face if test else 0)
    return dataset


def _split(classes, train, test, val_fraction, seed, test_per_class, source):
    """Validation (and, without a test split, ``test_per_class`` test images) held out of ``train``.

    A small set (a class's 5 photos of each person) may leave no image for validation:
    then the validation split is empty, and training chooses on its training images
    (:func:`utils.train.record.selection`).
    """
    if test is None and test_per_class > 0:
        keep, held = stratified_split(train.labels, 0, seed, per_class=test_per_class)
        train, test = train.subset(keep), train.subset(held)
    keep, held = stratified_split(train.labels, val_fraction, seed)
    return Dataset(classes, train.subset(keep), train.subset(held), test, source=source)


def _check_enough_to_hold_out(folders):
    """Before any photo is read, a one-line DatasetError naming the people (``{person: folder}``) with too
    few photos to learn from one and test on another."""
    short = [name for name, folder in folders.items()
             if sum(file.lower().endswith(IMAGE_SUFFIXES) for file in os.listdir(folder)) < MIN_PHOTOS_TO_HOLD_OUT]
    if short:
        named = ", ".join(short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
        raise DatasetError(f"{named} {'has' if len(short) == 1 else 'have'} fewer than {MIN_PHOTOS_TO_HOLD_OUT} "
                           f"photos: each person needs at least {MIN_PHOTOS_TO_HOLD_OUT} (one to learn from, one to "
                           "test on), and 5 or more train a useful model")


def load_lfw(min_faces, val_fraction=0.1, seed=0, size=(48, 48), channels=1, test_per_class=2):
    """Labeled Faces in the Wild through scikit-learn: every person with ``min_faces`` photos or more.

    scikit-learn downloads LFW once (about 200 MB) into its data folder; its photos are
    already cut to the face, so they go straight to :func:`preprocess`.
    """
    try:
        from sklearn.datasets import fetch_lfw_people
        people = fetch_lfw_people(min_faces_per_person=min_faces, resize=1.0)
    except ImportError:
        raise DatasetError(f"LFW needs scikit-learn (pip install scikit-learn), {LFW_HINT}") from None
    except OSError as error:  # no network (URLError is an OSError), or a broken download
        raise DatasetError(f"cannot download LFW ({str(error).splitlines()[0] or type(error).__name__}); "
                           f"connect to the internet once, {LFW_HINT}") from None
    if len(people.target_names) < 2:
        raise DatasetError(f"LFW has fewer than two people with {min_faces} photos; lower --lfw-min-faces")
    images = np.stack([preprocess(np.clip(face, 0, 255).astype(np.uint8), size[0], size[1], channels)
                       for face in people.images])
    train = Split(images, people.target.astype(np.int64))
    return _split([str(name) for name in people.target_names], train, None, val_fraction, seed,
                  test_per_class, source=f"LFW (min_faces_per_person={min_faces})")


def _dataset_from_csv(csv_path, val_fraction, seed, size, channels):
    splits, skipped = load_fer2013_csv(csv_path, size, channels)
    if CSV_USAGES["train"] not in splits:
        raise DatasetError(f"{csv_path} has no Training rows")
    train = splits[CSV_USAGES["train"]]
    keep, held = stratified_split(train.labels, val_fraction, seed)
    dataset = Dataset(list(FER2013_CLASSES), train.subset(keep), train.subset(held),
                      splits.get(CSV_USAGES["test"]), source=csv_path)
    dataset.train.skipped = skipped
    return dataset


def load_test_split(path, classes, size=(48, 48), channels=1, usage="PublicTest"):
    """The split to report on: a class-folder tree, ``fer2013.csv`` rows of ``usage`` or FER+'s faces of
    ``usage`` (or one FERPlus folder), labelled by position in ``classes`` (FER2013's and FER+'s own
    classes are mapped by name; FER+'s votes kept in that order)."""
    if not os.path.exists(path):
        raise DatasetError(f"no test split at {path}")
    if ferplus.is_ferplus(path) or os.path.isfile(os.path.join(path, ferplus.LABEL_FILE)):
        return _ferplus_test_split(path, list(classes), size, channels, usage)
    if os.path.isfile(path):
        splits, _ = load_fer2013_csv(path, size, channels)
        if usage not in splits:
            raise DatasetError(f"{path} has no {usage} rows")
        split, order = splits[usage], list(classes)
        missing = sorted({FER2013_CLASSES[label] for label in split.labels} - set(order))
        if missing:
            raise DatasetError(f"{path} has classes {missing} that are not in {order}")
        split.labels = np.array([order.index(name) if name in order else -1 for name in FER2013_CLASSES])[split.labels]
        return split
    return load_class_folders(path, list(classes), size, channels)


def voted_split(voted, classes, size=(48, 48), channels=1, equalise=False):
    """FER+'s faces of one usage -> Split with majority labels (ties go to the first of FER+'s columns, as
    FER+'s own counts break them), the votes and FER2013's labels in ``classes``' order.

    Left out (counted in ``skipped``): the faces the paper leaves out (most votes for "unknown" or "not a
    face") and, for a model with fewer classes (FER2013's seven), those whose majority it does not know.
    The faces kept lose their votes for classes the model does not have (and for unknown and not a face),
    so their shares are of the votes for the model's classes."""
    kept, top = ferplus.emotion_majority(voted.votes)
    majority = np.array([ferplus.CLASS_OF_COLUMN.get(name, "") for name in ferplus.VOTE_COLUMNS])[top]
    kept &= np.isin(majority, list(classes))
    if not kept.any():
        raise DatasetError(f"no face's majority is one of {', '.join(classes)}")
    votes = ferplus.class_votes(voted.votes[kept], classes)
    # FER2013's label index -> the same class's index in ``classes`` (-1: not there, or unknown)
    order = np.array([list(classes).index(name) if name in classes else -1 for name in FER2013_CLASSES] + [-1])
    faces = voted.faces[kept]
    if equalise:
        faces = np.stack([cv2.equalizeHist(face) for face in faces])
    images = np.stack([preprocess(face, size[0], size[1], channels) for face in faces])
    labels = np.array([list(classes).index(name) for name in majority[kept]], dtype=np.int64)
    return Split(images, labels, skipped=int(np.sum(~kept)),
                 votes=votes, fer2013=order[voted.fer2013[kept]])


def _read_ferplus(path):
    try:
        return ferplus.read_ferplus(path)
    except ferplus.FerPlusError as error:
        raise DatasetError(str(error)) from None


def _dataset_from_ferplus(path, val_fraction, seed, size, channels, pixels):
    usages = _read_ferplus(path)
    if "Training" not in usages:
        raise DatasetError(f"{path} has no training faces (FER2013Train/)")
    classes = list(ferplus.FERPLUS_CLASSES)
    train = voted_split(usages["Training"], classes, size, channels, equalise=pixels == "equalised")
    test = voted_split(usages["PublicTest"], classes, size, channels) if "PublicTest" in usages else None
    dataset = _split(classes, train, test, val_fraction, seed, 0, source=path)
    dataset.train.skipped = train.skipped
    return dataset


def _ferplus_test_split(path, classes, size, channels, usage):
    if os.path.isfile(os.path.join(path, ferplus.LABEL_FILE)):
        try:
            voted = ferplus.read_folder(path)
        except ferplus.FerPlusError as error:
            raise DatasetError(str(error)) from None
    else:
        usages = _read_ferplus(path)
        if usage not in usages:
            raise DatasetError(f"{path} has no {usage} faces")
        voted = usages[usage]
    return voted_split(voted, classes, size, channels)


def class_weights(labels, num_classes):
    """Inverse-frequency weights (``n / (k * count)``), so rare disgust counts as much as happy."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    total = counts.sum()
    return {i: float(total / (num_classes * c)) if c else 0.0 for i, c in enumerate(counts)}
