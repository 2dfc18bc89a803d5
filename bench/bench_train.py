"""How fast train.py's model trains here, per architecture and Keras backend: images per second.

Measure this before choosing a training plan: which backend is
fastest depends on the CPU (AVX512-BF16 machines favour TensorFlow with
``mixed_bfloat16``; AVX2-only machines have no fast bfloat16). Each backend runs in a
fresh process (Keras picks its backend at import), on synthetic 48x48 faces through
train.py's own batches (augmentation included), model and optimiser; a backend that is
not installed is reported as such. The first batches (compilation) are not timed.

    python bench/bench_train.py [--arch vgg --arch baseline] [--backend tensorflow --backend torch]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "torch", "jax")
FACES = 2048
FER2013_TRAIN_FACES = 25837   # train/ less its 10% validation part: one epoch of train.py


def measure(arch, precision, batch_size, steps):
    """Train ``arch`` on synthetic faces in this process; images/s over ``steps`` timed batches."""
    sys.path.insert(0, ROOT)
    from utils import quiet
    quiet.install()   # this child process's entry point: before anything imports TensorFlow
    from utils.model import architectures
    from utils.train import datasets
    from utils.train.batches import AugmentedBatches
    from utils.train import fit

    import keras
    import numpy as np
    chosen = fit.choose_precision(precision)
    keras.config.set_dtype_policy(chosen)
    rng = np.random.default_rng(0)
    faces = datasets.Split(rng.random((FACES, 48, 48, 1), dtype=np.float32), rng.integers(0, 7, FACES))
    batches = AugmentedBatches(faces, 7, batch_size, seed=0)
    model = architectures.build_model(arch, (48, 48, 1), 7)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    warmup = 3
    for index in range(warmup):
        model.train_on_batch(*batches[index])
    start = time.perf_counter()
    for index in range(steps):
        model.train_on_batch(*batches[(warmup + index) % len(batches)])
    return {"images_per_s": steps * batch_size / (time.perf_counter() - start), "precision": chosen}


def run_backend(backend, arch, args):
    """``measure`` in a child process with ``KERAS_BACKEND=backend``: (figures, None) or (None, why not)."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    command = [sys.executable, os.path.abspath(__file__), "--child", arch, "--precision", args.precision,
               "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return None, last_line
    return json.loads(result.stdout.strip().splitlines()[-1]), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", help="repeat to compare (default: vgg and baseline)")
    parser.add_argument("--backend", action="append", choices=BACKENDS, help="repeat (default: all three)")
    parser.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16"), default="auto",
                        help="as train.py's --precision (auto: bfloat16 where the CPU has it natively)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed batches per measurement")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.precision, args.batch_size, args.steps)))
        return
    print(f"{'arch':<10} {'backend':<11} {'precision':<15} {'images/s':>9}  {'s/epoch (FER2013 train)':>24}")
    for arch in args.arch or ("vgg", "baseline"):
        for backend in args.backend or BACKENDS:
            figures, error = run_backend(backend, arch, args)
            if figures is None:
                print(f"{arch:<10} {backend:<11} not measured: {error[:80]}")
                continue
            rate = figures["images_per_s"]
            print(f"{arch:<10} {backend:<11} {figures['precision']:<15} {rate:>9.0f}  {FER2013_TRAIN_FACES / rate:>24.0f}")


if __name__ == "__main__":
    main()
