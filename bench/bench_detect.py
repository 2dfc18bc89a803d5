"""BlazeFace beside the Haar cascade: cost per frame, false faces, recall by face size and by tilt, and a class photo.

    python bench/bench_detect.py [--yale dataset/people]

False faces: the thorough search on 87 pictures without a person (scikit-image's textures,
scenery, animals, astronomy, drawings and text, each as it is, blurred, turned and enlarged to
3000x2000; window blinds and blurred noise), counted per detector; then every candidate
BlazeFace proposes (score 0.5 and up) on those pictures and on the pictures with faces below,
with its second-look score (``utils.faces.blazeface.second_look``): the lowest a real face gets, the
highest a false one gets. A portrait on a blurred background checks that face 1 is the face.

Cost: CPU milliseconds per search of a 640x480 frame (the astronaut), one thread,
"fast" (video) and "thorough" (photos). Recall: each Yale photo (one face each;
``make data PEOPLE=/path/to/yalefaces`` puts them in dataset/people) is shrunk so its face is
24-200 px wide and pasted at a random place on a grey 640x480 frame (thorough search),
then, at 100 px, turned 0-45 degrees about its face. A face counts as found when a
found box's centre lies within half a face of the true centre and its width is within
a factor of two. Class photos: 30 Yale heads (faces 100 and 160 px) in a 6x5 grid on
1800x1200, 2400x1600 and 3000x2000 backgrounds; found / 30, with the search's time and
any extra boxes. The true face boxes come from the Haar cascade at full resolution with
fine steps on the original photo (it finds every Yale face there).
"""
import argparse
import glob
import os
import sys
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
from bench.bench_web import one_face_jpeg  # noqa: E402
from conftest import class_photo  # noqa: E402 (the tests' generated class photo)
from utils.defaults import IDENTITY_DATA  # noqa: E402
from utils.faces import blazeface, detect, haar  # noqa: E402
from utils.media.colour import to_rgb  # noqa: E402

# scikit-image's pictures without a person (all ship with the package: no download).
NO_PERSON = ("brick", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
             "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina",
             "rocket", "text")

FRAME = (480, 640)
FACE_WIDTHS = (24, 32, 40, 50, 75, 100, 140, 200)
TILTS = (0, 15, 25, 35, 45)
CLASS_PHOTOS = ((1800, 1200), (2400, 1600), (3000, 2000))
CLASS_FACES = (100, 160)


def yale_faces(folder):
    """``[(photo, (x, y, w, h))]``: every Yale photo with its face box."""
    photos = []
    for path in sorted(glob.glob(os.path.join(folder, "*", "*.png"))):
        photo = cv2.imread(path)
        found = haar.haar_faces(photo, max_side=max(photo.shape), min_fraction=60 / min(photo.shape[:2]),
                                scale_step=1.05)
        if found:
            photos.append((photo, found[0].box))
    return photos


def found(faces, centre, width):
    return any(abs(fx + fw / 2 - centre[0]) < width / 2 and abs(fy + fh / 2 - centre[1]) < width / 2
               and 0.5 < fw / width < 2 for fx, fy, fw, fh in (face.box for face in faces))


def pasted(photo, box, width, rng, degrees=0):
    """``(frame, face centre)``: the photo scaled so its face is ``width`` px, turned, on a grey frame."""
    x, y, w, h = box
    scale = width / w
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)[:FRAME[0], :FRAME[1]]
    centre = ((x + w / 2) * scale, (y + h / 2) * scale)
    if degrees:
        small = cv2.warpAffine(small, cv2.getRotationMatrix2D(centre, degrees, 1.0), small.shape[1::-1],
                               borderMode=cv2.BORDER_REPLICATE)
    frame = np.full((*FRAME, 3), 128, np.uint8)
    top = int(rng.integers(0, FRAME[0] - small.shape[0] + 1))
    left = int(rng.integers(0, FRAME[1] - small.shape[1] + 1))
    frame[top:top + small.shape[0], left:left + small.shape[1]] = small
    return frame, (left + centre[0], top + centre[1])


def recall(photos, detector, width, degrees=0, seed=0):
    rng = np.random.default_rng(seed)
    hits = []
    for photo, box in photos:
        frame, centre = pasted(photo, box, width, rng, degrees)
        hits.append(found(detect.find_faces(frame, "thorough", detector), centre, width))
    return float(np.mean(hits))


def class_photo_centres(photos, face_width, size):
    """30 heads in a 6x5 grid (tests/conftest.py's class photo): ``(photo, face centres)``."""
    photo, boxes = class_photo(photos, face_width, size)
    return photo, [(x + w / 2, y + h / 2) for x, y, w, h in boxes]


def bgr(picture):
    """A scikit-image picture (RGB, RGBA, gray or boolean) as OpenCV BGR or gray uint8."""
    picture = np.asarray(picture)
    if picture.dtype == bool:
        picture = picture.astype(np.uint8) * 255
    if picture.ndim == 3:
        return np.ascontiguousarray(picture[:, :, 2::-1])
    return picture


def without_a_person():
    """``(name, picture)``: the pictures the false faces are counted on."""
    from skimage import data
    for name in NO_PERSON:
        picture = bgr(getattr(data, name)())
        yield name, picture
        yield f"{name} blurred", cv2.GaussianBlur(picture, (0, 0), 8)
        yield f"{name} turned", np.ascontiguousarray(np.rot90(picture))
        yield f"{name} 3000x2000", cv2.resize(picture, (3000, 2000))
    for period in (12, 24, 48, 96):
        blinds = np.tile(((np.arange(1200) // period) % 2 * 120 + 60).astype(np.uint8)[:, None], (1, 1600))
        yield f"blinds every {period} px", blinds
        yield f"blinds every {period} px, blurred", cv2.GaussianBlur(blinds, (0, 0), period / 3)
    rng = np.random.default_rng(0)
    for sigma in (2, 8, 32):
        yield f"noise blurred by {sigma}", cv2.GaussianBlur(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8),
                                                            (0, 0), sigma)


def blurred_portrait():
    """``(picture, face centre, face width)``: the astronaut's head on a blurred photo of a rocket, where the
    plain search also proposes a large false face in the blurred background."""
    from skimage import data
    astronaut = bgr(data.astronaut())
    picture = cv2.GaussianBlur(cv2.resize(cv2.GaussianBlur(bgr(data.rocket()), (0, 0), 8), (640, 480)), (0, 0), 6)
    picture[200:440, 400:610] = astronaut[20:260, 120:330]
    return picture, (400 + 176 - 120 + 48, 200 + 66 - 20 + 48), 96


def candidates(picture):
    """Every candidate BlazeFace proposes in a thorough search, before the second look, with its second-look score."""
    source = to_rgb(picture)
    height, width = source.shape[:2]
    levels = [(blazeface.SHORT_RANGE, max(width, height))] + [(blazeface.FULL_RANGE, side)
                                                               for side in blazeface.search_sides(width, height)]
    return [(face, blazeface.second_look(source, face.box)) for face in blazeface.search_levels(source, levels)]


def false_faces(pictures):
    """``{detector: [(name, faces)]}`` for the pictures where a detector finds any face."""
    return {detector: [(name, found) for name, picture in pictures
                       if (found := detect.find_faces(picture, "thorough", detector))]
            for detector in detect.DETECTORS}


def cpu_ms(search, frame, repeats=20):
    search(frame)
    start = time.process_time()
    for _ in range(repeats):
        search(frame)
    return (time.process_time() - start) / repeats * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yale", default=IDENTITY_DATA, help="the Yale faces folder (one folder per person)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    frame = cv2.resize(cv2.imdecode(np.frombuffer(one_face_jpeg(), np.uint8), cv2.IMREAD_COLOR), FRAME[::-1])
    print("CPU ms per 640x480 frame, one thread")
    for detector in detect.DETECTORS:
        costs = ", ".join(f"{detail} {cpu_ms(lambda image: detect.find_faces(image, detail, detector), frame):.1f}"
                          for detail in detect.DETAILS)
        print(f"  {detector:<10} {costs}")
    pictures = list(without_a_person())
    print(f"\nfalse faces on {len(pictures)} pictures without a person (thorough search)")
    for detector, fooled in false_faces(pictures).items():
        print(f"  {detector:<10} {sum(len(faces) for _, faces in fooled)} on {len(fooled)} pictures"
              + "".join(f"\n    {name}: " + ", ".join(f"{face.score:.2f}" for face in faces) for name, faces in fooled))
    proposed = [score for _, picture in pictures for _, score in candidates(picture)]
    print(f"  BlazeFace's candidates there: {len(proposed)}; second look {min(proposed, default=0):.2f}-"
          f"{max(proposed, default=0):.2f}, accepted at {blazeface.ACCEPT_SCORE}: "
          f"{sum(score >= blazeface.ACCEPT_SCORE for score in proposed)}")
    portrait, centre, face_width = blurred_portrait()
    plain = candidates(portrait)
    faces = detect.find_faces(portrait)
    print(f"  portrait on a blurred background: {len(plain)} candidates (second looks "
          + ", ".join(f"{score:.2f}" for _, score in plain) + f"), {len(faces)} face(s); face 1 is the face: "
          f"{bool(faces) and found(faces[:1], centre, face_width)}")
    photos = yale_faces(args.yale) if os.path.isdir(args.yale) else []
    if not photos:
        print(f"no Yale faces at {args.yale} (make data PEOPLE=...): no recall figures")
        return 0
    print(f"\nrecall by face width, {len(photos)} Yale photos on 640x480 (thorough search)")
    print("  " + " " * 10 + "".join(f"{f'{width} px':>8}" for width in FACE_WIDTHS))
    for detector in detect.DETECTORS:
        print(f"  {detector:<10}" + "".join(f"{recall(photos, detector, width):>8.2f}" for width in FACE_WIDTHS))
    print("\nrecall by tilt, faces 100 px wide")
    print("  " + " " * 10 + "".join(f"{f'{tilt} deg':>8}" for tilt in TILTS))
    for detector in detect.DETECTORS:
        print(f"  {detector:<10}" + "".join(f"{recall(photos, detector, 100, tilt):>8.2f}" for tilt in TILTS))
    print("\nsecond look of the candidates that are real faces (class photos, tilts, 40-100 px)")
    looks = []
    rng = np.random.default_rng(0)
    for width, degrees in [(100, tilt) for tilt in TILTS] + [(40, 0), (50, 0), (75, 0)]:
        for photo, box in photos:
            frame, centre = pasted(photo, box, width, rng, degrees)
            looks += [score for face, score in candidates(frame) if found([face], centre, width)]
    for size in CLASS_PHOTOS:
        for face_width in CLASS_FACES:
            photo, centres = class_photo_centres(photos, face_width, size)
            looks += [score for face, score in candidates(photo) if any(found([face], c, face_width) for c in centres)]
    looks = np.array(looks)
    print(f"  {len(looks)} faces: lowest {looks.min():.2f}, 1st percentile {np.percentile(looks, 1):.2f}, "
          f"under {blazeface.ACCEPT_SCORE}: {int((looks < blazeface.ACCEPT_SCORE).sum())}, "
          f"under {detect.SURE_SCORE} (not sure): {int((looks < detect.SURE_SCORE).sum())}")
    print("\nclass photo, 30 faces: found (extra boxes), seconds of the thorough search")
    for detector in detect.DETECTORS:
        cells = []
        for size in CLASS_PHOTOS:
            for face_width in CLASS_FACES:
                photo, centres = class_photo_centres(photos, face_width, size)
                start = time.perf_counter()
                faces = detect.find_faces(photo, "thorough", detector)
                seconds = time.perf_counter() - start
                hits = sum(found(faces, centre, face_width) for centre in centres)
                cells.append(f"{size[0]}x{size[1]} {face_width}px: {hits}/30 (+{len(faces) - hits}) {seconds:.2f}s")
        print(f"  {detector:<10} " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
