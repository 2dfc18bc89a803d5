"""What an explanation explains: one number computed from the face, named so a page can say which.

Grad-CAM, occlusion, the facial regions, SHAP and LIME all explain a :class:`Target`:
the probability of one class exactly as the front ends show it beside the face (the
model card's temperature and logit offsets applied, and averaged with the face's mirror image when the
card says so). Every method on a page is given the same target of the same face, so
their maps answer the same question (pytorch-grad-cam calls these "targets" too).
"""
from dataclasses import dataclass

import numpy as np

from utils.model.predict import mirror_mean, scaled_logits, with_mirror


class UnknownClass(ValueError):
    """A class name or number the model does not have; the message lists its classes."""


def parse_class(classes, requested):
    """A class given by name (in any case) or by number -> its index in ``classes``."""
    lowered = [name.lower() for name in classes]
    text = str(requested).strip()
    if text.lower() in lowered:
        return lowered.index(text.lower())
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    raise UnknownClass(f"unknown class {requested!r} (classes: {', '.join(classes)})")


@dataclass(frozen=True)
class Target:
    """The probability of one class as a predictor serves it. (On a CPU that computes bfloat16
    natively the predictor serves a bfloat16 copy of the network: occlusion, regions, SHAP and
    LIME evaluate that copy, Grad-CAM and the layer views the float32 network, whose
    probabilities agree with it to about a hundredth.)"""
    class_index: int
    class_name: str
    temperature: float = 1.0
    mirror: bool = False    # the logits are averaged over the face and its left-right mirror image
    offsets: tuple = None   # per-class logit offsets added after the temperature (card order), or None

    @classmethod
    def of(cls, predictor, class_index):
        """The probability of class ``class_index`` as ``predictor`` serves it."""
        offsets = None if predictor.logit_offsets is None else tuple(float(v) for v in predictor.logit_offsets)
        return cls(int(class_index), predictor.classes[class_index], predictor.temperature, predictor.test_time_flip,
                   offsets)

    def batch(self, faces):
        """What the network is run on for ``faces``: the faces, followed by their mirror images when
        the target averages over them."""
        return with_mirror(faces) if self.mirror else faces

    def scaled(self, logits):
        """The network's logits for :meth:`batch` -> what the softmax is taken of, one row per face: the
        predictor's own arithmetic, on numpy arrays or on tensors that gradients flow through."""
        return scaled_logits(mirror_mean(logits) if self.mirror else logits, self.temperature,
                             None if self.offsets is None else np.asarray(self.offsets, dtype=np.float32))

    def values(self, source, faces):
        """The target for each face of a batch, computed by ``source`` (the predictor it describes,
        or anything else with ``probabilities(batch)``)."""
        return source.probabilities(faces)[:, self.class_index]

    def describe(self):
        """The sentence a page shows: which number every explanation on it explains."""
        how = [f"softmax at temperature {self.temperature:.2f}" if self.temperature != 1.0 else "softmax",
               "of the logits averaged over the face and its mirror image" if self.mirror else "of the logits",
               *(["plus the card's per-class offsets"] if self.offsets is not None else [])]
        return (f"the probability of '{self.class_name}' shown beside the face ({' '.join(how)}): "
                "every explanation here shows what raises or lowers this number")

    def to_json(self):
        return {"class": self.class_name, "class_index": self.class_index, "temperature": self.temperature,
                "mirror": self.mirror, "offsets": None if self.offsets is None else list(self.offsets),
                "description": self.describe()}
