"""Native libraries' start-up chatter kept off stderr, everything else they print kept on it.

A command-line tool's stderr is for its own one-line messages. TensorFlow and LiteRT print
notes there from C++, which Python's logging never sees:

- TensorFlow 2.21 logs "oneDNN custom operations are on" through Abseil while its shared
  libraries load (static initialisers, before any code could call ``absl::InitializeLog``
  or ``absl::SetMinLogLevel``), once per library that carries a copy of Abseil, each time
  preceded by Abseil's "All log messages before absl::InitializeLog() is called are written
  to STDERR". Abseil reads no environment variable, and ``TF_CPP_MIN_LOG_LEVEL`` only reaches
  TensorFlow's own logging, which starts later; the note appears on CPUs where oneDNN's
  custom operations are on (AVX512-VNNI/BF16, AMX), not on AVX2-only ones.
- LiteRT announces "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." when an
  interpreter is made.

So the process's stderr (file descriptor 2) is sent to a temporary file while TensorFlow is
first imported and while an interpreter is made, and what was written there goes back to
stderr afterwards, less the lines that are known chatter: an Abseil INFO or WARNING line
(``I0000 00:00:... port.cc:153] ...``), Abseil's "before InitializeLog" line and LiteRT's
XNNPACK line. Errors, and anything else, still reach the user. oneDNN stays on: it is what
makes these CPUs fast.
"""
import contextlib
import importlib.util
import os
import re
import sys
import tempfile
import threading

# TensorFlow's own C++ logging, which starts after its libraries load: warnings and errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHATTER = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.\-]+:\d+\] .*"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.")

# File descriptor 2 is the process's: one thread at a time may redirect it, or a second thread would
# save the redirected descriptor and restore that for good.
_LOCK = threading.RLock()


def without_chatter(text):
    """``text`` less its lines that are native libraries' known chatter (see the module docstring)."""
    return "".join(line for line in text.splitlines(keepends=True) if not CHATTER.fullmatch(line.rstrip("\r\n")))


@contextlib.contextmanager
def native_stderr_filtered():
    """Within the block, what native code (or Python) writes to stderr is held back, then written
    out less the known chatter, even when the block raises."""
    with _LOCK, tempfile.TemporaryFile(mode="w+b") as held:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(held.fileno(), 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = without_chatter(held.read().decode("utf-8", "replace"))
            if kept:
                os.write(2, kept.encode("utf-8"))


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


def quiet_imports(*packages):
    """Filter the chatter of each package's first import, unless it is imported already."""
    for package in packages:
        if package not in sys.modules and not any(getattr(hook, "package", None) == package for hook in sys.meta_path):
            sys.meta_path.insert(0, QuietImport(package))
