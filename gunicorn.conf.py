"""Gunicorn settings for the classroom server, read automatically by ``gunicorn 'app:create_app()'``.

Two worker processes with four threads each serve eight browsers at once on a
2-core machine. Each request already has a core to itself when the server is busy,
so TensorFlow and OpenCV are told to compute on one thread per request: their
default thread pools only make concurrent requests fight over the same two cores
(measured: bench/bench_web.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from utils import quiet  # noqa: E402
from utils.defaults import HOST, PORT  # noqa: E402  (the project's own address, as app.py's)

quiet.install()   # the gunicorn entry point's, as run_cli is the tools': inherited by the workers

workers = int(os.environ.get("WEB_WORKERS", 2))
threads = int(os.environ.get("WEB_THREADS", 4))
# HOST and PORT from the environment (make run HOST=... PORT=... passes them), each unset one the project's own.
bind = f"{os.environ.get('HOST') or HOST}:{os.environ.get('PORT') or PORT}"

# Read by TensorFlow when a worker imports it, so they must be set before the app loads.
for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(name, "1")


def post_fork(server, worker):
    """OpenCV's face detection on one thread per request, like TensorFlow above."""
    import cv2
    cv2.setNumThreads(1)
