"""One found face: its box, the detector's score and its keypoints, and how boxes overlap.

What every detector returns (:mod:`utils.faces.blazeface`, :mod:`utils.faces.haar`) and every
later step reads (the crop, the tracker, the pages).
"""
from dataclasses import dataclass, field

# BlazeFace's keypoints in the model's output order; "right" is the person's right (left in the picture).
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` ``(x, y, w, h)`` in the picture's pixels, the detector's
    ``score`` in [0, 1], and ``keypoints`` ``name -> (x, y)`` (empty for Haar)."""
    box: tuple
    score: float
    keypoints: dict = field(default_factory=dict)

    def to_json(self):
        return {"box": [int(v) for v in self.box], "score": round(float(self.score), 4),
                "keypoints": {name: [round(float(x), 1), round(float(y), 1)] for name, (x, y) in self.keypoints.items()}}

    @classmethod
    def from_json(cls, data):
        """A face back from :meth:`to_json` (or a prediction dict, which holds the same fields)."""
        return cls(tuple(int(v) for v in data["box"]), float(data.get("score", 0.0)),
                   {name: tuple(point) for name, point in (data.get("keypoints") or {}).items()})

    def area(self):
        return self.box[2] * self.box[3]


def iou(a, b):
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, right - left) * max(0, bottom - top)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0
