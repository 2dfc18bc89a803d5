"""Test faces to step through: ``<folder>/<class>/*.jpg`` (FER2013's test split by default).

The faces are read from the user's own copy of the data set when a page asks for
them; nothing of the data set is part of the project. Files are listed once and
sorted by name, which mixes the classes (FER2013's names are ids, not labels).
"""
import os
import threading

from utils.media.decode import IMAGE_SUFFIXES


class Gallery:
    def __init__(self, folder):
        self.folder = folder
        self._items = None
        self._lock = threading.Lock()

    def items(self):
        """``[(true label, path), ...]``, or an empty list when the folder is missing."""
        with self._lock:
            if self._items is None:
                self._items = sorted(_scan(self.folder), key=lambda item: os.path.basename(item[1]))
            return self._items

    def __len__(self):
        return len(self.items())

    def item(self, index):
        """The ``index``-th face, wrapping around, so "Next image" never runs off the end."""
        items = self.items()
        return items[index % len(items)]


def _scan(folder):
    if not os.path.isdir(folder):
        return []
    found = []
    for label in sorted(os.listdir(folder)):
        class_folder = os.path.join(folder, label)
        if os.path.isdir(class_folder):
            found += [(label.lower(), os.path.join(class_folder, name)) for name in os.listdir(class_folder)
                      if name.lower().endswith(IMAGE_SUFFIXES)]
    return found
