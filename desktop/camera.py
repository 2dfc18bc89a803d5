"""Webcam frames on a background thread; the window takes the newest one when it is ready.

Reading a frame blocks for a frame period (33 ms at 30 fps), so reading on the Tk
thread would make the window stutter. Frames the window has no time for are dropped
rather than queued, so what it shows is never behind the camera. Opening and
reconnecting are :class:`utils.live.sources.VideoSource`'s, shared with ``real_time.py``.

A camera runs once: opening -> reading -> stopped. Opening takes seconds on some
systems and cannot be interrupted, so Stop may come while it is under way; the stop
flag is set and checked under one lock, and whichever thread holds the capture when
it is stopped releases it: :meth:`Camera.start` when the open finishes after Stop
(nothing is read), the reading thread otherwise.
"""
import threading

import cv2

from utils.live.sources import VideoSource

STOP_WAIT = 5.0  # seconds Stop waits for the reading thread to finish its frame and release the camera


class Camera:
    def __init__(self, index, opener=cv2.VideoCapture):
        self.index = index
        self._opener = opener
        self._source = None
        self._thread = None
        self._stopped = False
        self._lock = threading.Lock()
        self._frame = None
        self.lost = False

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    def start(self):
        """Open the camera (slow on some systems: call it off the Tk thread) and start reading.

        Returns whether it is reading: False when :meth:`stop` came first or during
        the open (then the capture is released). Raises :class:`utils.live.sources.SourceError`
        when it cannot be opened.
        """
        with self._lock:
            if self._stopped:
                return False
        source = VideoSource(self.index, opener=self._opener)
        with self._lock:
            if not self._stopped:
                self._source = source
                self._thread = threading.Thread(target=self._read_frames, name=f"camera-{self.index}", daemon=True)
                self._thread.start()
                return True
        source.release()
        return False

    def _read_frames(self):
        """The reading thread: it owns the capture from here, and releases it when it ends."""
        try:
            while not self._stop_requested():
                frame = self._source.read()
                if frame is None:
                    self.lost = not self._stop_requested()
                    return
                with self._lock:
                    self._frame = frame
        finally:
            self._source.release()

    def _stop_requested(self):
        with self._lock:
            return self._stopped

    def latest(self):
        """The newest frame not yet taken, or None."""
        with self._lock:
            frame, self._frame = self._frame, None
        return frame

    def stop(self):
        """Stop reading and release the device, now or as soon as an open under way ends; safe twice."""
        with self._lock:
            self._stopped = True
            source, thread = self._source, self._thread
        if source is not None:
            source.stop()  # a reconnection under way gives up at once
        if thread is not None:
            thread.join(timeout=STOP_WAIT)
