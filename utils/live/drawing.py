"""Drawing the live results on a frame: each face's box and caption, and the frame rate."""
import cv2

UNCERTAIN_COLOUR = (160, 160, 160)


def label_colours(classes):
    """BGR (0-255) per class: the colours the summary plots give each class."""
    from utils.media.charts import class_colours
    return {name: tuple(round(255 * c) for c in reversed(rgb)) for name, rgb in class_colours(classes).items()}


def face_caption(face):
    """``#1 happy 83%``, or ``#1 uncertain (sad 31%)`` under the threshold."""
    guess = f"{face['label']} {face['confidence']:.0%}"
    return f"#{face['id']} " + (f"uncertain ({guess})" if face["uncertain"] else guess)


def draw_faces(frame, found, colours):
    """Box and caption every face onto ``frame`` (in place); ``colours`` from :func:`label_colours`."""
    for face in found:
        x, y, w, h = face["box"]
        colour = UNCERTAIN_COLOUR if face["uncertain"] else colours[face["label"]]
        cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
        _caption(frame, face_caption(face), (x, y), colour)
    return frame


def draw_fps(frame, fps):
    _caption(frame, f"{fps:.1f} FPS", (0, 0), (40, 40, 40), below=True)
    return frame


def _caption(frame, text, corner, colour, below=False):
    """White text on a filled ``colour`` band above (or, at the top edge, below) ``corner``."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    x, y = corner
    top = y if below or y < height + baseline + 4 else y - height - baseline - 4
    cv2.rectangle(frame, (x, top), (x + width + 6, top + height + baseline + 4), colour, cv2.FILLED)
    cv2.putText(frame, text, (x + 3, top + height + 2), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
