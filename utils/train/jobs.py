"""Training a model in the background for the site and the desktop window.

train.py runs in a child process, so training never holds a web request thread or
the Tk thread, and a crash in it cannot take the front end down. Its training loop
writes ``runs/NAME/status.json`` after every epoch (:class:`utils.train.fit.RunStatus`),
which gives the progress; a thread waits for it to end and keeps the last line it wrote
on stderr, the one-line reason of a failure. When it finishes, the model file is in
place; the front ends load models by file (see :class:`utils.serving.model_file.ModelFile`), so
the new one is used at once.

The job's state lives in files under ``runs/``, where every process sees it: the
site runs as two gunicorn workers, each with its own :class:`TrainingJob`, and the
desktop window may train beside them. ``runs/training.lock`` holds the owner's pid
and is created exclusively (a complete file hard-linked into place, which fails when
one is there), so one run at a time deletes no other run's checkpoints; a lock whose
pid is gone is stale and is taken over. ``runs/training.json`` is the status, each
change replacing it atomically; one that says "running" while its owner's pid is
gone reads as "failed". While it runs, its progress is read from the run's own status,
when that was written since the job started (an earlier run's is not this one's).
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

from utils.cli import one_line
from utils.defaults import ROOT, RUN_STATUS_FILE, RUNS_DIR, run_dir
from utils.files import file_stamp, write_json

TRAIN_SCRIPT = os.path.join(ROOT, "train.py")
LOCK_FILE = "training.lock"
STATUS_FILE = "training.json"
IDLE = {"state": "idle", "progress": 0.0, "message": "", "model": None}
# The scores a progress message names, in this order, when the run's status has them.
SCORES = {"val_accuracy": "validation accuracy", "accuracy": "training accuracy",
          "train_accuracy": "training accuracy", "test_accuracy": "test accuracy"}
OWNER_GONE = "the process running the training stopped before it finished"


class JobBusy(RuntimeError):
    """A training job is already running."""


class TrainingJob:
    """One train.py run at a time across processes; :meth:`status` is a JSON-ready dict any thread may read."""

    def __init__(self, cwd=ROOT, python=sys.executable):
        self.cwd, self.python = cwd, python
        self.runs = os.path.join(cwd, RUNS_DIR)
        self._lock_path = os.path.join(self.runs, LOCK_FILE)
        self._status_path = os.path.join(self.runs, STATUS_FILE)
        self._process, self._follower = None, None
        self._own = None                 # this process's run: its status, as last written
        self._own_lock = threading.Lock()
        self._read = (None, IDLE)        # (file stamp, status): the file is read again only when it changes

    @property
    def running(self):
        return self.status()["state"] == "running"

    def status(self):
        """The status as whichever process runs the job last wrote it ("idle" before any run)."""
        try:
            stamp = file_stamp(self._status_path)
        except FileNotFoundError:
            return dict(IDLE)
        if stamp != self._read[0]:
            with open(self._status_path) as handle:
                self._read = stamp, json.load(handle)
        saved = self._read[1]
        status = {key: saved.get(key, value) for key, value in IDLE.items()}
        if status["state"] == "running" and not _alive(saved.get("owner")):
            status.update(state="failed", message=OWNER_GONE)
        elif status["state"] == "running":
            status.update(self._progress(saved))
        return status

    def _progress(self, saved):
        """``{"progress", "message"}`` from the status the run's training loop wrote since this job
        started; nothing before it writes one."""
        run = _read_json(os.path.join(run_dir(saved["model"], self.runs), RUN_STATUS_FILE))
        if run is None or run.get("updated", 0) < saved.get("started", 0):
            return {}
        scores = [f"{label} {run['metrics'][key]:.1%}" for key, label in SCORES.items() if key in run["metrics"]]
        if run["state"] == "saved":
            message = f"saved {run['model']}"
        else:
            message = f"epoch {run['epoch']} of {run['epochs']} done"
        return {"progress": run["epoch"] / run["epochs"],
                "message": message + (f" ({', '.join(scores)})" if scores else "")}

    def start(self, train_args, model_path):
        """Run ``train.py *train_args --out model_path`` in the background; JobBusy while any job runs.

        Returns the status: "running", or "failed" with the one-line reason when
        train.py could not be started (the lock is released: a new start may follow).
        """
        self._acquire()
        self._update(state="running", progress=0.0, message="starting train.py", model=model_path,
                     started=time.time())
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            self._process = subprocess.Popen(
                [self.python, TRAIN_SCRIPT, *train_args, "--out", model_path], cwd=self.cwd, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            self._follower = threading.Thread(target=self._follow, args=(self._process,), daemon=True,
                                              name="training-job")
            self._follower.start()
        except Exception as error:  # whatever stops it starting must not leave the job "running" for ever
            if self._process is not None:
                self._process.kill()
            self._finish(state="failed", message=f"could not start train.py: {one_line(error)}")
        return self.status()

    def _acquire(self):
        """Take the lock file, or raise JobBusy while its owner runs; a lock whose owner is gone is taken over."""
        os.makedirs(self.runs, exist_ok=True)
        for _ in range(3):
            try:
                _create_exclusively(self._lock_path, str(os.getpid()))
                return
            except FileExistsError:
                owner = _read_pid(self._lock_path)
                if _alive(owner):
                    raise JobBusy("a training job is already running") from None
                self._remove_stale(owner)
        raise JobBusy("a training job is starting")

    def _remove_stale(self, owner):
        """Remove the lock if it still is ``owner``'s: it is renamed aside first (atomic), and a live lock
        that another start created meanwhile is put back, so two starts never both take over."""
        aside = f"{self._lock_path}.{os.getpid()}.{threading.get_ident()}"
        try:
            os.rename(self._lock_path, aside)
        except FileNotFoundError:
            return
        try:
            if _read_pid(aside) != owner:
                os.link(aside, self._lock_path)
        except FileExistsError:
            pass
        finally:
            os.remove(aside)

    def _update(self, **changes):
        """Change this process's run's status and write it for every process to read."""
        with self._own_lock:
            self._own = {**(self._own or IDLE), **changes, "owner": os.getpid()}
            status = dict(self._own)
        write_json(self._status_path, status)

    def _finish(self, **changes):
        """The final status first, then the lock: a reader never sees "running" without an owner."""
        self._update(**changes)
        _remove(self._lock_path)

    def _follow(self, process):
        """Wait for train.py to end and record how: the run's last status when it succeeds, the last line
        it wrote on stderr when it fails (a one-line ``error: ...`` for a user's mistake)."""
        last = ""
        for line in process.stderr:
            last = line.strip() or last
        code = process.wait()
        if code == 0:
            self._finish(state="finished", progress=1.0, message=self._progress(self._own).get("message", ""))
        else:
            self._finish(state="failed", message=last.removeprefix("error:").strip()
                         or f"train.py stopped with status {code}")

    def stop(self):
        """End this process's running training (the front end is closing); the old model file stays."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # it ignored the request: the window still closes
                process.kill()
                process.wait()
        if self._follower is not None:
            self._follower.join(timeout=10)  # it records the end and releases the lock


def _create_exclusively(path, text):
    """Create ``path`` holding ``text``, or FileExistsError: a complete file is linked into place, so the
    lock is never seen empty."""
    handle, temp_path = tempfile.mkstemp(prefix=".partial-", dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.link(temp_path, path)
    finally:
        os.remove(temp_path)


def _read_json(path):
    """The JSON in ``path``, or None when there is none (yet) or it cannot be read."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid):
    """Whether process ``pid`` exists (it may belong to another user)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


