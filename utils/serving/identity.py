"""Identity beside emotion: one face through both models, and the identity test photos.

Shared by the site's "Identity and emotion" page and the desktop window's tab. Both
models see the same detected face, cut out upright (:func:`utils.faces.align.aligned_crop`)
and preprocessed for each model's own input; :func:`utils.explain.gradcam.compare_gradcam` then shows
where "who it is" and "how they feel" look.
"""
import os
from dataclasses import dataclass

from utils.defaults import IDENTITY_DATA, THRESHOLD
from utils.explain import figures
from utils.explain.gradcam import compare_gradcam
from utils.faces.face import Face

# What the front ends' "Train identity model" button runs (see README: identity).
TRAIN_ARGS = ("--task", "identity", "--batch-size", "16", "--precision", "float32")
TRAIN_EPOCHS = 60


def model_file(path):
    """The identity model at ``path``, read again whenever training replaces it (see :class:`utils.serving.model_file.ModelFile`)."""
    from utils.serving.model_file import ModelFile
    return ModelFile(path, f"train one with `python train.py --task identity --data {IDENTITY_DATA}` "
                           "or the 'Train identity model' button")


def training_args(data, epochs=TRAIN_EPOCHS):
    """train.py's arguments for the identity model the front ends train (``--out`` is the runner's)."""
    return [*TRAIN_ARGS, "--data", data, "--epochs", str(epochs)]


@dataclass
class Comparison:
    box: list
    emotion: dict        # a prediction dict (utils.model.predict) from the emotion model
    identity: dict       # the same from the identity model: label is the person
    face: object         # the emotion model's input, the face the maps are drawn on
    maps: dict           # compare_gradcam's emotion, identity and difference maps

    def figure(self):
        return figures.gradcam_comparison_figure(
            self.face, self.maps, f"{self.emotion['label']} {self.emotion['confidence']:.0%}",
            f"{self.identity['label']} {self.identity['confidence']:.0%}")


def compare(emotion, identity, image, threshold=THRESHOLD, face=None, detector=None):
    """One face of ``image`` through both models (each a :class:`utils.serving.model_file.LoadedModel`),
    with both Grad-CAMs for their predicted classes: ``face`` (a :class:`utils.faces.face.Face`
    or a prediction dict), else the largest one found, else the whole image."""
    if face is None:
        found, _, whole = emotion.predictor.face_crops(image, detector=detector)
        face = found[0].to_json() | {"whole_image": whole}
    elif isinstance(face, Face):
        face = face.to_json() | {"whole_image": False}
    results = [model.predictor.predict_face(image, face, threshold) for model in (emotion, identity)]
    inputs = [model.predictor.face_input(image, face) for model in (emotion, identity)]
    maps = compare_gradcam(emotion.gradcam, identity.gradcam, *inputs,
                           emotion.target(emotion.predictor.classes.index(results[0]["label"])),
                           identity.target(identity.predictor.classes.index(results[1]["label"])))
    return Comparison(list(face["box"]), results[0], results[1], inputs[0], maps)


def held_out_photos(card, root):
    """``[(path, true person)]``: the identity test photos the card lists, that exist here.

    ``root`` is the folder train.py ran in (the card's data path is relative to it).
    """
    if card.training is None:
        return []
    data = os.path.join(root, card.training.data)
    samples = [(os.path.join(data, name), os.path.normpath(name).split(os.sep)[-2])
               for name in card.training.test_files]
    return [(path, person) for path, person in samples if os.path.isfile(path)]
