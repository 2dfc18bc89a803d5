"""utils.train.metrics against scikit-learn, brute force and synthetic cases with known answers."""
import numpy as np
import pytest
from sklearn import metrics as skm

from conftest import FER_CLASSES as CLASSES
from utils.model.predict import softmax
from utils.train import metrics


def synthetic_probabilities(rng, count, confidence, hit_rate):
    """Softmax-like rows whose top value is ``confidence`` and whose top class is right ``hit_rate`` of the time."""
    k = len(CLASSES)
    predicted = rng.integers(0, k, count)
    probabilities = np.repeat(((1 - confidence) / (k - 1))[:, None], k, axis=1)
    probabilities[np.arange(count), predicted] = confidence
    right = rng.random(count) < hit_rate
    labels = np.where(right, predicted, (predicted + rng.integers(1, k, count)) % k)
    return probabilities, labels


def brute_force_ece(probabilities, labels, bins=15):
    confidence, predicted = probabilities.max(axis=1), probabilities.argmax(axis=1)
    total = 0.0
    for low, high in zip(np.linspace(0, 1, bins + 1)[:-1], np.linspace(0, 1, bins + 1)[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            gap = abs(np.mean(predicted[inside] == labels[inside]) - np.mean(confidence[inside]))
            total += gap * inside.sum() / len(labels)
    return total


def test_summary_table_and_confusion_match_sklearn():
    rng = np.random.default_rng(1)
    labels = rng.choice([0, 2, 3, 4, 5, 6], 300)  # disgust absent, as in a small split
    predicted = np.where(rng.random(300) < 0.6, labels, rng.integers(0, 7, 300))
    summary = metrics.summary(labels, predicted, 7)
    assert summary["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert summary["macro_f1"] == pytest.approx(
        skm.f1_score(labels, predicted, labels=range(7), average="macro", zero_division=0))
    assert summary["weighted_recall"] == pytest.approx(
        skm.recall_score(labels, predicted, labels=range(7), average="weighted", zero_division=0))
    table = metrics.per_class_table(labels, predicted, CLASSES)
    assert list(table.index) == CLASSES
    np.testing.assert_allclose(table["f1"], skm.f1_score(labels, predicted, labels=range(7), average=None,
                                                         zero_division=0))
    assert table.loc["disgust", "support"] == 0
    assert table.loc["happy", "accuracy"] == pytest.approx(np.mean(predicted[labels == 3] == 3))
    counts, shares = metrics.confusion(labels, predicted, 7)
    np.testing.assert_array_equal(counts, skm.confusion_matrix(labels, predicted, labels=range(7)))
    np.testing.assert_allclose(shares.sum(axis=1), [1, 0, 1, 1, 1, 1, 1])
    assert np.trace(shares) == pytest.approx(summary["macro_recall"] * 7)  # diagonal = per-class recall


def test_ece_matches_brute_force_and_bins_cover_every_face():
    rng = np.random.default_rng(2)
    probabilities = softmax(rng.normal(0, 2, (500, 7)))
    labels = rng.integers(0, 7, 500)
    assert metrics.expected_calibration_error(probabilities, labels) == pytest.approx(
        brute_force_ece(probabilities, labels))
    bins = metrics.reliability_bins(probabilities, labels)
    assert bins["count"].sum() == 500 and len(bins["edges"]) == metrics.ECE_BINS + 1


def test_ece_near_zero_when_calibrated_and_high_when_over_confident():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.3, 1.0, 40000)
    calibrated = synthetic_probabilities(rng, 40000, confidence, hit_rate=confidence)
    assert metrics.expected_calibration_error(*calibrated) < 0.015
    over_confident = synthetic_probabilities(rng, 40000, rng.uniform(0.95, 1.0, 40000), hit_rate=0.5)
    assert metrics.expected_calibration_error(*over_confident) == pytest.approx(0.475, abs=0.02)


@pytest.mark.parametrize("scale", [3.0, 0.5])
def test_temperature_fit_recovers_the_scale_and_lowers_held_out_nll(scale):
    rng = np.random.default_rng(4)
    true_logits = rng.normal(0, 2, (6000, 7))
    cumulative = softmax(true_logits).cumsum(axis=1)
    labels = np.minimum((rng.random((6000, 1)) > cumulative).sum(axis=1), 6)
    model_logits = true_logits * scale  # over-confident (3) or under-confident (0.5)
    temperature = metrics.fit_temperature(model_logits[:3000], labels[:3000])
    assert temperature == pytest.approx(scale, rel=0.1)
    held_out = model_logits[3000:], labels[3000:]
    assert metrics.negative_log_likelihood(*held_out, temperature) < metrics.negative_log_likelihood(*held_out) - 0.05


def test_confident_mistakes_are_wrong_and_sorted():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.95, 0.05]])
    labels = np.array([1, 1, 1, 0, 0])
    assert metrics.confident_mistakes(probabilities, labels, 5).tolist() == [0, 3, 2]
    assert metrics.confident_mistakes(probabilities, labels, 1).tolist() == [0]


def test_logit_offsets_undo_a_bias_toward_one_class():
    """A fixture biased toward neutral (its logit raised by 1.5 for every face): offsets fitted on one
    half take the bias back and raise the other half's balanced accuracy; they sum to zero."""
    rng = np.random.default_rng(4)
    labels = rng.choice(7, 4000, p=[0.2, 0.05, 0.15, 0.25, 0.15, 0.1, 0.1])
    logits = rng.normal(0.0, 1.0, (4000, 7))
    logits[np.arange(4000), labels] += 1.5
    logits[:, 6] += 1.5                                               # the bias toward neutral
    fit, held = slice(0, 2000), slice(2000, None)
    offsets = metrics.fit_logit_offsets(logits[fit], labels[fit], temperature=1.0)
    assert offsets.sum() == pytest.approx(0.0, abs=1e-9)
    assert offsets[6] == min(offsets) and offsets[6] - np.delete(offsets, 6).mean() < -1.0

    def balanced(offsets):
        return skm.balanced_accuracy_score(labels[held], (logits[held] + offsets).argmax(axis=1))
    assert balanced(offsets) > balanced(0.0) + 0.05
    assert metrics.balanced_negative_log_likelihood(logits[fit], labels[fit], 1.0, offsets) < \
        metrics.balanced_negative_log_likelihood(logits[fit], labels[fit], 1.0)


def test_logit_offsets_leave_an_absent_class_at_zero_and_follow_the_temperature():
    rng = np.random.default_rng(5)
    labels = rng.choice([0, 2, 3, 4, 5, 6], 600)
    logits = rng.normal(0.0, 1.0, (600, 7)) + 2 * np.eye(7)[labels]
    logits[:, 3] += 1.0
    offsets = metrics.fit_logit_offsets(logits, labels, temperature=2.0)
    assert offsets[1] == 0.0
    np.testing.assert_allclose(metrics.fit_logit_offsets(logits / 2.0, labels), offsets, atol=1e-3)
