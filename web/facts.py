"""The facts the pages' JavaScript shares with Python, gathered here once from where Python defines them.

``templates/base.html`` puts them on ``<body>`` as one JSON attribute, ``data-facts``, and the pages
read them with ``EMO.fact(name)`` (static/shared/common.js): no colour, threshold or rounding is typed
in JavaScript. A static copy of the site (make site) renders the same template, so it has them too.
"""
from utils.defaults import CLASS_PALETTE
from utils.explain.operation_text import DIGITS
from utils.faces.pictures import EYE_LINE_RGB, KEYPOINT_RGB
from utils.live.calibration import NEUTRAL, SUGGESTED, durations


def hex_colour(rgb):
    """``(0, 200, 255)`` -> ``"#00c8ff"``, the form a canvas takes."""
    return "#" + "".join(f"{channel:02x}" for channel in rgb)


def page_facts(threshold, calibration=None):
    """Everything a page's script needs from Python; ``threshold`` is the site's default for "uncertain",
    ``calibration`` the durations of "Calibrate to me" (None: utils.live.calibration's)."""
    return {"palette": list(CLASS_PALETTE),          # one colour per class index, as every figure and video
            "threshold": threshold,                  # under this confidence a face is "uncertain"
            "digits": DIGITS,                        # significant digits a number is shown with
            "keypoint": hex_colour(KEYPOINT_RGB),    # the detector's keypoints, as utils.faces.pictures draws them
            "eye_line": hex_colour(EYE_LINE_RGB),    # the eye line a face is turned upright by
            # Calibrate to me: how long each expression counts down, is held and held back; neutral and the
            # expressions ticked at first (those the model has)
            "calibration": dict(durations(**(calibration or {})), neutral=NEUTRAL, suggested=list(SUGGESTED))}
