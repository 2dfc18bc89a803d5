"""Video sources: a webcam by number, a file or a stream address, reconnected when it drops."""
import os
import sys
import threading
import time

import cv2

# A live source that stops giving frames is reopened this many times, this many seconds apart.
RECONNECT_TRIES = 5
RECONNECT_WAIT = 1.0
# Frame rate assumed for a source that does not report one (many webcams).
FALLBACK_FPS = 30.0


class SourceError(ValueError):
    """A camera, file or stream that cannot be opened: the user's input, so exit status 2."""


def parse_source(text):
    """``"0"`` -> camera index 0; anything else is a file path or stream URL, unchanged."""
    text = str(text).strip()
    return int(text) if text.isdigit() else text


def describe_source(source):
    return f"camera {source}" if isinstance(source, int) else str(source)


class VideoSource:
    """A camera, video file or stream, giving frames until the end, and reconnecting if live.

    A file ends at its last frame. A camera or stream that stops giving frames has
    dropped one or been unplugged: it is reopened up to ``retries`` times, ``wait``
    seconds apart, before :attr:`lost` is set and :meth:`read` gives up.

    :meth:`stop` may come from another thread (the desktop window's Stop button while
    its camera thread reads): it ends a reconnection at once, and a capture that a
    reconnection opens after it is released, never kept. The stop flag is checked
    under the lock that installs each new capture, so no capture outlives
    :meth:`release`. A capture that fails to open is released too.
    """

    def __init__(self, source, retries=RECONNECT_TRIES, wait=RECONNECT_WAIT, opener=cv2.VideoCapture):
        self.source = parse_source(source)
        self.name = describe_source(self.source)
        self.live = isinstance(self.source, int) or "://" in self.source
        self.retries, self.wait, self._opener = retries, wait, opener
        # frame_time: seconds of the last frame read, its place in a file or since a live source opened.
        self.frames_read, self.frame_time, self.lost = 0, 0.0, False
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        if not self.live and not os.path.isfile(self.source):
            raise SourceError(f"no video file at {self.source}")
        self._capture = self._open()
        if not self._capture.isOpened():
            self._capture.release()
            hint = " (is it connected and not used by another program? try --source 1)" if self.live else ""
            raise SourceError(f"cannot open {self.name}{hint}")
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or FALLBACK_FPS
        self._started = time.monotonic()

    def _open(self):
        # OpenCV logs its own multi-line warnings when a camera is missing; the caller says it once.
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        return self._opener(self.source)

    def read(self):
        """The next BGR frame, or None at the end of a file, once a live source is lost, or after :meth:`stop`."""
        ok, frame = self._capture.read()
        if not ok and self.live and not self._stopped.is_set():
            ok, frame = self._reconnect()
        if not ok:
            return None
        self.frames_read += 1
        self.frame_time = (time.monotonic() - self._started if self.live
                           else (self.frames_read - 1) / self.fps)
        return frame

    def _reconnect(self):
        for attempt in range(1, self.retries + 1):
            print(f"{self.name}: no frames, reconnecting ({attempt}/{self.retries})", file=sys.stderr)
            if self._stopped.wait(self.wait) or not self._reopen():
                return False, None
            ok, frame = self._capture.read() if self._capture.isOpened() else (False, None)
            if ok:
                return ok, frame
        self.lost = True
        return False, None

    def _reopen(self):
        """Release the dead capture (a camera opens once at a time) and open it again, unless stopped
        meanwhile: a capture that opens after :meth:`stop` is released at once."""
        with self._lock:
            if self._stopped.is_set():
                return False
            self._capture.release()
        capture = self._open()
        with self._lock:
            if not self._stopped.is_set():
                self._capture = capture
                return True
        capture.release()
        return False

    def stop(self):
        """End reading, from any thread: a reconnection gives up at once and opens nothing more."""
        self._stopped.set()

    def release(self):
        """Stop and release the device (from the reading thread, or once it has finished); safe twice."""
        with self._lock:
            self._stopped.set()
            self._capture.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
