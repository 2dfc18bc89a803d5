"""Files that readers in other threads or processes may open at any moment: atomic writes and stamps.

No TensorFlow here: ``utils.train.jobs`` and ``train.py`` use it before (or without) Keras.
"""
import hashlib
import json
import os
import tempfile


def atomic_write(path, write):
    """Call ``write(temp_path)`` then rename over ``path``: a crash never leaves half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    handle, temp_path = tempfile.mkstemp(prefix=".partial-", suffix=suffix, dir=folder)
    os.close(handle)
    try:
        write(temp_path)
        os.chmod(temp_path, 0o644)  # mkstemp made it private; what we save is for everyone to read
        os.replace(temp_path, path)
    finally:
        if os.path.exists(temp_path):
            os.remove(temp_path)


def file_sha256(path):
    """The SHA-256 of a file's contents (a model's: the stamp its card carries, see utils.model.store.save_model)."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def file_stamp(path):
    """What changes whenever a file is replaced or rewritten: its inode, size and modification time."""
    status = os.stat(path)
    return status.st_ino, status.st_size, status.st_mtime_ns


def write_json(path, value, indent=None):
    """``value`` as a JSON file, atomically (see :func:`atomic_write`)."""
    def write(temp_path):
        with open(temp_path, "w") as handle:
            json.dump(value, handle, indent=indent)
            handle.write("\n")
    atomic_write(path, write)
