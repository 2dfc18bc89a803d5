"""Requests/s and latency of ``POST /api/predict`` under the production command.

    python bench/bench_web.py [--model models/emotion_model.h5] [--clients 8] [--requests 400]
                              [--detail fast --detail live-layer --detail thorough] [--live-layer NAME]

Starts ``gunicorn -w 2 --threads 4`` on a free loopback port (the README's classroom
command, with gunicorn.conf.py), waits for ``/healthz``, then 8 client threads each keep
one connection open and post a 640x480 JPEG with one face (scikit-image's astronaut on a
grey canvas) until the requests are used up. It does this the two ways the site asks:
"fast", as the Live page sends each webcam frame (the JPEG as the raw body,
``?detail=fast``), then "thorough", as the Analyse page uploads a photo (multipart, the
default face search). "live-layer" is the Live page with a layer chosen: every second
frame also asks for that layer's maps (``&layer=NAME``, the first layer the page offers
unless ``--live-layer`` names one), so its frames/s against "fast" is what choosing a
layer costs. Prints requests/s and p50/p95/p99 latency for each, then stops the server.
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
from conftest import free_ports  # noqa: E402 (the tests' own)

SIZE = (640, 480)
LAYER_EVERY = 2   # as static/pages/live.js asks: the chosen layer's maps with every 2nd frame


def one_face_jpeg():
    """The astronaut's head and shoulders (face about 130 px) on a grey 640x480 canvas, as JPEG.

    This crop leaves out the patch of her suit where the Haar cascade sees a second "face".
    """
    from skimage import data
    canvas = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    head = np.ascontiguousarray(data.astronaut()[0:360, 60:420, ::-1])
    photo = cv2.resize(head, (SIZE[1], SIZE[1]))
    left = (SIZE[0] - SIZE[1]) // 2
    canvas[:, left:left + SIZE[1]] = photo
    return cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def multipart(jpeg):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"frame.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def start_server(port, model, workers, threads):
    """The production command, with the model given to the factory as a literal."""
    factory = f"app:create_app({{'DEFAULT_MODEL': {os.path.abspath(model)!r}}})"
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads),
               "-b", f"127.0.0.1:{port}", "--log-level", "warning", factory]
    print("server:", " ".join(command[1:]))
    return subprocess.Popen(command, cwd=ROOT)


def wait_healthy(port, server, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench_web.py: the server exited with status {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("bench_web.py: the server did not answer /healthz in time")


def cpu_seconds(server):
    """CPU time used so far by the server's worker processes (Linux /proc), or None elsewhere.

    Divided by the requests served it is the cost of one request, which holds even when
    other programs share the CPU and stretch the latencies.
    """
    try:
        with open(f"/proc/{server.pid}/task/{server.pid}/children") as handle:
            workers = handle.read().split()
        total = 0
        for pid in workers:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        return total / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def live_layers(port):
    """The layers the Live page's chooser offers, read from the page itself."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/live")
    page = connection.getresponse().read().decode()
    chooser = page[page.index('id="live-layer"'):]
    return re.findall(r'<option value="([^"]+)">', chooser[:chooser.index("</select>")])


def drive(port, paths, body, content_type, clients, total, warmup, server):
    """``clients`` threads share ``total`` requests, request ``i`` going to ``paths[i % len(paths)]``;
    returns (latencies in s, errors, wall time, CPU s)."""
    latencies, errors, lock = [], [], threading.Lock()
    remaining = iter(range(total))

    def client():
        connection = None
        headers = {"Content-Type": content_type}

        def post(path):
            """One request on this client's keep-alive connection, reopened when the server closed it."""
            nonlocal connection
            for attempt in (1, 2):
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    connection.request("POST", path, body, headers)
                    response = connection.getresponse()
                    return response.status, response.read()
                except (ConnectionError, http.client.RemoteDisconnected):
                    connection.close()
                    connection = None
                    if attempt == 2:
                        raise

        for index in range(warmup):
            post(paths[index % len(paths)])
        start_line.wait()
        while True:
            with lock:
                index = next(remaining, None)
            if index is None:
                return
            started = time.perf_counter()
            status, answer = post(paths[index % len(paths)])
            elapsed = time.perf_counter() - started
            ok = status == 200 and len(json.loads(answer)["faces"]) == 1
            with lock:
                (latencies if ok else errors).append(elapsed if ok else status)

    start_line = threading.Barrier(clients + 1)
    workers = [threading.Thread(target=client) for _ in range(clients)]
    for worker in workers:
        worker.start()
    start_line.wait()
    began, cpu_before = time.perf_counter(), cpu_seconds(server)
    for worker in workers:
        worker.join()
    cpu_after = cpu_seconds(server)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return np.array(latencies), errors, time.perf_counter() - began, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "emotion_model.h5"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=3, help="requests per client before timing")
    parser.add_argument("--detail", action="append", choices=("fast", "live-layer", "thorough"),
                        help="what to measure; repeat for several (default: fast, live-layer, then thorough)")
    parser.add_argument("--live-layer", help="the layer live-layer asks for (default: the first the Live page offers)")
    args = parser.parse_args()
    details = args.detail or ["fast", "live-layer", "thorough"]
    if not os.path.isfile(args.model):
        print(f"bench_web.py: no model at {args.model}", file=sys.stderr)
        return 2

    jpeg = one_face_jpeg()
    port = free_ports(1)[0]
    server = start_server(port, args.model, args.workers, args.threads)
    results = {}
    try:
        wait_healthy(port, server)
        layer = args.live_layer or live_layers(port)[0]
        live = "/api/predict?detail=fast"
        requests = {"fast": ([live], jpeg, "image/jpeg"),
                    "live-layer": ([f"{live}&layer={layer}"] + [live] * (LAYER_EVERY - 1), jpeg, "image/jpeg"),
                    "thorough": (["/api/predict"], *multipart(jpeg))}
        print(f"live-layer: the maps of {layer} with 1 frame in {LAYER_EVERY}")
        for detail in details:
            paths, body, content_type = requests[detail]
            results[detail] = drive(port, paths, body, content_type, args.clients, args.requests, args.warmup,
                                    server)
    finally:
        server.terminate()
        server.wait(timeout=30)
    for detail, (latencies, errors, wall, cpu) in results.items():
        print(f"detail={detail}:")
        if not len(latencies):
            print(f"bench_web.py: every request failed (statuses {sorted(set(map(str, errors)))})", file=sys.stderr)
            return 1
        p50, p95, p99 = np.percentile(latencies * 1000, [50, 95, 99])
        print(f"  {len(latencies)} requests from {args.clients} clients in {wall:.1f} s, {len(errors)} errors")
        print(f"  requests/s {len(latencies) / wall:.1f}   p50 {p50:.0f} ms   p95 {p95:.0f} ms   p99 {p99:.0f} ms")
        if cpu is not None:
            per_request = cpu / len(latencies)
            print(f"  server CPU per request {per_request * 1000:.0f} ms "
                  f"(so at most {os.cpu_count() / per_request:.0f} requests/s on {os.cpu_count()} idle cores)")
    if "fast" in results and "live-layer" in results:
        rates = {detail: len(results[detail][0]) / results[detail][2] for detail in ("fast", "live-layer")}
        print(f"Live frames/s without a layer {rates['fast']:.1f}, with {rates['live-layer']:.1f}: "
              f"{rates['live-layer'] / rates['fast'] - 1:+.0%} (budget: within -20%)")
        cpu = {detail: results[detail][3] / len(results[detail][0]) for detail in rates if results[detail][3]}
        if len(cpu) == 2:   # what the cores could serve, whatever else shares them
            print(f"  server CPU per frame {cpu['fast'] * 1000:.0f} ms without, {cpu['live-layer'] * 1000:.0f} ms with: "
                  f"{cpu['fast'] / cpu['live-layer'] - 1:+.0%} frames/s on idle cores")
    print(f"cores: {os.cpu_count()}, load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
