"""Webcam frames on a background thread; the window takes the newest one when it is ready.

Reading a frame blocks for a frame period (33 ms at 30 fps), so reading on the Tk
thread would make the window stutter. Frames the window has no time for are dropped
rather than queued, so what it shows is never behind the camera. Opening and
reconnecting are :class:`utils.video.VideoSource`'s, shared with ``real_time.py``.
"""
import threading

import cv2

from utils.video import VideoSource


class Camera:
    def __init__(self, index, opener=cv2.VideoCapture):
        self.index = index
        self._opener = opener
        self._source = None
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._frame = None
        self.lost = False

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def start(self):
        """Open the camera (slow on some systems: call it off the Tk thread) and start reading.

        Raises :class:`utils.video.SourceError` when it cannot be opened.
        """
        self._source = VideoSource(self.index, opener=self._opener)
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_frames, name=f"camera-{self.index}", daemon=True)
        self._thread.start()

    def _read_frames(self):
        while not self._stop.is_set():
            frame = self._source.read()
            if frame is None:
                self.lost = True
                return
            with self._lock:
                self._frame = frame

    def latest(self):
        """The newest frame not yet taken, or None."""
        with self._lock:
            frame, self._frame = self._frame, None
        return frame

    def stop(self):
        """Stop reading and release the device; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._source is not None:
            self._source.release()
            self._source = None
