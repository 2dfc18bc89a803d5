"""Training a model in the background for the site and the desktop window.

train.py runs in a child process, so training never holds a web request thread or
the Tk thread, and a crash in it cannot take the front end down. A reader thread
follows its output: Keras prints ``Epoch N/M`` at each epoch's start, which gives the
progress. When it finishes, the model file is in place; the front ends load models
by file (see :class:`utils.identity.ModelFile`), so the new one is used at once.
"""
import os
import re
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SCRIPT = os.path.join(ROOT, "train.py")
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+)\s*$")


class JobBusy(RuntimeError):
    """A training job is already running."""


class TrainingJob:
    """One train.py run at a time; :meth:`status` is a JSON-ready dict any thread may read."""

    def __init__(self, cwd=ROOT, python=sys.executable):
        self.cwd, self.python = cwd, python
        self._process = None
        self._lock = threading.Lock()
        self._status = {"state": "idle", "progress": 0.0, "message": "", "model": None}

    @property
    def running(self):
        return self._status["state"] == "running"

    def status(self):
        with self._lock:
            return dict(self._status)

    def _update(self, **changes):
        with self._lock:
            self._status.update(changes)

    def start(self, train_args, model_path):
        """Run ``train.py *train_args --out model_path`` in the background; JobBusy if one runs."""
        with self._lock:
            if self._status["state"] == "running":
                raise JobBusy("a training job is already running")
            self._status = {"state": "running", "progress": 0.0, "message": "starting train.py",
                            "model": model_path}
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._process = subprocess.Popen(
            [self.python, TRAIN_SCRIPT, *train_args, "--out", model_path], cwd=self.cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._follow, args=(self._process,), daemon=True,
                         name="training-job").start()

    def _follow(self, process):
        """Turn train.py's output into progress; its last ``error:`` line becomes the message on failure."""
        error = ""
        for line in process.stdout:
            line = line.strip()
            epoch = EPOCH_LINE.match(line)
            if epoch:
                done, total = int(epoch.group(1)) - 1, int(epoch.group(2))
                self._update(progress=done / total, message=f"epoch {done + 1} of {total}")
            elif line.startswith("error:"):
                error = line[len("error:"):].strip()
            elif line.startswith("saved "):
                self._update(message=line)
        code = process.wait()
        if code == 0:
            self._update(state="finished", progress=1.0)
        else:
            self._update(state="failed", message=error or f"train.py stopped with status {code}")

    def stop(self):
        """End a running training (the front end is closing); the old model file stays."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
