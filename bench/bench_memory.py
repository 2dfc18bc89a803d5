"""Peak memory of decoding one upload (``utils.media.decode.decode_image``), for images that are cheap to send.

    python bench/bench_memory.py                      # this checkout
    python bench/bench_memory.py --code ../old-copy   # another checkout's utils, to compare before and after

The images are built in a temporary folder; each is decoded in a fresh child process,
which prints how much its peak resident memory grew (Linux's ``VmHWM``: what the
system had to give, Pillow's own buffers included; ``ru_maxrss`` would carry the
parent's peak over the child's exec) and tracemalloc's peak (Python and NumPy
allocations only). A web worker holds four such requests at once (gunicorn.conf.py).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = """
import json, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
from utils.media.decode import decode_image, ImageError

def peak_rss_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

with open(sys.argv[2], "rb") as handle:
    data = handle.read()
before = peak_rss_kb()
tracemalloc.start()
try:
    image = decode_image(data)
    outcome = f"decoded {image.shape[1]}x{image.shape[0]} {image.dtype}"
except ImageError as error:
    outcome = f"refused: {error}"
traced = tracemalloc.get_traced_memory()[1]
grown = peak_rss_kb() - before
print(json.dumps({"outcome": outcome, "rss_mb": grown / 1024, "traced_mb": traced / 2**20}))
"""


def make_images(folder):
    """``[(description, path)]``: the review's 16-bit PNG, 16-bit gray at the limit, a big colour PNG that
    is cheap to send, a big colour JPEG."""
    import numpy as np
    from PIL import Image
    images = []

    def save(description, image, name, **options):
        path = os.path.join(folder, name)
        image.save(path, **options)
        images.append((f"{description}, {os.path.getsize(path) / 1000:,.0f} KB", path))

    save("16-bit gray PNG 6000x6600 (40 MP)", Image.fromarray(np.full((6600, 6000), 1000, np.uint16)), "bomb.png")
    gradient = (np.arange(5000, dtype=np.uint16) * 13)[None, :].repeat(5000, axis=0)
    save("16-bit gray PNG 5000x5000 (25 MP)", Image.fromarray(gradient), "wide.png")
    flat = np.zeros((4000, 6000, 3), np.uint8)
    flat[:, :3000] = (200, 40, 10)
    flat[::50] = 90
    save("colour PNG 6000x4000 (24 MP), flat colours", Image.fromarray(flat), "flat.png")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (250, 375, 3), dtype=np.uint8)
    photo = Image.fromarray(noise).resize((6000, 4000), Image.BILINEAR)
    save("colour JPEG 6000x4000 (24 MP)", photo, "photo.jpg", quality=90)
    return images


def measure(code, path):
    result = subprocess.run([sys.executable, "-c", CHILD, code, path], capture_output=True, text=True)
    if result.returncode != 0:
        return {"outcome": "failed: " + (result.stderr.strip().splitlines() or ["?"])[-1], "rss_mb": 0, "traced_mb": 0}
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", default=ROOT, help="the project folder whose utils/ to measure (default: this one)")
    args = parser.parse_args()
    print(f"decode_image from {os.path.abspath(args.code)}")
    with tempfile.TemporaryDirectory() as folder:
        for description, path in make_images(folder):
            figures = measure(args.code, path)
            print(f"{description}: peak RSS +{figures['rss_mb']:,.0f} MB, traced {figures['traced_mb']:,.0f} MB; "
                  f"{figures['outcome']}")


if __name__ == "__main__":
    main()
