"""Webcam or video -> every face boxed with its emotion, live; optionally an annotated video and a timeline.

    python real_time.py                                  # camera 0, in a window; q quits
    python real_time.py --source clip.mp4 --no-display --output annotated.mp4 --csv timeline.csv
    python real_time.py --calibrate --save-readout me.json   # thirty seconds of "Calibrate to me" first
    python real_time.py --readout me.json                    # a read-out saved before

Labels are smoothed over a face's last few analysed frames, faces being followed by
position, so they do not flicker; a face under ``--threshold`` shows as "uncertain".
At the end a table of emotions is printed and, beside the CSV (or the video), two
summary plots are saved: the emotion distribution and the emotions over time.
The frame analysis itself lives in ``utils.live``, shared with the other front ends.

``--calibrate`` starts with the guided sequence (:mod:`utils.live.calibration`): each expression in
turn, a countdown, a few seconds of frames; then the table of the held-back frames, read before and
after, and the faces are read by the personal read-out from then on (``--save-readout`` keeps it).
"""
import argparse
import csv
import os
import sys
import time

import cv2

from utils.cli import fail, run_cli
from utils.defaults import EMOTION_MODEL, project_path, THRESHOLD
from utils.faces.detect import check_detector, DEFAULT_DETECTOR, DETECTORS
from utils.live import drawing, records, sources
from utils.live.calibration import LiveCalibration, READOUT_NOTE, SUGGESTED
from utils.live.tracking import DETECT_EVERY, FpsMeter, SMOOTH_FRAMES, VideoAnalyser

WINDOW = "EmoDetect-Pro (q quits)"
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # 27: Esc
# Video writers by file extension; anything else gets mp4v.
FOURCC = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v"}


def positive(text):
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="0",
                        help="camera index (0, 1, ...), video file or stream URL (rtsp://...); default 0")
    parser.add_argument("--model", default=project_path(EMOTION_MODEL), help="trained model (default: %(default)s)")
    parser.add_argument("--output", help="write the annotated video here (.mp4 or .avi)")
    parser.add_argument("--csv", help="write one row per face per analysed frame here")
    parser.add_argument("--no-display", action="store_true", help="no window (servers, CI)")
    parser.add_argument("--every", type=positive, default=1, metavar="N",
                        help="analyse every Nth frame, showing the last labels in between (default 1)")
    parser.add_argument("--detector", choices=DETECTORS, default=None,
                        help=f"how faces are found (default {DEFAULT_DETECTOR}; haar is the 2001 cascade)")
    parser.add_argument("--detect-every", type=positive, default=None, metavar="N",
                        help="search the whole frame for faces every N analysed frames, tracking in between "
                             "(default: " + ", ".join(f"{n} with {d}" for d, n in DETECT_EVERY.items()) + ")")
    parser.add_argument("--smooth", type=positive, default=SMOOTH_FRAMES, metavar="N",
                        help=f"average a face's labels over its last N analysed frames (default {SMOOTH_FRAMES})")
    parser.add_argument("--threshold", type=float, default=THRESHOLD,
                        help=f"confidence under which a face is 'uncertain' (default {THRESHOLD})")
    parser.add_argument("--calibrate", action="store_true",
                        help="start with 'Calibrate to me': show each expression when asked; the faces are then "
                             "read by a last layer fitted to you")
    parser.add_argument("--expressions", metavar="NAMES",
                        help="with --calibrate: the expressions to show besides neutral, comma-separated "
                             f"(default: {', '.join(SUGGESTED)})")
    parser.add_argument("--save-readout", metavar="FILE", help="with --calibrate: keep the read-out in FILE (JSON)")
    parser.add_argument("--readout", metavar="FILE", help="read the faces with a read-out saved before")
    args = parser.parse_args(argv)
    if (args.expressions or args.save_readout) and not args.calibrate:
        parser.error("--expressions and --save-readout go with --calibrate")
    if args.readout and args.calibrate:
        parser.error("--readout uses a saved read-out, --calibrate makes a new one: choose one")
    if args.save_readout and not writable_file(args.save_readout):
        parser.error(f"--save-readout {args.save_readout}: cannot write a file there (a folder, or no permission); "
                     "it is checked now so that a calibration is not lost at the end")
    return args


class Window:
    """An OpenCV window; without GUI support (opencv-python-headless) it says so once and shows nothing."""

    def __init__(self):
        self.available = True

    def show(self, frame):
        """Show a frame; False once the user pressed q or Esc, or closed the window."""
        if not self.available:
            return True
        try:
            cv2.imshow(WINDOW, frame)
        except cv2.error:
            self.available = False
            print("this OpenCV has no window support (opencv-python-headless): continuing without a window; "
                  "use --no-display, or install opencv-python for one. Ctrl-C stops.", file=sys.stderr)
            return True
        key = cv2.waitKey(1) & 0xFF
        return key not in QUIT_KEYS and cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1

    def close(self):
        if self.available:
            cv2.destroyAllWindows()


class AnnotatedVideo:
    """The annotated frames as a video file, opened at the first frame (which gives the size)."""

    def __init__(self, path, fps):
        self.path, self.fps, self._writer = path, fps, None

    def write(self, frame):
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*FOURCC.get(os.path.splitext(self.path)[1].lower(), "mp4v"))
            self._writer = cv2.VideoWriter(self.path, fourcc, self.fps, (frame.shape[1], frame.shape[0]))
            if not self._writer.isOpened():
                raise ValueError(f"cannot write a video to {self.path} (try .mp4 or .avi)")
        self._writer.write(frame)

    def close(self):
        if self._writer is not None:
            self._writer.release()


class Timeline:
    """Rows of the CSV, written as they come (a long webcam session keeps its data) and kept for the summary."""

    def __init__(self, path, classes):
        self.rows, self._file, self._writer = [], None, None
        if path:
            self._file = open(path, "w", newline="")
            self._writer = csv.DictWriter(self._file, fieldnames=records.timeline_fields(classes))
            self._writer.writeheader()

    def add(self, rows):
        self.rows.extend(rows)
        if self._writer:
            self._writer.writerows(rows)

    def close(self):
        if self._file:
            self._file.close()


def writable_file(path):
    """Whether a file can be written at ``path``: not a folder, and the nearest folder that exists is writable
    (the folders between are made when it is saved)."""
    if os.path.isdir(path):
        return False
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    return os.access(folder, os.W_OK)


def play(source, analyser, timeline, writer, window, calibration=None, save_readout=None):
    """The loop: read, analyse, draw, write, show; until the end, q, Ctrl-C or a lost camera.
    With a :class:`utils.live.calibration.LiveCalibration`, its prompt is drawn until it is done."""
    colours = drawing.label_colours(analyser.classes)
    meter = FpsMeter()
    try:
        while (frame := source.read()) is not None:
            found, analysed = analyser.analyse(frame)
            if analysed:
                timeline.add(records.timeline_rows(source.frame_time, source.frames_read - 1, found))
            drawing.draw_fps(drawing.draw_faces(frame, found, colours), meter.tick())
            if calibration is not None and calibration.running:
                prompt = calibration.after_frame(source.frame_time, analysed)
                if not calibration.running:
                    calibrated(calibration, save_readout)
                drawing.draw_banner(frame, prompt.text(), prompt.progress)
            elif analyser.predictor.readout is not None:
                drawing.draw_banner(frame, READOUT_NOTE)
            if writer:
                writer.write(frame)
            if window and not window.show(frame):
                break
    except KeyboardInterrupt:
        print("stopped (Ctrl-C)", file=sys.stderr)


def calibrated(calibration, save_readout):
    """The calibration's end: its table on the console and its read-out saved when asked, or why it failed."""
    if calibration.error:
        print(f"error: the calibration failed: {calibration.error}; the faces are read as shipped", file=sys.stderr)
        return
    result = calibration.result
    print("\n".join(result.table_lines()))
    if save_readout:
        from utils.model.readout import save_readout as save
        save(save_readout, result.readout)
        print(f"read-out saved to {save_readout} (use it again with --readout {save_readout})")


def summarise(timeline, classes, plots_stem, analyser, elapsed):
    """Print speed and the emotion table; save the two summary plots when files were asked for."""
    from utils.media import charts
    frames = analyser.frames
    print(f"{frames} frames in {elapsed:.1f} s ({frames / max(elapsed, 1e-9):.1f} frames/s), "
          f"{len(timeline.rows)} face rows")
    if frames:
        print("time per frame: " + ", ".join(f"{phase} {1000 * total / frames:.1f} ms"
                                             for phase, total in analyser.seconds.items()))
    if not timeline.rows:
        print("no faces found")
        return
    table = records.summary_table(timeline.rows, classes)
    print(table.to_string())
    if plots_stem:
        figures = {
            "distribution": charts.emotion_distribution(table["faces"].to_dict()),
            "over_time": charts.emotion_timeline(*records.probabilities_over_time(timeline.rows, classes), classes),
        }
        for name, figure in figures.items():
            path = f"{plots_stem}_{name}.png"
            figure.savefig(path, dpi=100, bbox_inches="tight")
            print(f"wrote {path}")


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.model):
        fail(f"no model at {args.model} (train one with train.py, or pass --model)")
    detector = check_detector(args.detector)
    with sources.VideoSource(args.source) as source:
        from utils.model.predict import Predictor  # TensorFlow loads slowly: only once the source is known good
        predictor = Predictor.from_path(args.model)
        calibration = None
        if args.readout:
            from utils.model.readout import load_readout
            predictor = predictor.with_readout(load_readout(args.readout, predictor.card))
            print(f"faces are read by the read-out in {args.readout}")
        analyser = VideoAnalyser(predictor, args.threshold, args.every, args.detect_every, args.smooth,
                                 detector)
        if args.calibrate:
            from utils.live.calibration import expressions_to_show
            chosen = None if args.expressions is None else [name.strip() for name in args.expressions.split(",")]
            calibration = LiveCalibration(analyser, expressions_to_show(predictor.classes, chosen))
        timeline = Timeline(args.csv, predictor.classes)
        writer = AnnotatedVideo(args.output, source.fps) if args.output else None
        window = None if args.no_display else Window()
        start = time.perf_counter()
        try:
            play(source, analyser, timeline, writer, window, calibration, args.save_readout)
        finally:
            elapsed = time.perf_counter() - start
            for sink in (timeline, writer, window):
                if sink:
                    sink.close()
    report = args.csv or args.output
    summarise(timeline, predictor.classes, os.path.splitext(report)[0] if report else None, analyser, elapsed)
    if calibration is not None and calibration.running:
        print(f"error: {source.name} ended before the calibration did ({calibration.sequence.total_seconds:.0f} s "
              "are needed)", file=sys.stderr)
        return 2
    if calibration is not None and calibration.error:
        return 2
    if source.lost:
        print(f"error: {source.name} was lost and did not come back after {source.retries} tries",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run_cli(main)
