"""How far each model's bfloat16 path lies from its float32 path on real faces: the tolerance the tests hold
bfloat16 to, pinned per model file in tests/bfloat16_tolerances.json.

    python scripts/measure_bfloat16.py                  # print the figures for every models/NAME.h5
    python scripts/measure_bfloat16.py --write          # and pin them (the tests fail for a model without)

Every face of FER2013's test split (dataset/fer2013/test: 3,589 faces), as each model takes it, through the
served path (the mirror average and the card's calibration included), once in float32 and once in bfloat16.
bfloat16 runs twice, each in a process of its own: on TensorFlow's oneDNN kernels (what a CPU with
AVX512-BF16 or AMX runs) and on its Eigen kernels (TF_ENABLE_ONEDNN_OPTS=0: what an AVX2-only CPU runs).
The tolerance pinned is MARGIN times the largest difference in a probability that either gave. A model
file that changes (its SHA-256) must be measured again: the tests say so.
"""
import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils import defaults  # noqa: E402
from utils.files import file_sha256, write_json  # noqa: E402

TABLE = os.path.join(ROOT, "tests", "bfloat16_tolerances.json")
MARGIN = 2.0
KERNELS = {"oneDNN": "1", "Eigen": "0"}   # name -> TF_ENABLE_ONEDNN_OPTS


def rounded_up(value, digits=2):
    """``value`` rounded up to ``digits`` significant digits: 0.003012 -> 0.0031."""
    unit = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return round(math.ceil(value / unit) * unit, 12)


def face_paths(folder):
    from utils.media.decode import IMAGE_SUFFIXES
    return sorted(os.path.join(where, name) for where, _, names in os.walk(folder)
                  for name in names if name.lower().endswith(IMAGE_SUFFIXES))


def largest_difference(model_path, faces_folder):
    """The largest difference in a probability between the model's bfloat16 and float32 paths, over the faces."""
    import numpy as np

    from utils.media.decode import read_image
    from utils.model.predict import Predictor
    from utils.model.store import load_model
    model, card = load_model(model_path)
    exact, fast = Predictor(model, card, "float32"), Predictor(model, card, "bfloat16")
    batch = np.stack([exact.preprocess(read_image(path)) for path in face_paths(faces_folder)])
    worst = 0.0
    for start in range(0, len(batch), 256):
        part = batch[start:start + 256]
        worst = max(worst, float(np.abs(fast.probabilities(part) - exact.probabilities(part)).max()))
    return worst


def measure(model_path, faces_folder):
    """``{kernels: largest difference}``, each measured in a child process with its TF_ENABLE_ONEDNN_OPTS."""
    found = {}
    for kernels, setting in KERNELS.items():
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", model_path, "--faces", faces_folder],
                               env=dict(os.environ, TF_ENABLE_ONEDNN_OPTS=setting), capture_output=True, text=True)
        if child.returncode != 0:
            raise ValueError(f"measuring {model_path} on {kernels}'s kernels failed: "
                             + (child.stderr.strip().splitlines() or ["no message"])[-1])
        found[kernels] = float(child.stdout.split()[-1])
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=defaults.project_path(defaults.MODELS_DIR),
                        help="every NAME.h5 here is measured (default: %(default)s)")
    parser.add_argument("--faces", default=defaults.project_path(defaults.FER2013_TEST),
                        help="a folder of face images, searched through (default: %(default)s)")
    parser.add_argument("--write", action="store_true", help=f"pin the figures in {os.path.relpath(TABLE, ROOT)}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(largest_difference(args.child, args.faces))
        return 0
    faces = face_paths(args.faces) if os.path.isdir(args.faces) else []
    if not faces:
        raise FileNotFoundError(f"no face images in {args.faces} (make data FER2013=..., or pass --faces FOLDER)")
    table = {}
    if os.path.isfile(TABLE):
        with open(TABLE) as handle:
            table = json.load(handle)
    for model_path in sorted(os.path.join(args.models, name) for name in os.listdir(args.models) if name.endswith(".h5")):
        name = defaults.model_name(model_path)
        found = measure(model_path, args.faces)
        tolerance = rounded_up(MARGIN * max(found.values()))
        print(f"{name}: largest difference " + ", ".join(f"{kernels} {value:.2e}" for kernels, value in found.items())
              + f"; tolerance {tolerance:.1e}")
        table[name] = {"sha256": file_sha256(model_path), "faces": f"{len(faces)} faces of {os.path.relpath(args.faces, ROOT)}",
                       "largest_difference": found, "margin": MARGIN, "tolerance": tolerance}
    if args.write:
        write_json(TABLE, dict(sorted(table.items())), indent=2)
        print(f"pinned in {os.path.relpath(TABLE, ROOT)}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
