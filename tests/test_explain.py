"""Explanations: layer outputs, Grad-CAM, occlusion, facial regions, SHAP, LIME, and
whether they are faithful to the model.

Each method is first checked against a model whose evidence sits in a known place, so
the right answer is known (a fake probability source for the perturbation methods, a
small Keras network for Grad-CAM); then the faithfulness checks run on the shipped
model and real faces (the Yale faces are read when ../shared is there).
"""
import os
import sys
import tarfile
from dataclasses import replace

import keras
import numpy as np
import pytest

from conftest import make_card
from utils.explain import perturbation, sanity, shap_lime
from utils.explain.gradcam import GradCam
from utils.explain.layers import LayerReader
from utils.explain.targets import parse_class, Target, UnknownClass
from utils.faces.align import canonical_keypoints
from utils.faces.regions import region_boxes, REGION_LAYOUT
from utils.model.architectures import LOGITS_LAYER, PROBABILITIES_LAYER
from utils.model.card import Calibration
from utils.model.predict import Predictor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.environ.get("EMODETECT_XAI_MODEL", os.path.join(ROOT, "models", "emotion_model.h5"))
YALE = os.path.join(ROOT, "..", "shared", "datasets", "yalefaces.tar.gz")
YALE_EXPRESSIONS = ("happy", "sad", "surprised", "normal")
MOUTH = (slice(32, 42), slice(14, 34))     # rows, columns of the known-answer model's "mouth"
EYES = (slice(12, 20), slice(8, 40))


class AreaModel:
    """A fake probability source: class 1's probability is the mean brightness of one area.

    Hiding that area (with the face's mean) changes it; hiding anywhere else does not.
    """

    def __init__(self, top, left, size):
        self.area = (slice(top, top + size), slice(left, left + size))
        self.calls = 0

    def probabilities(self, batch):
        self.calls += 1
        batch = np.asarray(batch)
        brightness = batch[(slice(None),) + self.area].mean(axis=(1, 2, 3))
        return np.stack([1.0 - brightness, brightness], axis=1)


def bright_mouth_face():
    """A dark 48x48 face with a bright patch where the mouth region is."""
    face = np.full((48, 48, 1), 0.2, dtype=np.float32)
    face[34:40, 16:32] = 1.0
    return face


def area_target(class_index=1):
    return Target(class_index, ["other", "area"][class_index])


class Masked(keras.layers.Layer):
    """Two copies of the face, each seen only through a fixed mask: the network's only evidence."""

    def __init__(self, masks, **kwargs):
        super().__init__(**kwargs)
        self.masks = np.asarray(masks, dtype=np.float32)   # (H, W, channels)

    def call(self, faces):
        return faces * self.masks


def known_answer_model(masks):
    """A network whose class ``k`` logit is the mean of the face seen through mask ``k``.

    Its last convolution ("evidence", identity 1x1 filters) holds each masked copy in a
    channel, so Grad-CAM for class ``k`` must light up exactly mask ``k``.
    """
    inputs = keras.Input((48, 48, 1), name="face")
    masked = Masked(np.stack(masks, axis=-1), name="masked")(inputs)
    evidence = keras.layers.Conv2D(len(masks), 1, use_bias=False, name="evidence")(masked)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(evidence)
    logits = keras.layers.Dense(len(masks), name=LOGITS_LAYER)(pooled)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name=PROBABILITIES_LAYER)(logits))
    model.get_layer("evidence").set_weights([np.eye(len(masks), dtype=np.float32)[None, None]])
    model.get_layer(LOGITS_LAYER).set_weights([20 * np.eye(len(masks), dtype=np.float32),
                                                np.zeros(len(masks), np.float32)])
    return model


def area_mask(area):
    mask = np.zeros((48, 48), np.float32)
    mask[area] = 1.0
    return mask


def predictor_for(model, classes, test_time_flip=False, temperature=1.0, offsets=None):
    card = make_card("known", classes)
    card = replace(card, preprocessing=replace(card.preprocessing, test_time_flip=test_time_flip),
                   calibration=Calibration(temperature=temperature, logit_offsets=offsets))
    return Predictor(model, card, precision="float32")


@pytest.fixture(scope="module")
def known():
    """The known-answer network (class 0 reads the eyes, class 1 the mouth) and a face bright in both."""
    model = known_answer_model([area_mask(EYES), area_mask(MOUTH)])
    face = np.full((48, 48, 1), 0.3, np.float32)
    face[EYES] = face[MOUTH] = 0.8
    return predictor_for(model, ["eyes", "mouth"]), GradCam(model), face


@pytest.fixture(scope="module")
def face(predictor, astronaut_bgr):
    return predictor.choose_face(astronaut_bgr).input


# ---- layer outputs -----------------------------------------------------------------------

def test_every_layer_output_in_network_order(predictor, face):
    reader = LayerReader(predictor.model)
    outputs = reader.layer_outputs(face)
    assert [o.name for o in outputs] == [layer.name for layer in reader.layers]
    kinds = [o.kind for o in outputs]
    assert kinds[0] == "conv" and "pool" in kinds and kinds[-1] == "softmax"
    assert np.isclose(outputs[-1].array.sum(), 1.0, atol=1e-4)
    assert reader.first_kernels().shape[:2] == (3, 3)


# ---- Grad-CAM, against a network whose evidence is known ---------------------------------------

def mean_in(cam, area):
    return float(cam[area].mean())


def test_gradcam_lights_up_where_each_class_finds_its_evidence(known):
    predictor, gradcam, face = known
    assert gradcam.default_layer() == "evidence"
    mouth = gradcam.gradcam(face, Target.of(predictor, 1))
    eyes = gradcam.gradcam(face, Target.of(predictor, 0))
    assert mean_in(mouth, MOUTH) > 0.9 and mean_in(mouth, EYES) < 0.05
    assert mean_in(eyes, EYES) > 0.9 and mean_in(eyes, MOUTH) < 0.05
    assert mouth.max() == pytest.approx(1.0) and mouth.min() >= 0.0
    together = gradcam.all_classes(face, predictor)
    np.testing.assert_allclose(together, np.stack([eyes, mouth]), atol=1e-5)


def test_gradcam_explains_the_probability_it_says_it_does(known):
    """Its forward value is the predictor's own probability, calibration included."""
    _, gradcam, face = known
    calibrated = predictor_for(gradcam.model, ["eyes", "mouth"], temperature=3.0)
    _, _, values = gradcam.activations_and_gradients(face[None], [Target.of(calibrated, 1)], "evidence")
    assert values[0] == pytest.approx(calibrated.probabilities(face[None])[0, 1], abs=1e-6)


def test_gradcam_explains_the_probability_with_the_cards_logit_offsets(known):
    """With per-class offsets in the card, the target and Grad-CAM's forward value are the served probability."""
    _, gradcam, face = known
    plain = predictor_for(gradcam.model, ["eyes", "mouth"], temperature=3.0)
    offset = predictor_for(gradcam.model, ["eyes", "mouth"], temperature=3.0, offsets={"eyes": 1.5, "mouth": -1.5})
    target = Target.of(offset, 1)
    _, _, values = gradcam.activations_and_gradients(face[None], [target], "evidence")
    assert values[0] == pytest.approx(offset.probabilities(face[None])[0, 1], abs=1e-6)
    assert abs(values[0] - plain.probabilities(face[None])[0, 1]) > 0.1
    assert target.to_json()["offsets"] == [1.5, -1.5] and "offsets" in target.describe()


def test_gradcam_refuses_a_layer_without_feature_maps(known):
    predictor, gradcam, face = known
    with pytest.raises(ValueError, match="no feature maps"):
        gradcam.gradcam(face, Target.of(predictor, 0), "pool")
    with pytest.raises(ValueError, match="unknown layer 'no_such_layer'"):
        gradcam.gradcam(face, Target.of(predictor, 0), "no_such_layer")


# ---- the mirror-image average, against a network that tells left from right ----------------

LEFT = (slice(None), slice(0, 24))


RIGHT = (slice(None), slice(24, 48))


@pytest.fixture(scope="module")
def left_or_right():
    """Class 1 reads only the picture's left half; class 0 reads nothing. The face is bright on its
    left, dim on its right, and brighter at the top of the right half than at its bottom."""
    model = known_answer_model([np.zeros((48, 48), np.float32), area_mask(LEFT)])
    face = np.full((48, 48, 1), 0.1, np.float32)
    face[10:38, 4:20] = 0.9
    face[:24, 24:] = 0.3
    return model, face


def test_the_mirror_average_is_of_the_left_right_mirror(left_or_right):
    model, face = left_or_right
    plain = predictor_for(model, ["none", "left"])
    mirrored = predictor_for(model, ["none", "left"], test_time_flip=True)
    np.testing.assert_allclose(mirrored.logits(face[None]),
                               (plain.logits(face[None]) + plain.logits(face[None, :, ::-1])) / 2, atol=1e-5)
    # The mirror brings the dim right half in: "left" is less sure than on the face alone, and
    # more than it would be with an up-down flip (whose left half is as bright as the face's).
    left_only, both = plain.probabilities(face[None])[0, 1], mirrored.probabilities(face[None])[0, 1]
    upside_down = plain.probabilities(face[None, ::-1])[0, 1]    # its left half is as bright as the face's
    assert upside_down == pytest.approx(left_only, abs=1e-6) and both < left_only - 0.02


def test_gradcam_of_the_mirror_average_includes_the_mirror_image(left_or_right):
    """The mirror's view reads the face's right half for class 1: flipped back into place, the
    map holds the right half as the face has it (bright at the top, dim below)."""
    model, face = left_or_right
    gradcam = GradCam(model)
    plain = gradcam.gradcam(face, Target.of(predictor_for(model, ["none", "left"]), 1))
    mirrored = gradcam.gradcam(face, Target.of(predictor_for(model, ["none", "left"], test_time_flip=True), 1))
    assert plain[RIGHT].max() == 0.0 and mean_in(plain, (slice(10, 38), slice(4, 20))) > 0.9
    assert mean_in(mirrored, (slice(2, 20), slice(28, 44))) == pytest.approx(0.3 / 0.9, abs=0.05)
    assert mean_in(mirrored, (slice(28, 46), slice(28, 44))) == pytest.approx(0.1 / 0.9, abs=0.05)


# ---- targets and classes ------------------------------------------------------------------------

def test_a_target_names_the_number_it_explains(predictor):
    calibrated = predictor_for(predictor.model, predictor.classes, test_time_flip=True, temperature=1.25)
    target = Target.of(calibrated, 3)
    assert target.class_name == "happy" and target.mirror and target.temperature == 1.25
    assert "'happy'" in target.describe() and "1.25" in target.describe() and "mirror" in target.describe()
    faces = np.random.default_rng(0).random((3, 48, 48, 1), dtype=np.float32)
    np.testing.assert_allclose(target.values(calibrated, faces), calibrated.probabilities(faces)[:, 3])


def test_classes_are_parsed_by_name_in_any_case_or_by_number():
    classes = ["angry", "disgust", "happy"]
    assert parse_class(classes, "Happy") == parse_class(classes, "HAPPY") == parse_class(classes, "2") == 2
    for bad in ("bored", "3", "-1", ""):
        with pytest.raises(UnknownClass, match="classes: angry, disgust, happy"):
            parse_class(classes, bad)


# ---- perturbation methods, against a model whose answer is known -----------------------

def test_hide_fills_with_the_face_mean():
    face = bright_mouth_face()
    mask = np.zeros((48, 48), dtype=bool)
    mask[:10] = True
    hidden = perturbation.hide(face, mask)
    assert np.allclose(hidden[:10], face.mean()) and np.array_equal(hidden[10:], face[10:])


def test_top_fraction_mask_takes_the_highest_values():
    saliency = np.arange(100, dtype=float).reshape(10, 10)
    mask = perturbation.top_fraction_mask(saliency, 0.2)
    assert mask.sum() == 20 and mask[8:].all()


def test_occlusion_finds_the_area_the_model_reads_in_one_batch():
    model = AreaModel(top=34, left=16, size=6)
    sensitivity = perturbation.occlusion_sensitivity(model, bright_mouth_face(), area_target())
    assert sensitivity.shape == (48, 48)
    y, x = np.unravel_index(np.argmax(sensitivity), sensitivity.shape)
    assert 30 <= y <= 42 and 14 <= x <= 26
    assert sensitivity[:20].max() == pytest.approx(0.0, abs=1e-6)
    assert model.calls == 1  # the intact face and every patch position at once


def test_region_sensitivity_blames_the_mouth():
    regions = perturbation.region_sensitivity(AreaModel(top=34, left=18, size=6), bright_mouth_face(), area_target())
    assert [r["region"] for r in regions] == list(REGION_LAYOUT)
    by_name = {r["region"]: r for r in regions}
    assert max(regions, key=lambda r: r["drop"])["region"] == "mouth"
    assert by_name["forehead/brows"]["drop"] == pytest.approx(0.0, abs=1e-6)
    for region in regions:
        for x, y, w, h in region["boxes"]:
            assert 0 <= x and 0 <= y and x + w <= 48 and y + h <= 48
        assert region["probability"] + region["drop"] == pytest.approx(by_name["mouth"]["probability"]
                                                                      + by_name["mouth"]["drop"])


def test_regions_sit_on_the_faces_own_keypoints():
    """A face whose mouth and nose sit 6 px to the right and 3 px lower than the canonical
    face's gets its mouth and nose boxes moved the same; the eyes' stay put."""
    canonical = canonical_keypoints(48, 48)
    moved = dict(canonical, mouth=(canonical["mouth"][0] + 6, canonical["mouth"][1] + 3),
                 nose=(canonical["nose"][0] + 6, canonical["nose"][1] + 3))
    before, after = region_boxes((48, 48)), region_boxes((48, 48), moved)
    for name in ("mouth", "nose"):
        (x0, y0, w0, h0), (x1, y1, w1, h1) = before[name][0], after[name][0]
        assert (x1 - x0, y1 - y0, w1, h1) == (6, 3, w0, h0)
    assert after["eyes"] == before["eyes"] and after["cheeks"] == before["cheeks"]
    mx, my = canonical["mouth"]
    x, y, w, h = before["mouth"][0]
    assert x <= mx <= x + w and y <= my <= y + h
    # The regions scale with the eyes: a face twice as large gets boxes twice as large.
    doubled = region_boxes((96, 96), {name: (2 * px, 2 * py) for name, (px, py) in canonical.items()})
    assert doubled["mouth"][0][2] == pytest.approx(2 * w, abs=1)


def test_region_sensitivity_on_a_real_model_is_the_probability_each_region_takes_away(predictor, face):
    keypoints = canonical_keypoints(48, 48)
    target = Target.of(predictor, 3)
    regions = perturbation.region_sensitivity(predictor, face, target, keypoints)
    intact = predictor.probabilities(face[None])[0, 3]
    for region in regions:
        mask = np.zeros((48, 48), dtype=bool)
        for x, y, w, h in region["boxes"]:
            mask[y:y + h, x:x + w] = True
        hidden = predictor.probabilities(perturbation.hide(face, mask)[None])[0, 3]
        assert region["probability"] == pytest.approx(hidden, abs=1e-5)
        assert region["drop"] == pytest.approx(intact - hidden, abs=1e-5)
    assert regions[3]["boxes"] == region_boxes(face.shape, keypoints)["mouth"]


def test_a_constant_map_is_not_uncorrelated_but_broken():
    with pytest.raises(ValueError, match="constant map"):
        sanity.rank_correlation(np.zeros((4, 4)), np.arange(16.0))
    assert sanity.rank_correlation(np.arange(16.0), np.arange(16.0) ** 2) == pytest.approx(1.0)
    ramp, noise = np.arange(16.0).reshape(4, 4), np.random.default_rng(0).random((4, 4))
    # A method that gives constant maps fails the randomisation check instead of passing it.
    with pytest.raises(ValueError, match="constant map"):
        sanity.randomisation_correlation([np.zeros((4, 4))] * 2, [ramp, noise])
    # A randomised model that finds no evidence in one face: that pair is left out, not counted as 0.
    assert sanity.randomisation_correlation([ramp, ramp], [ramp ** 2, np.zeros((4, 4))]) == (pytest.approx(1.0), 1)


# ---- SHAP and LIME ----------------------------------------------------------------------

@pytest.mark.parametrize("method, package", [(shap_lime.shap_map, "shap"), (shap_lime.lime_map, "lime.lime_image")])
def test_missing_package_says_how_to_install(monkeypatch, method, package):
    monkeypatch.setitem(sys.modules, package, None)  # makes the import fail
    with pytest.raises(shap_lime.MissingOptionalPackage, match="pip install -r requirements-xai.txt"):
        method(AreaModel(0, 0, 4), bright_mouth_face(), area_target())


@pytest.mark.parametrize("method, package", [(shap_lime.shap_map, "shap"), (shap_lime.lime_map, "lime")])
def test_shap_and_lime_credit_the_area_the_model_reads(method, package):
    pytest.importorskip(package, reason=f"{package} is optional: pip install -r requirements-xai.txt")
    face = bright_mouth_face()
    values, segments = method(AreaModel(top=34, left=16, size=6), face, area_target(), samples=200)
    assert values.shape == segments.shape == (48, 48)
    assert values[37, 19] == pytest.approx(values.max())
    other, _ = method(AreaModel(top=34, left=16, size=6), face, area_target(0), samples=200)
    assert other[37, 19] == pytest.approx(other.min())   # the other class: the area argues against it


def test_shap_values_add_up_to_the_probability_change(predictor, face):
    pytest.importorskip("shap", reason="shap is optional: pip install -r requirements-xai.txt")
    values, segments = shap_lime.shap_map(predictor, face, Target.of(predictor, 3), samples=200)
    per_superpixel = np.array([values[segments == s][0] for s in range(segments.max() + 1)])
    intact = predictor.probabilities(face[None])[0, 3]
    hidden = predictor.probabilities(perturbation.hide(face, np.ones((48, 48), dtype=bool))[None])[0, 3]
    assert per_superpixel.sum() == pytest.approx(intact - hidden, abs=1e-4)


# ---- faithfulness, on the shipped model and real faces -------------------------------------

def yale_images():
    """A few expressions of every Yale subject: from ``dataset/people`` (``make data PEOPLE=...``) or
    read straight from the archive beside the project; none when neither is there."""
    people = os.path.join(ROOT, "dataset", "people")
    if os.path.isdir(people):
        paths = [os.path.join(folder, name) for folder, _, names in os.walk(people) for name in sorted(names)
                 if os.path.splitext(name)[0] in YALE_EXPRESSIONS]
        if paths:
            return [open(path, "rb").read() for path in sorted(paths)]
    if not os.path.isfile(YALE):
        return []
    with tarfile.open(YALE) as archive:
        return [archive.extractfile(member).read() for member in archive.getmembers()
                if member.isfile() and os.path.splitext(os.path.basename(member.name))[0] in YALE_EXPRESSIONS]


@pytest.fixture(scope="module")
def shipped():
    if not os.path.isfile(SHIPPED_MODEL):
        pytest.skip(f"{os.path.relpath(SHIPPED_MODEL, ROOT)} is not there yet: train it (make train) "
                    "or set EMODETECT_XAI_MODEL to a trained model")
    predictor = Predictor.from_path(SHIPPED_MODEL)
    return predictor, GradCam(predictor.model)


@pytest.fixture(scope="module")
def real_faces(shipped, astronaut_bgr):
    """Preprocessed real faces: the astronaut, and Yale's when ../shared/datasets is there."""
    from utils.media.decode import decode_image
    photos = yale_images()
    if not photos:
        pytest.skip("no Yale faces: make data PEOPLE=/path/to/yalefaces (or ../shared/datasets beside the project)")
    predictor, _ = shipped
    faces = []
    for image in [astronaut_bgr] + [decode_image(data) for data in photos]:
        chosen = predictor.choose_face(image)
        if not chosen.prediction["whole_image"]:
            faces.append(chosen.input)
    assert len(faces) >= 30
    return np.stack(faces)


def targets_of(predictor, faces):
    return [Target.of(predictor, index) for index in predictor.probabilities(faces).argmax(axis=1)]


def test_gradcam_changes_when_the_weights_are_randomised(shipped, real_faces):
    """Adebayo et al. 2018: maps of the trained and a re-initialised model must differ
    (and neither may be constant: a constant map would be a broken method, not a pass)."""
    predictor, trained = shipped
    randomised = GradCam(sanity.reinitialised_copy(predictor.model, seed=0))
    targets = targets_of(predictor, real_faces)
    correlation, pairs = sanity.randomisation_correlation(trained.maps(real_faces, targets),
                                                          randomised.maps(real_faces, targets))
    assert pairs >= 0.9 * len(real_faces) and correlation < 0.5, f"mean Spearman {correlation:.2f} over {pairs}"


def test_hiding_the_top_gradcam_pixels_hurts_more_than_hiding_random_ones(shipped, real_faces):
    """Deletion: the 20% of the face Grad-CAM ranks highest matters more to the target than a
    random 20% of the face in regions as coarse as Grad-CAM's own map.

    Scattered random pixels are not the comparison: filling every fifth pixel with the mean
    is noise over the whole face, a picture unlike any the network saw, and it lowers the
    probability more than hiding any one region does, whatever that region is. Both sides
    measure the same target Grad-CAM explains: the probability as served.
    """
    import cv2
    predictor, gradcam = shipped
    rng = np.random.default_rng(0)
    coarse = predictor.model.get_layer(gradcam.default_layer()).output.shape[1:3]
    targets = targets_of(predictor, real_faces)
    hidden = []
    for face, cam in zip(real_faces, gradcam.maps(real_faces, targets)):
        scattered = [rng.random(cam.shape) for _ in range(5)]
        blobs = [cv2.resize(rng.random(coarse), cam.shape[::-1], interpolation=cv2.INTER_LINEAR) for _ in range(5)]
        hidden += [perturbation.hide(face, perturbation.top_fraction_mask(saliency, 0.2))
                   for saliency in [cam] + scattered + blobs]
    classes = np.array([target.class_index for target in targets])
    intact = predictor.probabilities(real_faces)[np.arange(len(classes)), classes]
    after = predictor.probabilities(np.stack(hidden)).reshape(len(real_faces), 11, -1)
    drops = intact[:, None] - after[np.arange(len(classes)), :, classes]
    top, scattered, blobs = drops[:, 0].mean(), drops[:, 1:6].mean(), drops[:, 6:].mean()
    assert top > blobs, f"top 20% {top:.3f}, random regions {blobs:.3f} (scattered pixels {scattered:.3f})"
