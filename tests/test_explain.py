"""Explanations: layer outputs, Grad-CAM, occlusion, facial regions, SHAP, LIME, and
whether they are faithful to the model.

The perturbation methods are first checked against a fake "model" that only looks
at one known area, so the right answer is known; then the faithfulness checks run on
the shipped model and real faces (skipped with a reason when either is missing).
"""
import os
import sys
import tarfile

import numpy as np
import pytest

from utils import explain
from utils.explain import Explainer
from utils.faces import canonical_keypoints
from utils.predict import Predictor
from utils.regions import REGION_LAYOUT, region_boxes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_MODEL = os.environ.get("EMODETECT_XAI_MODEL", os.path.join(ROOT, "models", "emotion_model.h5"))
YALE = os.path.join(ROOT, "..", "shared", "datasets", "yalefaces.tar.gz")
YALE_EXPRESSIONS = ("happy", "sad", "surprised", "normal")


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


@pytest.fixture(scope="module")
def predictor(model_path):
    return Predictor.from_path(model_path)


@pytest.fixture(scope="module")
def explainer(predictor):
    return Explainer(predictor.model)


@pytest.fixture(scope="module")
def face(predictor, astronaut_bgr):
    _, crops, _ = predictor.face_crops(astronaut_bgr)
    return predictor.preprocess(crops[0].image)


# ---- layer outputs and Grad-CAM ------------------------------------------------------

def test_every_layer_output_in_network_order(explainer, face):
    outputs = explainer.layer_outputs(face)
    assert [o.name for o in outputs] == [layer.name for layer in explainer.layers]
    kinds = [o.kind for o in outputs]
    assert kinds[0] == "conv" and "pool" in kinds and kinds[-1] == "softmax"
    assert np.isclose(outputs[-1].array.sum(), 1.0, atol=1e-4)
    assert explainer.first_kernels().shape[:2] == (3, 3)


def test_gradcam_refuses_a_layer_without_feature_maps(explainer, face):
    with pytest.raises(ValueError, match="no feature maps"):
        explainer.gradcam(face, 0, "dense")
    with pytest.raises(ValueError, match="unknown layer"):
        explainer.gradcam(face, 0, "no_such_layer")


def test_gradcam_maps_are_unit_maps_at_the_input_size(explainer, face):
    cams = explainer.gradcam_all_classes(face, 7)
    assert cams.shape == (7, 48, 48)
    assert cams.min() >= 0.0 and cams.max() <= 1.0


# ---- perturbation methods, against a model whose answer is known -----------------------

def test_hide_fills_with_the_face_mean():
    face = bright_mouth_face()
    mask = np.zeros((48, 48), dtype=bool)
    mask[:10] = True
    hidden = explain.hide(face, mask)
    assert np.allclose(hidden[:10], face.mean()) and np.array_equal(hidden[10:], face[10:])


def test_top_fraction_mask_takes_the_highest_values():
    saliency = np.arange(100, dtype=float).reshape(10, 10)
    mask = explain.top_fraction_mask(saliency, 0.2)
    assert mask.sum() == 20 and mask[8:].all()


def test_occlusion_finds_the_area_the_model_reads_in_one_batch():
    model = AreaModel(top=34, left=16, size=6)
    sensitivity = explain.occlusion_sensitivity(model, bright_mouth_face(), class_index=1)
    assert sensitivity.shape == (48, 48)
    y, x = np.unravel_index(np.argmax(sensitivity), sensitivity.shape)
    assert 30 <= y <= 42 and 14 <= x <= 26
    assert sensitivity[:20].max() == pytest.approx(0.0, abs=1e-6)
    assert model.calls == 2  # the intact face, then every patch position at once


def test_region_sensitivity_blames_the_mouth():
    regions = explain.region_sensitivity(AreaModel(top=34, left=18, size=6), bright_mouth_face(), class_index=1)
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
    regions = explain.region_sensitivity(predictor, face, class_index=3, keypoints=keypoints)
    intact = predictor.probabilities(face[None])[0, 3]
    for region in regions:
        mask = np.zeros((48, 48), dtype=bool)
        for x, y, w, h in region["boxes"]:
            mask[y:y + h, x:x + w] = True
        hidden = predictor.probabilities(explain.hide(face, mask)[None])[0, 3]
        assert region["probability"] == pytest.approx(hidden, abs=1e-5)
        assert region["drop"] == pytest.approx(intact - hidden, abs=1e-5)
    assert regions[3]["boxes"] == region_boxes(face.shape, keypoints)["mouth"]


def test_rank_correlation_of_a_constant_map_is_zero():
    assert explain.rank_correlation(np.zeros((4, 4)), np.arange(16.0)) == 0.0
    assert explain.rank_correlation(np.arange(16.0), np.arange(16.0) ** 2) == pytest.approx(1.0)


# ---- SHAP and LIME ----------------------------------------------------------------------

@pytest.mark.parametrize("method, package", [(explain.shap_map, "shap"), (explain.lime_map, "lime.lime_image")])
def test_missing_package_says_how_to_install(monkeypatch, method, package):
    monkeypatch.setitem(sys.modules, package, None)  # makes the import fail
    with pytest.raises(explain.MissingOptionalPackage, match="pip install -r requirements-xai.txt"):
        method(AreaModel(0, 0, 4), bright_mouth_face())


@pytest.mark.parametrize("method, package", [(explain.shap_map, "shap"), (explain.lime_map, "lime")])
def test_shap_and_lime_credit_the_area_the_model_reads(method, package):
    pytest.importorskip(package, reason=f"{package} is optional: pip install -r requirements-xai.txt")
    face = bright_mouth_face()
    values, segments = method(AreaModel(top=34, left=16, size=6), face, class_index=1, samples=200)
    assert values.shape == segments.shape == (48, 48)
    assert values[37, 19] == pytest.approx(values.max())


def test_shap_values_add_up_to_the_probability_change(predictor, face):
    pytest.importorskip("shap", reason="shap is optional: pip install -r requirements-xai.txt")
    values, segments = explain.shap_map(predictor, face, class_index=3, samples=200)
    per_superpixel = np.array([values[segments == s][0] for s in range(segments.max() + 1)])
    intact = predictor.probabilities(face[None])[0, 3]
    hidden = predictor.probabilities(explain.hide(face, np.ones((48, 48), dtype=bool))[None])[0, 3]
    assert per_superpixel.sum() == pytest.approx(intact - hidden, abs=1e-4)


# ---- faithfulness, on the shipped model and real faces -------------------------------------

def yale_images():
    """A few expressions of every Yale subject, read straight from the archive."""
    images = []
    with tarfile.open(YALE) as archive:
        for member in archive.getmembers():
            if member.isfile() and os.path.splitext(os.path.basename(member.name))[0] in YALE_EXPRESSIONS:
                images.append(archive.extractfile(member).read())
    return images


@pytest.fixture(scope="module")
def shipped():
    if not os.path.isfile(SHIPPED_MODEL):
        pytest.skip(f"{os.path.relpath(SHIPPED_MODEL, ROOT)} is not there yet: train it (make train) "
                    "or set EMODETECT_XAI_MODEL to a trained model")
    predictor = Predictor.from_path(SHIPPED_MODEL)
    return predictor, Explainer(predictor.model)


@pytest.fixture(scope="module")
def real_faces(shipped, astronaut_bgr):
    """Preprocessed real faces: the astronaut, and Yale's when ../shared/datasets is there."""
    from utils.images import decode_image
    if not os.path.isfile(YALE):
        pytest.skip("../shared/datasets/yalefaces.tar.gz is not there (a fresh clone has no ../shared)")
    predictor, _ = shipped
    faces = []
    for image in [astronaut_bgr] + [decode_image(data) for data in yale_images()]:
        _, crops, whole = predictor.face_crops(image)
        if not whole:
            faces.append(predictor.preprocess(crops[0].image))
    assert len(faces) >= 30
    return np.stack(faces)


def test_gradcam_changes_when_the_weights_are_randomised(shipped, real_faces):
    """Adebayo et al. 2018: maps of the trained and a re-initialised model must differ."""
    predictor, trained = shipped
    randomised = Explainer(explain.reinitialised_copy(predictor.model, seed=0))
    classes = predictor.probabilities(real_faces).argmax(axis=1)
    pairs = zip(trained.gradcam_batch(real_faces, classes), randomised.gradcam_batch(real_faces, classes))
    correlations = [explain.rank_correlation(a, b) for a, b in pairs]
    assert np.mean(correlations) < 0.5, f"mean Spearman {np.mean(correlations):.2f}"


def test_hiding_the_top_gradcam_pixels_hurts_more_than_hiding_random_ones(shipped, real_faces):
    """Deletion: the 20% of the face Grad-CAM ranks highest matters more than a random 20%
    of the face in regions as coarse as Grad-CAM's own map.

    Scattered random pixels are not the comparison: filling every fifth pixel with the mean
    is noise over the whole face, a picture unlike any the network saw, and it lowers the
    probability more than hiding any one region does (0.32 against Grad-CAM's 0.31 on the
    shipped model), whatever that region is.

    Probabilities are the network's own, without the predict path's mirror-image average:
    Grad-CAM explains the network, and the mirrored copy would hide the mirrored pixels.
    """
    import cv2
    _, explainer = shipped
    probabilities_of = explain.probability_function(explainer.model)
    rng = np.random.default_rng(0)
    coarse = explainer.model.get_layer(explainer.default_cam_layer()).output.shape[1:3]
    probabilities = probabilities_of(real_faces)
    classes = probabilities.argmax(axis=1)
    hidden = []
    for face, cam in zip(real_faces, explainer.gradcam_batch(real_faces, classes)):
        scattered = [rng.random(cam.shape) for _ in range(5)]
        blobs = [cv2.resize(rng.random(coarse), cam.shape[::-1], interpolation=cv2.INTER_LINEAR) for _ in range(5)]
        hidden += [explain.hide(face, explain.top_fraction_mask(saliency, 0.2)) for saliency in [cam] + scattered + blobs]
    after = probabilities_of(np.stack(hidden)).reshape(len(real_faces), 11, -1)
    drops = probabilities[np.arange(len(classes)), classes][:, None] - after[np.arange(len(classes)), :, classes]
    top, scattered, blobs = drops[:, 0].mean(), drops[:, 1:6].mean(), drops[:, 6:].mean()
    assert top > blobs, f"top 20% {top:.3f}, random regions {blobs:.3f} (scattered pixels {scattered:.3f})"
