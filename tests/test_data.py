"""Data loading: FER2013 CSV and class folders, bad input skipped, splits, weights, augmentation."""
import cv2
import numpy as np
import pytest

from utils.faces.preprocess import preprocess
from utils.train import datasets, photo_path
from utils.train.augment import random_affine, random_erase
from utils.train.batches import AugmentedBatches, DistilledBatches

SIDE = 48


def write_csv(path, rows):
    with open(path, "w") as handle:
        handle.write("emotion,pixels,Usage\n")
        for row in rows:
            handle.write(row + "\n")


def pixels(value, count=SIDE * SIDE):
    return " ".join([str(value)] * count)


def test_csv_reads_usages_in_fer_order_and_skips_malformed_rows(tmp_path):
    good = [f"{label},{pixels(label * 30)},Training" for label in range(7) for _ in range(10)]
    good += [f"{label},{pixels(200)},PublicTest" for label in range(7)]
    bad = ["3,1 2 3,Training",                  # not a square image
           f"9,{pixels(5)},Training",           # label out of range
           f"x,{pixels(5)},Training",           # label not a number
           f"2,{pixels(300)},Training",         # pixel out of range
           "4,,Training"]                       # no pixels
    path = tmp_path / "fer2013.csv"
    write_csv(path, good + bad)
    dataset = datasets.load_dataset(str(path), val_fraction=0.2, seed=1)
    assert dataset.classes == list(datasets.FER2013_CLASSES)
    assert dataset.train.skipped == len(bad)
    assert len(dataset.train) + len(dataset.val) == 70
    assert np.bincount(dataset.val.labels).tolist() == [2] * 7          # stratified
    assert len(dataset.test) == 7 and dataset.test.images.shape == (7, SIDE, SIDE, 1)
    # label k was written with intensity 30k: the row reached the right class, scaled to [0, 1]
    for image, label in zip(dataset.train.images, dataset.train.labels):
        assert image[0, 0, 0] == pytest.approx(label * 30 / 255.0)


def test_csv_without_required_columns_is_an_error(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(datasets.DatasetError, match="no emotion, pixels column"):
        datasets.load_dataset(str(path))


def make_folders(root, names, per_class=6, broken=()):
    """Class folders whose images carry their class in their intensity."""
    for index, name in enumerate(names):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{i}.png"), np.full((SIDE, SIDE), 20 * index + 10, np.uint8))
    for name in broken:
        (root / name / "broken.jpg").write_bytes(b"not an image at all")


def test_class_folders_match_by_name_case_insensitively_five_classes(tmp_path):
    names = ["Happy", "SAD", "neutral", "Angry", "surprise"]
    make_folders(tmp_path / "train", names, broken=["SAD"])
    make_folders(tmp_path / "test", names, per_class=2)
    dataset = datasets.load_dataset(str(tmp_path), val_fraction=0.5, seed=0)
    assert dataset.classes == ["angry", "happy", "sad", "surprise", "neutral"]   # FER order, not alphabetical
    assert dataset.train.skipped == 1
    for split in (dataset.train, dataset.val, dataset.test):
        for image, label in zip(split.images, split.labels):
            folder_index = [n.lower() for n in names].index(dataset.classes[label])
            assert image[0, 0, 0] == pytest.approx((20 * folder_index + 10) / 255.0)
    assert len(dataset.test) == 10


def test_single_folder_is_split_for_validation(tmp_path):
    make_folders(tmp_path, ["happy", "sad"], per_class=10)
    dataset = datasets.load_dataset(str(tmp_path), val_fraction=0.3, seed=3)
    assert dataset.test is None
    assert np.bincount(dataset.val.labels).tolist() == [3, 3]
    assert len(dataset.train) == 14


def test_split_is_reproducible_and_disjoint():
    labels = np.repeat(np.arange(4), 25)
    keep_a, held_a = datasets.stratified_split(labels, 0.2, seed=5)
    keep_b, held_b = datasets.stratified_split(labels, 0.2, seed=5)
    assert keep_a.tolist() == keep_b.tolist() and held_a.tolist() == held_b.tolist()
    assert not set(keep_a) & set(held_a) and len(keep_a) + len(held_a) == 100


def test_missing_and_empty_datasets_are_one_line_errors(tmp_path):
    with pytest.raises(datasets.DatasetError, match="no data set at"):
        datasets.load_dataset(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(datasets.DatasetError, match="no class folders"):
        datasets.load_dataset(str(tmp_path / "empty"))


def test_class_weights_favour_the_rare_class():
    labels = np.array([0] * 10 + [1] * 100 + [2] * 50)
    weights = datasets.class_weights(labels, 3)
    assert weights[0] > weights[2] > weights[1]
    assert sum(weights[i] * c for i, c in enumerate((10, 100, 50))) == pytest.approx(160)


def test_augmentation_keeps_shape_and_changes_pixels():
    rng = np.random.default_rng(0)
    face = preprocess(np.tile(np.arange(SIDE, dtype=np.uint8) * 5, (SIDE, 1)), SIDE, SIDE, 1)
    out = random_affine(face, rng)
    assert out.shape == face.shape and out.dtype == face.dtype
    assert not np.allclose(out, face)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_random_erase_replaces_one_rectangle_with_noise():
    rng = np.random.default_rng(0)
    face = np.full((SIDE, SIDE, 1), 0.5, np.float32)
    for _ in range(20):
        erased = random_erase(face, rng)
        changed = np.argwhere(erased[:, :, 0] != 0.5)
        assert erased.shape == face.shape and np.all(face == 0.5)     # the input is left alone
        assert 0.0 <= erased.min() and erased.max() <= 1.0
        (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0) + 1
        area = (bottom - top) * (right - left)
        assert 0.01 * SIDE * SIDE <= area <= 0.2 * SIDE * SIDE + 2 * SIDE   # one box of 2-20% of the face
        assert len(changed) >= 0.9 * area                                   # filled, not scattered


def test_batches_erase_only_when_asked():
    split = datasets.Split(np.full((8, SIDE, SIDE, 1), 0.5, np.float32), np.arange(8) % 2)
    never = AugmentedBatches(split, 2, batch_size=8, seed=0, erase_probability=0.0)[0][0]
    always = AugmentedBatches(split, 2, batch_size=8, seed=0, erase_probability=1.0)[0][0]
    assert np.allclose(never, 0.5)                       # a flat face is unchanged by flips and shifts
    assert all(np.sum(np.abs(face - 0.5) > 1e-3) > 0.01 * SIDE * SIDE for face in always)


def test_the_served_share_swaps_in_faces_framed_as_photos_are():
    split = datasets.Split(np.zeros((64, SIDE, SIDE, 1), np.float32), np.arange(64) % 2)
    served = np.ones_like(split.images)
    def batch(share):
        return AugmentedBatches(split, 2, batch_size=64, seed=0, augment=False, served=served,
                                served_share=share)[0][0]
    assert batch(0.0).max() == 0.0 and batch(1.0).min() == 1.0
    swapped = batch(0.5).reshape(64, -1).max(axis=1)
    assert set(swapped) == {0.0, 1.0} and 16 <= swapped.sum() <= 48


def test_served_faces_go_through_the_detector_and_the_upright_crop(astronaut_bgr, astronaut_face_box):
    """The astronaut's face as a 48x48 FER-style face (turned 20 degrees): the photo path finds it on
    its grey square and serves it upright; a blank face is not found and stays as it was."""
    from utils.faces import align
    from utils.train.photo_path import on_grey_square
    x, y, w, h = astronaut_face_box
    centre = (x + w / 2, y + h / 2)
    turned = cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D(centre, 20, 1.0), astronaut_bgr.shape[1::-1])
    face = preprocess(turned[y - 5:y + h + 5, x - 5:x + w + 5], SIDE, SIDE)
    blank = np.full((SIDE, SIDE, 1), 0.5, np.float32)
    served, on_square = photo_path.served_faces(np.stack([face, blank]))
    assert served.shape == (2, SIDE, SIDE, 1) and served.dtype == np.float32
    assert np.isnan(on_square[1])           # the blank face was not found
    np.testing.assert_array_equal(served[1], blank)
    photo = on_grey_square(np.uint8(np.round(face[:, :, 0] * 255)), photo_path.PHOTO_PAD)
    from utils.faces.detect import find_faces
    upright = align.aligned_crop(photo, find_faces(photo)[0], multiple=SIDE)
    assert abs(upright.angle - 20) < 8      # turned back (clockwise) by about the 20 degrees it was turned
    np.testing.assert_allclose(served[0], preprocess(upright.image, SIDE, SIDE), atol=1e-6)
    pad = photo_path.PHOTO_PAD                    # turning it upright brings the grey square's corners in
    assert on_square[0] == pytest.approx(upright.share_outside((pad, pad, SIDE, SIDE)))
    assert 0.02 < on_square[0] < 0.5


def test_a_resumed_run_sees_the_epoch_it_resumes_at():
    """Epoch 2 of an uninterrupted run and a run resumed at epoch 2 get the same batches; epochs differ."""
    split = datasets.Split(np.random.default_rng(3).random((12, SIDE, SIDE, 1), dtype=np.float32), np.arange(12) % 3)
    uninterrupted = AugmentedBatches(split, 3, batch_size=4, seed=0, erase_probability=0.5)
    first_epoch = uninterrupted[0][0]
    uninterrupted.on_epoch_end()
    uninterrupted.on_epoch_end()
    resumed = AugmentedBatches(split, 3, batch_size=4, seed=0, erase_probability=0.5, epoch=2)
    np.testing.assert_array_equal(uninterrupted[0][0], resumed[0][0])
    assert not np.array_equal(resumed[0][0], first_epoch)


def test_batches_are_one_hot_and_cover_the_split():
    split = datasets.Split(np.random.rand(10, SIDE, SIDE, 1).astype(np.float32), np.arange(10) % 3)
    batches = AugmentedBatches(split, 3, batch_size=4, seed=0)
    assert len(batches) == 3
    images, onehot = batches[0]
    assert images.shape == (4, SIDE, SIDE, 1) and onehot.shape == (4, 3)
    assert np.all(onehot.sum(axis=1) == 1)
    seen = np.concatenate([batches[i][1].argmax(axis=1) for i in range(len(batches))])
    assert np.bincount(seen).tolist() == np.bincount(split.labels).tolist()


def test_distilled_targets_mix_the_label_with_the_teachers_softened_answer():
    split = datasets.Split(np.random.default_rng(4).random((8, SIDE, SIDE, 1), dtype=np.float32), np.arange(8) % 3)
    seen = []

    def teacher(images):
        """Logits that favour class 2 whatever the label; remembers what it was shown."""
        seen.append(images.copy())
        return np.tile([0.0, 1.0, 3.0], (len(images), 1))

    plain_images, onehot = AugmentedBatches(split, 3, batch_size=4, seed=0)[0]
    images, targets = DistilledBatches(split, 3, batch_size=4, seed=0, teacher=teacher,
                                       weight=0.25, temperature=2.0)[0]
    np.testing.assert_array_equal(images, plain_images)          # the same augmented faces...
    np.testing.assert_array_equal(seen[0], images)               # ...which the teacher saw too
    taught = np.exp([0.0, 0.5, 1.5]) / np.exp([0.0, 0.5, 1.5]).sum()   # softmax of logits / 2
    np.testing.assert_allclose(targets, 0.75 * onehot + 0.25 * taught, atol=1e-6)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    assert targets.dtype == np.float32
