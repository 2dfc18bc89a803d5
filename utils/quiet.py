"""Native libraries' known start-up notes kept off stderr, everything else they print shown as it comes.

A command-line tool's stderr is for its own one-line messages. TensorFlow and LiteRT print
notes there from C++, which Python's logging never sees:

- TensorFlow 2.21 logs "oneDNN custom operations are on" through Abseil while its shared
  libraries load (static initialisers, before any code could call ``absl::InitializeLog``
  or ``absl::SetMinLogLevel``), once per library that carries a copy of Abseil, each time
  preceded by Abseil's "All log messages before absl::InitializeLog() is called are written
  to STDERR". Abseil reads no environment variable, and ``TF_CPP_MIN_LOG_LEVEL`` only reaches
  TensorFlow's own logging, which starts later; the note appears on CPUs where oneDNN's
  custom operations are on (AVX512-VNNI/BF16, AMX), not on AVX2-only ones.
- LiteRT announces "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." when the
  process's first interpreter is made.

:func:`install`, called by each front end's entry point (never on import), filters them:
while TensorFlow is first imported and while the first interpreter is made, the process's stderr
(file descriptor 2) is a pipe into a small forwarding process that writes every line on to
the real stderr as it arrives, less those three known notes. A process, not a thread: when the
import dies (an abort, a segmentation fault, an illegal instruction on an old CPU) a thread dies
with it and what it had not yet read is lost, whereas the forwarder reads the pipe to its end and
shows the last words. A hang shows what was printed before it. oneDNN stays on: it is what makes
these CPUs fast.
"""
import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import threading

CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} \d\d:\d\d:\d+\.\d+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.")

# How long the end of a filtered block waits at most for the forwarder to pass on the last lines (it
# takes milliseconds). Only when native code kept a copy of the pipe does it take this long: the
# forwarder then stays, passing on what that copy carries.
FORWARDER_DRAIN_SECONDS = 5

# File descriptor 2 is the process's: one thread at a time may redirect it, or a second thread would
# save the redirected descriptor and restore that for good.
_LOCK = threading.RLock()
_installed = False
_lingering = []   # forwarders still serving a copy of the pipe that native code kept
_done_once = set()


def is_chatter(line):
    """Whether one line (without its line ending) is one of the known notes (see the module docstring)."""
    return CHATTER.fullmatch(line) is not None


def forward(source, target):
    """Copy lines from the binary stream ``source`` to ``target`` as each one arrives, less the chatter."""
    for line in iter(source.readline, b""):
        if not is_chatter(line.decode("utf-8", "replace").rstrip("\r\n")):
            target.write(line)
            target.flush()


def install():
    """Filter the known notes for the rest of the process: the one call a front end's entry point makes
    before anything imports TensorFlow (:func:`utils.cli.run_cli` makes it). Calling it again does nothing."""
    global _installed
    with _LOCK:
        if _installed:
            return
        _installed = True
    # TensorFlow's own C++ logging, read when it starts: level 2 hides its INFO and WARNING messages
    # (cpu_feature_guard's "rebuild TensorFlow to use AVX512..." advice among them) and keeps ERROR and FATAL.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _quiet_first_import("tensorflow")
    # Keras' Python-side notes ("WARNING:absl:... HDF5 file format is considered legacy") go through absl.
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def native_stderr_filtered():
    """Within the block, what is written to file descriptor 2 goes to the real stderr line by line as it
    comes, less the known notes; without :func:`install`, the block runs as it is."""
    if not _installed:
        yield
        return
    with _LOCK:
        sys.stderr.flush()
        try:
            forwarder, saved = _redirect_stderr()
        except OSError:          # no stderr to redirect, or no way to start the forwarder: unfiltered
            forwarder = None
        try:
            yield
        finally:
            if forwarder is not None:
                _restore_stderr(forwarder, saved)


@contextlib.contextmanager
def filtered_the_first_time(what):
    """:func:`native_stderr_filtered` the first time a block named ``what`` runs in the process, as it is after:
    for notes printed once a process (LiteRT's), without the forwarder's start (some 50 ms) every time.
    Other threads wait for that first block, lest one of them prints the note unfiltered meanwhile."""
    if what not in _done_once:
        with _LOCK:
            if what not in _done_once:
                with native_stderr_filtered():
                    yield
                _done_once.add(what)
                return
    yield


def _redirect_stderr():
    """Point file descriptor 2 at a pipe read by a new forwarder: ``(forwarder, saved descriptor)``."""
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    try:
        forwarder = subprocess.Popen([sys.executable, "-I", "-S", "-B", os.path.abspath(__file__)],
                                     stdin=read_end, stdout=saved, stderr=subprocess.DEVNULL)
    except BaseException:
        os.close(write_end)
        os.close(saved)
        raise
    finally:
        os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    return forwarder, saved


def _restore_stderr(forwarder, saved):
    """Give file descriptor 2 back and let the forwarder pass on what is left, so later lines come after it."""
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    try:
        forwarder.wait(timeout=FORWARDER_DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        _lingering.append(forwarder)


class _QuietLoader:
    """A module's own loader, run with stderr filtered."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with native_stderr_filtered():
            self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class QuietImport:
    """An import hook for one top-level package: its first import (wherever it happens, Keras'
    included) runs with stderr filtered; then the hook takes itself off ``sys.meta_path``."""

    def __init__(self, package):
        self.package = package

    def find_spec(self, name, path=None, target=None):
        if name != self.package:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _quiet_first_import(package):
    """Filter the chatter of the package's first import, unless it is imported already."""
    if package not in sys.modules and not any(isinstance(hook, QuietImport) for hook in sys.meta_path):
        sys.meta_path.insert(0, QuietImport(package))


if __name__ == "__main__":   # the forwarder: the pipe on stdin, the real stderr on stdout
    forward(sys.stdin.buffer, sys.stdout.buffer)
