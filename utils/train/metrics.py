"""How good a model is and where it fails: classification metrics, calibration, temperature.

Plain NumPy, scikit-learn and SciPy on arrays of labels, probabilities and logits,
so ``evaluate.py`` and the tests compute every figure the same way. Calibration
follows Guo et al. (2017), "On Calibration of Modern Neural Networks": the expected
calibration error over equal-width confidence bins, and one softmax temperature
fitted by minimising the negative log-likelihood on validation logits.
"""
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn import metrics as skm

ECE_BINS = 15
# Temperatures searched when fitting; far wider than any trained CNN needs.
TEMPERATURE_RANGE = (0.05, 20.0)


def summary(labels, predicted, num_classes):
    """Overall accuracy and the macro and weighted precision, recall and F1."""
    result = {"accuracy": float(skm.accuracy_score(labels, predicted))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            labels, predicted, labels=range(num_classes), average=average, zero_division=0)
        result.update({f"{average}_precision": float(precision), f"{average}_recall": float(recall),
                       f"{average}_f1": float(f1)})
    return result


def per_class_table(labels, predicted, classes):
    """One row per class: precision, recall, F1, support and accuracy.

    A class's accuracy is the share of its faces labelled correctly, as the model
    card's ``test_per_class``; that is its recall, under the name teachers expect.
    """
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        labels, predicted, labels=range(len(classes)), zero_division=0)
    return pd.DataFrame({"precision": precision, "recall": recall, "f1": f1,
                         "support": support.astype(int), "accuracy": recall},
                        index=pd.Index(list(classes), name="class"))


def confusion(labels, predicted, num_classes):
    """``(counts, row_normalised)``: rows are true classes; an absent class's row is zeros."""
    counts = skm.confusion_matrix(labels, predicted, labels=range(num_classes))
    totals = counts.sum(axis=1, keepdims=True)
    return counts, np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)


def reliability_bins(probabilities, labels, bins=ECE_BINS):
    """Per equal-width confidence bin: mean confidence, accuracy and count (empty bins NaN, 0)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return binned(probabilities.max(axis=1), probabilities.argmax(axis=1) == np.asarray(labels), bins)


def binned(confidence, outcome, bins=ECE_BINS):
    """Faces binned by their confidence in equal-width bins (lo, hi]: each bin's mean confidence, mean
    ``outcome`` (right or wrong; or the share of a crowd that agreed) and count (empty bins NaN, 0)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # A confidence of exactly 0 cannot happen with a softmax.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        mean_confidence = np.bincount(which, weights=confidence, minlength=bins) / counts
        accuracy = np.bincount(which, weights=np.asarray(outcome, dtype=np.float64), minlength=bins) / counts
    return {"edges": edges, "confidence": mean_confidence, "accuracy": accuracy, "count": counts}


def expected_calibration_error(probabilities, labels, bins=ECE_BINS):
    """Mean |accuracy - confidence| over the bins, weighted by how many faces fall in each."""
    return binned_error(reliability_bins(probabilities, labels, bins))


def binned_error(table):
    """The size-weighted mean gap between :func:`binned`'s mean outcome and mean confidence."""
    filled = table["count"] > 0
    gaps = np.abs(table["accuracy"][filled] - table["confidence"][filled])
    return float(np.sum(gaps * table["count"][filled]) / table["count"].sum())


def negative_log_likelihood(logits, labels, temperature=1.0):
    """Mean cross-entropy of the temperature-scaled softmax."""
    log_probabilities = log_softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)
    return float(-np.mean(log_probabilities[np.arange(len(labels)), labels]))


def fit_temperature(logits, labels):
    """The temperature that minimises the NLL of ``logits`` (fit it on validation data only).

    The search runs over log T, where the NLL is smooth and nearly convex; a
    temperature above 1 softens an over-confident model, below 1 sharpens it.
    The predicted class never changes, so accuracy is untouched.
    """
    labels = np.asarray(labels)
    result = minimize_scalar(lambda log_t: negative_log_likelihood(logits, labels, np.exp(log_t)),
                             bounds=np.log(TEMPERATURE_RANGE), method="bounded",
                             options={"xatol": 1e-4})
    return float(np.exp(result.x))


def confident_mistakes(probabilities, labels, count):
    """Indices of the ``count`` wrong predictions made with the highest confidence, highest first."""
    probabilities = np.asarray(probabilities)
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != np.asarray(labels))
    order = np.argsort(-probabilities[wrong].max(axis=1), kind="stable")
    return wrong[order[:count]]


def balanced_negative_log_likelihood(logits, labels, temperature=1.0, offsets=0.0):
    """The cross-entropy of softmax(logits / T + offsets) averaged within each class, then over the
    classes present: every class weighs the same, however many faces it has."""
    labels = np.asarray(labels)
    log_probabilities = log_softmax(np.asarray(logits, dtype=np.float64) / temperature + offsets, axis=1)
    losses = -log_probabilities[np.arange(len(labels)), labels]
    return float(np.mean([losses[labels == label].mean() for label in np.unique(labels)]))


def fit_logit_offsets(logits, labels, temperature=1.0):
    """Per-class offsets ``b`` (summing to zero) for probabilities softmax(logits / T + b) that weigh
    every class the same: fitted on validation data only, for balanced accuracy (macro recall).

    They minimise :func:`balanced_negative_log_likelihood`, the smooth, convex stand-in for
    balanced accuracy (which is a step function of ``b``): a class the network favours only for
    being common in training gets a negative offset, a rare or under-read class a positive one
    (the logit adjustment of Menon et al., 2021, "Long-tail learning via logit adjustment",
    measured instead of taken from the class counts). A class absent from ``labels`` keeps 0.
    """
    from scipy.optimize import minimize
    from scipy.special import softmax as scipy_softmax
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    labels = np.asarray(labels)
    num_classes = scaled.shape[1]
    present = np.unique(labels)
    counts = np.bincount(labels, minlength=num_classes)
    weights = 1.0 / (len(present) * counts[labels])          # each face's share of the balanced mean
    one_hot = np.eye(num_classes)[labels]
    free = np.isin(np.arange(num_classes), present)

    def loss_and_gradient(values):
        offsets = np.zeros(num_classes)
        offsets[free] = values
        log_probabilities = log_softmax(scaled + offsets, axis=1)
        loss = -np.sum(weights * log_probabilities[np.arange(len(labels)), labels])
        gradient = (weights[:, None] * (scipy_softmax(scaled + offsets, axis=1) - one_hot)).sum(axis=0)
        return loss, gradient[free]

    result = minimize(loss_and_gradient, np.zeros(free.sum()), jac=True, method="L-BFGS-B")
    offsets = np.zeros(num_classes)
    offsets[free] = result.x
    offsets[free] -= offsets[free].mean()                     # softmax ignores a shared shift: centre them
    return offsets


def crowd_metrics(probabilities, votes, majority, classes, fer2013=None, bins=ECE_BINS):
    """How well probabilities agree with a crowd's votes (FER+: ten people a face), each face counted once.

    ``majority`` is each face's most-voted class (ties broken as the data set breaks them: FER+ by its
    column order, as its own label counts do).

    - ``majority_accuracy``: the model's label is the crowd's majority;
    - ``crowd_choice_probability``: the mean probability the model gives the majority class;
    - ``vote_cross_entropy``: the mean of -sum_k share_k log p_k, in nats (the entropy of the votes is the
      floor no model beats: 0 only where everyone agreed);
    - ``vote_ece``: calibration against the crowd: faces binned by the model's confidence, each bin's mean
      confidence against the mean share of votes its label got, weighted by the bins' sizes;
    - ``per_class``: majority accuracy over the faces of each majority class;
    - ``fer2013_agreement``: where FER2013's own label is known (``fer2013`` >= 0), how often it is the majority;
      ``fer2013_accuracy``: how often the model says FER2013's own label there (the old judge).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    votes = np.asarray(votes, dtype=np.float64)
    majority = np.asarray(majority)
    shares = votes / votes.sum(axis=1, keepdims=True)
    rows = np.arange(len(votes))
    predicted = probabilities.argmax(axis=1)
    right = predicted == majority
    result = {
        "faces": len(votes),
        "majority_accuracy": float(right.mean()),
        "crowd_choice_probability": float(probabilities[rows, majority].mean()),
        "vote_cross_entropy": float(np.mean(-(shares * np.log(np.clip(probabilities, 1e-12, 1.0))).sum(axis=1))),
        "vote_ece": binned_error(binned(probabilities[rows, predicted], shares[rows, predicted], bins)),
        "per_class": {name: float(right[majority == k].mean()) for k, name in enumerate(classes)
                      if np.any(majority == k)},
    }
    known = np.asarray(fer2013) >= 0 if fer2013 is not None else np.zeros(len(votes), bool)
    if known.any():
        result["fer2013_agreement"] = float(np.mean(np.asarray(fer2013)[known] == majority[known]))
        result["fer2013_accuracy"] = float(np.mean(np.asarray(fer2013)[known] == predicted[known]))
        result["fer2013_faces"] = int(known.sum())
    return result
