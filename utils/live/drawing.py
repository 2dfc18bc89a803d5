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


def draw_banner(frame, text, share=None):
    """A line of text across the bottom of ``frame`` (in place), as large as fits, above a bar filled to
    ``share`` (0..1) when given: the calibration's prompt, or which last layer reads the faces."""
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 2
    (width, _), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = min(0.8, 0.95 * frame.shape[1] / max(width, 1))
    (_, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    top = frame.shape[0] - height - baseline - 14
    cv2.rectangle(frame, (0, top), (frame.shape[1], frame.shape[0]), (40, 40, 40), cv2.FILLED)
    if share is not None:
        cv2.rectangle(frame, (0, frame.shape[0] - 5), (int(frame.shape[1] * min(max(share, 0.0), 1.0)), frame.shape[0]),
                      (0, 200, 255), cv2.FILLED)
    cv2.putText(frame, text, (6, top + height + 5), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return frame


def _caption(frame, text, corner, colour, below=False):
    """White text on a filled ``colour`` band above (or, at the top edge, below) ``corner``."""
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    x, y = corner
    top = y if below or y < height + baseline + 4 else y - height - baseline - 4
    cv2.rectangle(frame, (x, top), (x + width + 6, top + height + baseline + 4), colour, cv2.FILLED)
    cv2.putText(frame, text, (x + 3, top + height + 2), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
