"""Frames of a face that moves and is lit differently, made from still photos: a stand-in for a video.

    python scripts/moving_face_frames.py --people dataset/yalefaces --out dataset/yale_frames [--frames 12]

For every person's photo of an expression (``person/happy.png`` or ``person/happy/*.png``) it writes
``OUT/person/happy/frame_00.png`` ...: the photo turned a few degrees, nearer and farther, shifted,
lit brighter and darker and from either side, with a camera's noise, each frame a little further
along a slow, smooth movement, as a webcam sees a person hold an expression. What this is not: the
face itself never changes within an expression's frames (the same photo, moved and lit), so the
frames show how a read-out copes with movement and light, not with a new day's smile.
``evaluate.py --personal OUT`` reads them.
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.media.decode import ImageError, read_image  # noqa: E402

FRAMES = 12          # frames written per photo
TURN = 6.0           # degrees the head turns, at most, either way
NEARER = 0.06        # the face comes this much nearer and goes this much farther
SHIFT = 0.04         # and moves this share of the picture's width sideways and up and down
LIGHT = 0.25         # overall light: 1 - LIGHT to 1 + LIGHT
SIDE_LIGHT = 0.3     # one side brighter than the other by up to this share
NOISE = 3.0          # the camera's noise, in grey levels (standard deviation)


def frame(photo, phase, rng):
    """The photo at ``phase`` (0..1) of its movement: turned, scaled and shifted, lit, noised."""
    height, width = photo.shape[:2]
    wave = [np.sin(2 * np.pi * (phase + offset)) for offset in (0.0, 0.25, 0.5, 0.7, 0.85)]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), TURN * wave[0], 1 + NEARER * wave[1])
    matrix[:, 2] += (SHIFT * width * wave[2], SHIFT * width * wave[3] / 2)
    moved = cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    across = np.linspace(-1, 1, width)[None, :]
    light = (1 + LIGHT * wave[4]) * (1 + SIDE_LIGHT * wave[1] * across)
    if moved.ndim == 3:
        light = light[:, :, None]
    lit = moved.astype(np.float64) * light + rng.normal(0, NOISE, moved.shape)
    return np.uint8(np.clip(np.round(lit), 0, 255))


def photos_by_expression(person_folder):
    """``[(expression, path)]``: photos named by expression, and the photos in folders named by one."""
    found = []
    for entry in sorted(os.scandir(person_folder), key=lambda entry: entry.name):
        if entry.is_dir():
            found += [(entry.name, item.path) for item in sorted(os.scandir(entry.path), key=lambda item: item.name)
                      if item.is_file()]
        elif entry.is_file():
            found.append((os.path.splitext(entry.name)[0], entry.path))
    return found


def write_frames(people, out, frames=FRAMES, seed=0, expressions=None):
    """Write every person's frames under ``out``; returns how many were written."""
    rng = np.random.default_rng(seed)
    written = 0
    for person in sorted((entry for entry in os.scandir(people) if entry.is_dir()), key=lambda entry: entry.name):
        for number, (expression, path) in enumerate(photos_by_expression(person.path)):
            if expression not in (expressions or (expression,)):
                continue
            try:
                photo = read_image(path)
            except (ImageError, OSError):
                continue   # not a picture: the folder's README, say
            folder = os.path.join(out, person.name, expression)
            os.makedirs(folder, exist_ok=True)
            start = rng.uniform()
            for index in range(frames):
                phase = start + index / frames
                cv2.imwrite(os.path.join(folder, f"frame_{number:02d}_{index:02d}.png"), frame(photo, phase, rng))
                written += 1
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", required=True, help="one folder per person (the Yale faces' layout, or "
                                                        "person/expression/*.png)")
    parser.add_argument("--out", required=True, help="where the frames go: OUT/person/expression/frame_*.png")
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames per photo (default %(default)s)")
    parser.add_argument("--expressions", default="happy,normal,sad,surprised",
                        help="which photos to move, by name (default: %(default)s, the Yale faces' expressions)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not os.path.isdir(args.people):
        print(f"error: no folder of people at {args.people}", file=sys.stderr)
        return 2
    if args.frames < 1:
        print("error: --frames must be at least 1", file=sys.stderr)
        return 2
    written = write_frames(args.people, args.out, args.frames, args.seed, tuple(args.expressions.split(",")))
    if not written:
        print(f"error: {args.people} has no photos named {args.expressions}", file=sys.stderr)
        return 2
    print(f"{written} frames in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
