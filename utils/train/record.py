"""What a finished training run says of itself: the model card, with the figures measured through the served
predict path (held-out accuracy, the crowd's judgement where the data has votes) and what the run was taught.

Split from :mod:`utils.train.fit` (the run itself) so that each reads in one sitting.
"""
import os
import platform
from datetime import datetime, timezone

import keras
import numpy as np

from utils.model.card import CrowdMetrics, InputSize, Labels, Metrics, ModelCard, Preprocessing, Training, Versions
from utils.train import metrics as scores

# How a served face is cut out of its photo (utils.faces.align.aligned_crop), for the card.
CROP_NOTE = ("detected face turned upright by its eye line, eyes, nose and mouth fitted to "
             "utils/faces/canonical_face.json")
# What the card says the epochs were chosen on, by the metric :func:`selection` picks.
CHOSEN_ON = {"val_accuracy": "validation accuracy",
             "accuracy": "training accuracy: too few images per class to hold any out for validation"}


def selection(dataset):
    """``(metric, split)`` that choose between epochs: validation accuracy on the validation split or, when
    a small set leaves no image for it (5 photos of each person, 2 held out for testing, 3 to learn
    from), training accuracy on the training images. The card says which (``chosen_on``)."""
    return ("val_accuracy", dataset.val) if len(dataset.val) else ("accuracy", dataset.train)


def served_probabilities(predictor, split, batch_size=256):
    """The shipped predict path's probabilities (test-time flip included) for every face of ``split``."""
    return np.concatenate([predictor.probabilities(split.images[start:start + batch_size])
                           for start in range(0, len(split), batch_size)])


def accuracy(predictor, split):
    return round(float(np.mean(served_probabilities(predictor, split).argmax(1) == split.labels)), 4)


def held_out_record(predictor, dataset, history):
    """``(Metrics, CrowdMetrics or None)``: validation accuracy (training accuracy without a validation split),
    test accuracy overall and per class when there are test images, and the crowd's judgement of them when
    they have votes (:func:`utils.train.metrics.crowd_metrics`); the test faces are read once for both.

    Measured through :class:`utils.model.predict.Predictor`, so the card reports what users get.
    """
    monitor, split = selection(dataset)
    metrics = {"val_accuracy" if monitor == "val_accuracy" else "train_accuracy": accuracy(predictor, split)}
    if history.get(monitor):
        metrics["best_epoch"] = int(np.argmax(history[monitor])) + 1
    test, crowd = dataset.test, None
    if test is not None and len(test):
        probabilities = served_probabilities(predictor, test)
        right = probabilities.argmax(1) == test.labels
        metrics["test_accuracy"] = round(float(np.mean(right)), 4)
        metrics["test_per_class"] = {
            name: round(float(np.mean(right[test.labels == i])), 4)
            for i, name in enumerate(dataset.classes) if np.any(test.labels == i)}
        metrics["test_images"] = len(test)
        if test.votes is not None:
            crowd = CrowdMetrics.measured(dataset.source, scores.crowd_metrics(
                probabilities, test.votes, test.labels, predictor.classes, test.fer2013))
    return Metrics(**metrics), crowd


def labels_record(settings, dataset):
    """The card's ``labels``: one label a face, or the crowd's votes and how they were taught."""
    if dataset.train.votes is None:
        return Labels(source="one label a face", scheme="single")
    return Labels(source="votes", scheme=settings.labels, votes_per_face=int(round(dataset.train.votes.sum(1).max())),
                  pixels=settings.pixels)


def _tensorflow_version():
    try:
        import tensorflow
    except ImportError:  # trained on the JAX or torch backend
        return None
    return tensorflow.__version__


def held_out_note(settings, dataset):
    """How the identity test photos were chosen, and which files they are (the front ends step through them)."""
    if dataset.test is None:
        return None
    if os.path.isdir(os.path.join(dataset.source, "test")):
        note = {"from": "the data set's test/ folder"}
    else:
        note = {"held_out_per_class": settings.test_per_person, "seed": settings.seed,
                "from": "photos of each person held out of the data before the validation split"}
    if dataset.test.paths:
        note["files"] = [os.path.relpath(path, dataset.source) for path in dataset.test.paths]
    return note


def model_card(name, settings, dataset, model, history, precision, command, start=None, teacher=None):
    """The model card of a finished run, without its metrics (:func:`held_out_record` measures them).

    ``command`` is how the run was started; ``start`` and ``teacher`` what :func:`copy_weights` and
    :func:`load_teacher` record (``teacher`` with its weight and temperature). Each key: docs/model_card.md.
    """
    identity = settings.task == "identity"
    return ModelCard(
        name=name, task=settings.task, classes=tuple(dataset.classes),
        input=InputSize(height=settings.img_size, width=settings.img_size, channels=settings.channels),
        preprocessing=Preprocessing(crop=CROP_NOTE, crop_context=settings.crop_context,
                                    test_time_flip=settings.test_time_flip),
        architecture=settings.arch, parameters=int(model.count_params()),
        training=Training(
            data=dataset.source, train_images=len(dataset.train), val_images=len(dataset.val),
            test_images=len(dataset.test) if dataset.test is not None else 0,
            skipped_images=int(dataset.train.skipped),
            val_fraction=settings.val_fraction, seed=settings.seed, chosen_on=CHOSEN_ON[selection(dataset)[0]],
            epochs=len(history.get("epoch", [])), epochs_requested=settings.epochs,
            batch_size=settings.batch_size, learning_rate=settings.learning_rate,
            label_smoothing=settings.label_smoothing, augmentation=settings.augment,
            random_erasing=settings.erase, served_share=settings.served_share, schedule=settings.schedule,
            initialised_from=start, class_weights=settings.class_weights, precision=precision,
            backend=keras.backend.backend(), command=command, teacher=teacher,
            test_split=held_out_note(settings, dataset) if identity else None,
            faces_cropped={"no_face_found": int(dataset.train.no_face),
                           "note": "each photo cut down to its largest face, upright; photos without one kept whole"}
            if identity else None),
        labels=labels_record(settings, dataset),
        versions=Versions(python=platform.python_version(), keras=keras.__version__,
                          tensorflow=_tensorflow_version(), numpy=np.__version__),
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
