"""Put FER2013, FER+ (and a folder of people's photos) where the tools look for them: ``make data``.

    python scripts/get_data.py --fer2013 ~/Downloads/fer2013.csv      # or the Kaggle .zip, or its folder
    python scripts/get_data.py --ferplus ~/FERPlus/data               # FERPlus's folders, or fer2013new.csv's folder
    python scripts/get_data.py --people ~/class_photos                # one folder of photos per person

FER2013 ends up as ``dataset/fer2013/train/<class>/*`` and ``dataset/fer2013/test/<class>/*``
(the layout of the popular Kaggle copy): from ``fer2013.csv`` the Training rows become
train/ and the PublicTest rows test/ (48x48 PNG files); an archive is unpacked first; a
folder that already has train/ and test/ is copied. The people's photos are copied to
``dataset/people/<person>/*``. FER+ (ten votes a face) ends up as ``dataset/ferplus/`` in FERPlus's
own layout (``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/``: PNG faces and ``label.csv``), read
from that layout or from ``fer2013new.csv`` beside ``fer2013.csv`` (then FER2013's own label of each face
is kept too, in ``fer2013_label.csv``); it is read and checked whole first, and written to a temporary
folder that takes ``dataset/ferplus``'s place only when complete. Without a source, it says where to
get FER2013 and exits 2.
"""
import argparse
import csv
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.defaults import FER2013, FERPLUS, IDENTITY_DATA  # noqa: E402
from utils.media.decode import IMAGE_SUFFIXES  # noqa: E402
from utils.train import ferplus  # noqa: E402
from utils.train.fer2013 import CSV_USAGES, FER2013_CLASSES, fer2013_row  # noqa: E402

WHERE_TO_GET = """FER2013 is not here. Download it (free, with a Kaggle account) from either
  https://www.kaggle.com/datasets/msambare/fer2013  (the image folders, archive.zip), or
  https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data
  (fer2013.csv), then run:  make data FER2013=/path/to/archive.zip   (or the .csv, or the unpacked folder)"""
ARCHIVES = (".zip", ".tar.gz", ".tgz", ".tar")


class DataError(ValueError):
    """The source cannot be used; the message says why in one line."""


def from_csv(path, target):
    """fer2013.csv's Training and PublicTest rows -> 48x48 PNGs in ``target``/train and /test, by class."""
    import cv2
    written = 0
    with open(path, newline="") as handle:
        rows = csv.DictReader(handle)
        if not {"emotion", "pixels", "Usage"} <= set(rows.fieldnames or ()):
            raise DataError(f"{path} is not fer2013.csv (it needs the columns emotion, pixels and Usage)")
        folders = {CSV_USAGES["train"]: "train", CSV_USAGES["test"]: "test"}
        for number, row in enumerate(rows):
            split, parsed = folders.get(row["Usage"]), fer2013_row(row)
            if split is None or parsed is None:
                continue
            label, face = parsed
            folder = os.path.join(target, split, FER2013_CLASSES[label])
            os.makedirs(folder, exist_ok=True)
            cv2.imwrite(os.path.join(folder, f"{row['Usage']}_{number}.png"), face)
            written += 1
    if not written:
        raise DataError(f"{path} has no Training or PublicTest rows")
    return written


def find(root, name):
    """The first file or folder called ``name`` under ``root`` (archives nest their contents)."""
    for folder, folders, files in os.walk(root):
        if name in files or name in folders:
            return os.path.join(folder, name)
    return None


def copy_folders(source, target):
    """A folder with train/ and test/ (class folders of faces) -> ``target``, file by file."""
    for split in ("train", "test"):
        if not os.path.isdir(os.path.join(source, split)):
            raise DataError(f"{source} has no {split}/ folder (expected train/<class>/*.jpg and test/<class>/*.jpg)")
    shutil.copytree(source, target, dirs_exist_ok=True)
    return sum(len(files) for _, _, files in os.walk(target))


def unpacked(archive, into):
    """An archive's contents in the folder ``into``."""
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(into)
    else:
        with tarfile.open(archive) as handle:
            handle.extractall(into, filter="data")
    return into


def get_fer2013(source, target):
    """FER2013 from a CSV, an archive or a folder, into ``target``; the number of faces written."""
    if not os.path.exists(source):
        raise DataError(f"no such file or folder: {source}")
    if os.path.isfile(source) and source.lower().endswith(ARCHIVES):
        with tempfile.TemporaryDirectory() as folder:
            return get_fer2013(unpacked(source, folder), target)
    if os.path.isfile(source):
        return from_csv(source, target)
    csv_file = find(source, "fer2013.csv")
    if csv_file:
        return from_csv(csv_file, target)
    train = find(source, "train")
    if train is None:
        raise DataError(f"{source} holds neither fer2013.csv nor train/ and test/ folders")
    return copy_folders(os.path.dirname(train), target)


def find_ferplus(root):
    """The folder under ``root`` that holds FER+ in either layout, or None."""
    if ferplus.is_ferplus(root):
        return root
    for folder, _, _ in os.walk(root):
        if ferplus.is_ferplus(folder):
            return folder
    return None


def get_ferplus(source, target, fer2013_folders=None):
    """FER+ from FERPlus's folders, ``fer2013new.csv`` (with ``fer2013.csv`` beside it) or an archive of either,
    into ``target`` in FERPlus's layout; the number of faces written. Where the source lacks FER2013's own
    labels, they are looked up in ``fer2013_folders`` (FER2013's class folders) when given."""
    if not os.path.exists(source):
        raise DataError(f"no such file or folder: {source}")
    if os.path.isfile(source) and source.lower().endswith(ARCHIVES):
        with tempfile.TemporaryDirectory() as folder:
            return get_ferplus(unpacked(source, folder), target, fer2013_folders)
    root = find_ferplus(os.path.dirname(source) if os.path.isfile(source) else source)
    if root is None:
        raise DataError(f"{source} holds neither FERPlus's FER2013Train/{ferplus.LABEL_FILE} nor {ferplus.NEW_CSV} "
                        f"beside {ferplus.FER2013_CSV}")
    try:
        usages = ferplus.read_ferplus(root)
    except ferplus.FerPlusError as error:
        raise DataError(str(error)) from None
    if fer2013_folders:
        attach_fer2013_labels(usages, fer2013_folders)
    return write_ferplus(usages, target)


# FER+'s usages and the folders of the Kaggle layout that hold the same faces.
KAGGLE_SPLITS = {"Training": "train", "PublicTest": "test"}


def attach_fer2013_labels(usages, fer2013_folders):
    """FER2013's own label of each FER+ face that lacks one, found by its pixels in FER2013's class folders
    (``make data FER2013=...`` writes them), so that the crowd can be compared with FER2013's one label."""
    import cv2
    import numpy as np
    for usage, split in KAGGLE_SPLITS.items():
        root = os.path.join(fer2013_folders, split)
        voted = usages.get(usage)
        if voted is None or (voted.fer2013 >= 0).all() or not os.path.isdir(root):
            continue
        faces, labels = [], []
        for label, name in enumerate(FER2013_CLASSES):
            folder = os.path.join(root, name)
            for file_name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
                face = cv2.imread(os.path.join(folder, file_name), cv2.IMREAD_GRAYSCALE)
                if face is not None and face.shape == voted.faces.shape[1:]:
                    faces.append(face)
                    labels.append(label)
        if not faces:
            continue
        matched = ferplus.match_labels(voted.faces, np.stack(faces), labels)
        voted.fer2013 = np.where(voted.fer2013 >= 0, voted.fer2013, matched)
        print(f"FER+ {usage}: FER2013's own label found for {int((voted.fer2013 >= 0).sum())} of {len(voted)} "
              f"faces by their pixels in {root}")


def write_ferplus(usages, target):
    """``{usage: VotedFaces}`` -> ``target`` in FERPlus's layout, through a temporary folder beside it that
    replaces ``target`` only once every file is written."""
    import cv2
    folders = {usage: folder for folder, usage in ferplus.FOLDER_USAGES.items()}
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    partial = tempfile.mkdtemp(prefix=".ferplus-", dir=os.path.dirname(os.path.abspath(target)))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o777 & ~umask)   # mkdtemp's folder is its owner's alone; dataset/ferplus is not
    try:
        for usage, voted in usages.items():
            folder = os.path.join(partial, folders[usage])
            os.makedirs(folder)
            with open(os.path.join(folder, ferplus.LABEL_FILE), "w", newline="") as handle:
                rows = csv.writer(handle)
                for name, face, votes in zip(voted.names, voted.faces, voted.votes):
                    if not cv2.imwrite(os.path.join(folder, name), face):
                        raise DataError(f"cannot write {os.path.join(folder, name)}")
                    rows.writerow([name, f"(0, 0, {face.shape[1]}, {face.shape[0]})", *votes])
            known = voted.fer2013 >= 0
            if known.any():
                with open(os.path.join(folder, ferplus.FER2013_LABEL_FILE), "w", newline="") as handle:
                    csv.writer(handle).writerows([name, FER2013_CLASSES[label]]
                                                 for name, label, keep in zip(voted.names, voted.fer2013, known) if keep)
        replace_folder(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return sum(len(voted) for voted in usages.values())


def replace_folder(new, target):
    """``new`` becomes ``target``; an old ``target`` is moved aside first and deleted only once the new one is in
    place: a failed move puts the old one back, and a stop between the two moves leaves it whole beside
    ``target`` (named ``.old-...``)."""
    old = None
    if os.path.exists(target):
        old = tempfile.mkdtemp(prefix=f".old-{os.path.basename(target)}-", dir=os.path.dirname(os.path.abspath(target)))
        os.rmdir(old)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        if old:
            os.replace(old, target)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)


def get_people(source, target):
    """One folder of photos per person -> ``target``; the number of photos copied."""
    if not os.path.isdir(source):
        raise DataError(f"no folder at {source} (give one folder of photos per person)")
    people = [entry for entry in sorted(os.scandir(source), key=lambda e: e.name) if entry.is_dir()]
    copied = 0
    for person in people:
        photos = [name for name in os.listdir(person.path) if name.lower().endswith(IMAGE_SUFFIXES)]
        os.makedirs(os.path.join(target, person.name), exist_ok=True)
        for name in photos:
            shutil.copy2(os.path.join(person.path, name), os.path.join(target, person.name, name))
        copied += len(photos)
    if not copied:
        raise DataError(f"{source} has no folders of photos (expected {source}/<person>/*.jpg)")
    return copied


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fer2013", help="fer2013.csv, the Kaggle archive, or a folder with train/ and test/")
    parser.add_argument("--ferplus", help="FER+ (ten votes a face): FERPlus's data folder (FER2013Train/ ...), a folder "
                                          "with fer2013new.csv beside fer2013.csv, or an archive of either")
    parser.add_argument("--people", help="a folder holding one folder of photos per person")
    parser.add_argument("--into", default=ROOT, help="the project folder (default: this one)")
    args = parser.parse_args(argv)
    fer_target, people_target = os.path.join(args.into, FER2013), os.path.join(args.into, IDENTITY_DATA)
    ferplus_target = os.path.join(args.into, FERPLUS)
    try:
        if args.fer2013:
            count = get_fer2013(os.path.abspath(os.path.expanduser(args.fer2013)), fer_target)
            print(f"FER2013: {count} faces in {fer_target}")
        if args.ferplus:
            count = get_ferplus(os.path.abspath(os.path.expanduser(args.ferplus)), ferplus_target,
                                fer_target if os.path.isdir(fer_target) else None)
            print(f"FER+: {count} faces with their votes in {ferplus_target}")
        if args.people:
            count = get_people(os.path.abspath(os.path.expanduser(args.people)), people_target)
            print(f"people: {count} photos in {people_target}")
    except (DataError, OSError, tarfile.TarError, zipfile.BadZipFile) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not args.fer2013 and not args.people and not args.ferplus:
        if os.path.isdir(os.path.join(fer_target, "train")):
            print(f"FER2013 is already in {fer_target}")
            return 0
        print(WHERE_TO_GET, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
