"""How fast train.py trains on several replicas beside one process: seconds an epoch, images/s, speed-up.

On a machine with GPUs it compares one process on one GPU with ``--distribute mirrored`` on all of
them. Without GPUs it compares one process with ``--workers`` processes on this machine
(``--distribute multi-worker`` on 127.0.0.1): they share its CPU cores, so this proves that the
machinery works and what it costs, not a speed-up. Every run trains the same model on the same data
with the same global batch (``--batch-size``); the figures are the last epoch's (the first one
compiles), read from Keras' progress line, and the whole command's wall time.

    python bench/bench_distributed.py [--data dataset/fer2013] [--arch vgg] [--epochs 2] [--batch-size 256]

Without ``--data`` it trains on synthetic 48x48 faces (``--faces`` of them, seven classes).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
from conftest import free_ports  # noqa: E402  (the tests' own; no TensorFlow: the workers are other processes)
# Keras' line at the end of an epoch (verbose 2): "40/40 - 12s - 301ms/step - accuracy: ..."
EPOCH_LINE = re.compile(r"^(\d+)/\1 - (\d+)s - (\d+(?:\.\d+)?)(us|ms|s)/step")
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def synthetic_faces(folder, count, classes=7, seed=0):
    """``count`` random faces in ``classes`` class folders under ``folder``/train/ (and a few in test/)."""
    rng = np.random.default_rng(seed)
    for split, number in (("train", count), ("test", classes * 2)):
        for index in range(number):
            label = index % classes
            os.makedirs(os.path.join(folder, split, f"class{label}"), exist_ok=True)
            face = np.clip(rng.normal(40 + 25 * label, 30, (48, 48)), 0, 255).astype(np.uint8)
            cv2.imwrite(os.path.join(folder, split, f"class{label}", f"{index}.png"), face)
    return folder


def gpu_count():
    """GPUs TensorFlow sees here (0 with the CPU build), asked in a child process."""
    result = subprocess.run([sys.executable, "-c", "import tensorflow as tf; "
                             "print(len(tf.config.list_physical_devices('GPU')))"],
                            capture_output=True, text=True)
    return int(result.stdout.strip().splitlines()[-1]) if result.returncode == 0 else 0


def train(folder, train_args, extra_env=None, workers=0):
    """train.py once (with ``workers``: as that many local workers): its last epoch's seconds and seconds a
    step, the whole run's wall time, and the card."""
    command = [sys.executable, os.path.join(ROOT, "train.py"), *train_args, "--out", "models/bench.h5"]
    env = dict(os.environ, PYTHONPATH=ROOT, **(extra_env or {}))
    commands = [command]
    if workers:
        addresses = ",".join(f"127.0.0.1:{port}" for port in free_ports(workers))
        commands = [command + ["--distribute", "multi-worker", "--workers", addresses, "--worker-index", str(index)]
                    for index in range(workers)]
    began = time.perf_counter()
    # Into files, not pipes: a worker whose pipe filled while another was being read would stall them all.
    logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
    processes = [subprocess.Popen(each, cwd=folder, env=env, stdout=out, stderr=err, text=True)
                 for each, (out, err) in zip(commands, logs)]
    for process in processes:
        process.wait()
    wall = time.perf_counter() - began
    outputs = []
    for out, err in logs:
        out.seek(0), err.seek(0)
        outputs.append((out.read(), err.read()))
        out.close(), err.close()
    for index, process in enumerate(processes):
        if process.returncode:
            last = (outputs[index][1].strip().splitlines() or ["no message"])[-1]
            raise SystemExit(f"train.py failed (worker {index}): {last}" if workers else f"train.py failed: {last}")
    epochs = [match for match in map(EPOCH_LINE.match, outputs[0][0].splitlines()) if match]
    steps, seconds, per_step, unit = epochs[-1].groups()
    with open(os.path.join(folder, "models", "bench.json")) as handle:
        card = json.load(handle)
    return {"epoch_s": float(seconds), "step_s": float(per_step) * UNITS[unit], "wall_s": wall, "card": card}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a data set train.py reads (default: synthetic faces)")
    parser.add_argument("--faces", type=int, default=2048, help="synthetic training faces (without --data)")
    parser.add_argument("--arch", default="vgg")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch, the same in every run")
    parser.add_argument("--workers", type=int, default=2, help="local workers, on a machine without GPUs")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        data = args.data and os.path.abspath(args.data) or synthetic_faces(os.path.join(folder, "faces"), args.faces)
        train_args = ["--data", data, "--arch", args.arch, "--epochs", str(args.epochs), "--batch-size",
                      str(args.batch_size), "--precision", args.precision, "--schedule", "cosine"]
        gpus = gpu_count()
        if gpus:
            runs = [("one process, one GPU", train(folder, train_args, {"CUDA_VISIBLE_DEVICES": "0"})),
                    (f"mirrored, {gpus} GPUs", train(folder, train_args + ["--distribute", "mirrored"]))]
        else:
            runs = [("one process", train(folder, train_args)),
                    (f"{args.workers} workers on 127.0.0.1", train(folder, train_args, workers=args.workers))]
    images = runs[0][1]["card"]["training"]["train_images"]
    print(f"{args.arch}, {images} training faces, global batch {args.batch_size}, {args.epochs} epochs, "
          f"{'%d GPUs' % gpus if gpus else '%d CPU cores, no GPU' % os.cpu_count()}")
    print(f"{'run':<26} {'replicas':>8} {'s/epoch':>8} {'s/step':>7} {'images/s':>9} {'speed-up':>8} {'wall s':>7}")
    for name, run in runs:
        replicas = (run["card"]["training"].get("distribution") or {}).get("replicas", 1)
        rate = args.batch_size / run["step_s"]
        print(f"{name:<26} {replicas:>8} {run['epoch_s']:>8.0f} {run['step_s']:>7.3f} {rate:>9.0f} "
              f"{runs[0][1]['step_s'] / run['step_s']:>8.2f} {run['wall_s']:>7.0f}")


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
