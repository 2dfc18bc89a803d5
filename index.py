"""The desktop window: open a picture or start the webcam, and see how the CNN reads each face.

    python index.py [--model models/emotion_model.h5]

For a student without a browser or a teacher at a projector. The window is
:mod:`desktop.window`; everything it shows comes from ``utils/`` through
:mod:`desktop.session`.
"""
import argparse
import os

from utils.cli import fail, run_cli
from utils.defaults import EMOTION_MODEL, IDENTITY_MODEL, project_path
from utils.faces.detect import check_detector, DEFAULT_DETECTOR, DETECTORS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=project_path(EMOTION_MODEL),
                        help="a model with its card beside it; the chooser also lists the others in its folder")
    parser.add_argument("--identity-model", default=project_path(IDENTITY_MODEL),
                        help="the identity model the Identity tab compares with and training writes (default: %(default)s)")
    parser.add_argument("--detector", choices=DETECTORS, default=None,
                        help=f"how faces are found (default {DEFAULT_DETECTOR}; haar is the 2001 cascade, for comparison)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"no model at {args.model} (train one with train.py, or pass --model PATH)")
    from utils.model.card import read_card
    read_card(args.model)  # a missing or bad card is a one-line error now, not a dialog later
    detector = check_detector(args.detector)
    try:
        import tkinter

        from desktop.window import Window
        window = Window(args.model, detector=detector, identity_model=args.identity_model)
    except ImportError as error:
        fail(f"Tk is not installed ({error}); on Debian/Ubuntu: sudo apt-get install python3-tk")
    except tkinter.TclError as error:
        fail(f"cannot open a window ({error}); is there a display?")
    window.mainloop()
    return 0


if __name__ == "__main__":
    run_cli(main)
