"""Why does the model read other people's milder faces as neutral? Three explanations, measured.

    EMODETECT_PRECISION=float32 python bench/bench_other_faces.py [--yale dataset/people]

Each explanation predicts something different, and each is put to its test on the Yale faces
(15 people: happy, normal, sad, surprised) and FER2013's validation split (never its test split):

1. The class prior: the network leans toward neutral the way FER2013's class counts taught it.
   Then per-class logit offsets fitted for balanced accuracy on validation (``evaluate.py
   --calibrate --logit-offsets``) undo the lean, and Yale's sad faces come right with them.
2. The crop: the photo path frames, aligns or lights a face unlike FER2013's. Then framing the
   Yale faces wider or tighter, not turning them upright, another detector, or matching their
   contrast and sharpness to FER2013's changes how they are read.
3. What the network learned: FER2013's sad faces are not these. If the network only knows
   intense faces, exaggerating each person's change from normal to sad (normal + a * (sad -
   normal), a > 1) makes them sad. If its features tell the faces apart but its last layer
   weighs them as FER2013's sad faces, a linear read-out trained on the other Yale people
   (leave one person out) finds sad, while a last layer refitted on FER2013's own features
   (class-balanced or not) still does not.

Prints one line per measurement: Yale's faces right per class (of 15) and, where a change
applies to FER2013 too, the validation accuracy and balanced accuracy (macro recall). Takes a
few minutes on a laptop CPU (the refitted last layer reads all 25,837 training faces once).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from utils.defaults import EMOTION_MODEL, FER2013, IDENTITY_DATA  # noqa: E402
from utils.faces import align, detect  # noqa: E402
from utils.media import colour  # noqa: E402
from utils.media.decode import read_image  # noqa: E402
from utils.train import datasets, metrics, photo_benchmark  # noqa: E402

SHOWN = ("happy", "neutral", "sad", "surprise")
STRENGTHS = (0.5, 1.0, 1.5, 2.0)
SAD_OFFSETS = (1.0, 2.0, 2.2, 2.5)
CONTEXTS = (0.8, 0.9, 1.1, 1.25, 1.5)
CARICATURE = (0.5, 1.0, 1.5, 2.0, 2.5)


def yale_counts(predicted, labels, classes):
    return "  ".join(f"{name} {int(np.sum(predicted[labels == classes.index(name)] == classes.index(name))):2d}"
                     for name in SHOWN if classes.index(name) in labels)


def val_figures(predicted, labels, num_classes):
    summary = metrics.summary(labels, predicted, num_classes)
    return f"validation {summary['accuracy']:.3f} / {summary['macro_recall']:.3f}"


def per_image(function, inputs):
    return np.stack([function(face[:, :, 0])[:, :, None] for face in inputs]).astype(np.float32)


def main(argv=None):
    from utils.model.architectures import LOGITS_LAYER   # here: the entry point quiets TensorFlow's import first
    from utils.model.predict import Predictor
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=EMOTION_MODEL)
    parser.add_argument("--yale", default=IDENTITY_DATA, help="the Yale faces (make data PEOPLE=... puts them here)")
    parser.add_argument("--data", default=FER2013)
    args = parser.parse_args(argv)
    predictor = Predictor.from_path(args.model)
    classes, temperature = predictor.classes, predictor.temperature
    print(f"{args.model}, served in {predictor.precision}")

    paths, labels, _ = photo_benchmark.find_photos(args.yale, classes)
    photos = [colour.to_gray(read_image(path)) for path in paths]
    found = [detect.find_faces(photo, "thorough")[0] for photo in photos]
    served = np.stack([predictor.face_input(photo, face) for photo, face in zip(photos, found)])
    training = predictor.card.training
    dataset = datasets.load_dataset(args.data, training.val_fraction, training.seed, (48, 48), 1)
    val_logits = np.concatenate([predictor.logits(dataset.val.images[i:i + 256])
                                 for i in range(0, len(dataset.val), 256)])

    def read(inputs, offsets=0.0):
        return (predictor.logits(inputs) / temperature + offsets).argmax(axis=1)

    print(f"\nas served:  Yale {yale_counts(read(served), labels, classes)}  |  "
          f"{val_figures((val_logits / temperature).argmax(axis=1), dataset.val.labels, len(classes))}")
    table = metrics.per_class_table(dataset.val.labels, (val_logits / temperature).argmax(axis=1), classes)
    print("validation precision / recall per class: " +
          ", ".join(f"{name} {row.precision:.2f}/{row.recall:.2f}" for name, row in table.iterrows()))

    print("\n1. the class prior: offsets fitted on validation for balanced accuracy, times a strength")
    fitted = metrics.fit_logit_offsets(val_logits, dataset.val.labels, temperature)
    print("   fitted: " + ", ".join(f"{name} {value:+.2f}" for name, value in zip(classes, fitted)))
    for strength in STRENGTHS:
        offsets = strength * fitted
        print(f"   strength {strength:.1f}:  Yale {yale_counts(read(served, offsets), labels, classes)}  |  "
              f"{val_figures((val_logits / temperature + offsets).argmax(axis=1), dataset.val.labels, len(classes))}")
    sad = classes.index("sad")
    margins = (predictor.logits(served) / temperature)[labels == sad]
    print(f"   Yale's sad faces: sad's logit lies {np.median(margins.max(axis=1) - margins[:, sad]):.2f} below "
          "the winner's (median)")
    for lift in SAD_OFFSETS:
        offsets = np.eye(len(classes))[sad] * lift
        print(f"   sad alone +{lift:.1f}:  Yale {yale_counts(read(served, offsets), labels, classes)}  |  "
              f"{val_figures((val_logits / temperature + offsets).argmax(axis=1), dataset.val.labels, len(classes))}")

    print("\n2. the crop: Yale's faces cut out or lit otherwise")
    fer = dataset.train.images[::20, :, :, 0]
    fer_mean, fer_std = fer.mean(), fer.reshape(len(fer), -1).std(axis=1).mean()

    def sharpness(inputs):
        return np.mean([cv2.Laplacian(face[:, :, 0], cv2.CV_32F).var() for face in inputs])
    print(f"   FER2013 training faces: mean {fer_mean:.2f}, contrast (std) {fer_std:.2f}, "
          f"sharpness {sharpness(fer[..., None]):.3f}; "
          f"Yale's served: {served.mean():.2f}, {served.reshape(len(served), -1).std(axis=1).mean():.2f}, "
          f"{sharpness(served):.3f}")
    variants = {f"framed {context} x FER2013's": np.stack([
        predictor.preprocess(align.aligned_crop(photo, face, context=context, multiple=48).image)
        for photo, face in zip(photos, found)]) for context in CONTEXTS}

    def box_crop(photo, face):
        x, y, w, h = (int(v) for v in face.box)
        margin = int(0.1 * w)
        return predictor.preprocess(photo[max(0, y - margin):y + h + margin, max(0, x - margin):x + w + margin])
    variants["the detector's box, not turned upright"] = np.stack([box_crop(p, f) for p, f in zip(photos, found)])
    haar = [detect.find_faces(photo, "thorough", "haar") or [face] for photo, face in zip(photos, found)]
    variants["found by Haar"] = np.stack([predictor.face_input(p, h[0]) for p, h in zip(photos, haar)])
    variants["histogram equalised"] = per_image(lambda f: cv2.equalizeHist(np.uint8(f * 255)) / 255.0, served)
    variants["mean and contrast of FER2013's"] = per_image(
        lambda f: np.clip((f - f.mean()) / f.std() * fer_std + fer_mean, 0, 1), served)
    variants["sharpened to FER2013's sharpness"] = per_image(
        lambda f: np.clip(2 * f - cv2.GaussianBlur(f, (0, 0), 1.0), 0, 1), served)
    variants["blurred (sigma 0.8)"] = per_image(lambda f: cv2.GaussianBlur(f, (0, 0), 0.8), served)
    variants["down to 24 px and back"] = per_image(
        lambda f: cv2.resize(cv2.resize(f, (24, 24), interpolation=cv2.INTER_AREA), (48, 48)), served)
    for name, inputs in variants.items():
        print(f"   {name:40s} Yale {yale_counts(read(inputs), labels, classes)}")

    print("\n3. what the network learned")
    people = np.array([os.path.basename(os.path.dirname(path)) for path in paths])
    neutral = classes.index("neutral")
    for name in ("sad", "happy", "surprise"):
        index = classes.index(name)
        pairs = [(np.flatnonzero((people == person) & (labels == neutral)),
                  np.flatnonzero((people == person) & (labels == index))) for person in np.unique(people)]
        pairs = np.array([(n[0], e[0]) for n, e in pairs if len(n) and len(e)])
        counts = []
        for amount in CARICATURE:
            exaggerated = np.clip(served[pairs[:, 0]] + amount * (served[pairs[:, 1]] - served[pairs[:, 0]]), 0, 1)
            counts.append(f"a={amount}: {int(np.sum(read(exaggerated) == index)):2d}")
        print(f"   {name} exaggerated from normal, of {len(pairs)}: " + ", ".join(counts))
    logits = predictor.logits(served)
    pairs = np.array([(np.flatnonzero((people == person) & (labels == neutral))[0],
                       np.flatnonzero((people == person) & (labels == sad))[0]) for person in np.unique(people)])
    change = logits[pairs[:, 1]] - logits[pairs[:, 0]]
    for name in ("sad", "angry"):
        rise = change[:, classes.index(name)] - change[:, neutral]
        print(f"   normal -> sad, each person: the {name}-versus-neutral logit (before T) rises by more than 0.1 for "
              f"{int(np.sum(rise > 0.1))} of {len(rise)}, median {np.median(rise):+.2f}, most {rise.max():+.2f}")
    import keras
    from sklearn.linear_model import LogisticRegression
    features_model = keras.Model(predictor.model.input, predictor.model.layers[
        [layer.name for layer in predictor.model.layers].index(LOGITS_LAYER) - 1].output)

    def features(inputs):
        return np.concatenate([(features_model.predict_on_batch(inputs[i:i + 256])
                                + features_model.predict_on_batch(inputs[i:i + 256][:, :, ::-1])) / 2
                               for i in range(0, len(inputs), 256)])
    yale_features = features(served)
    predicted = np.zeros_like(labels)
    for person in np.unique(people):
        held = people == person
        probe = LogisticRegression(C=0.01, max_iter=5000).fit(yale_features[~held], labels[~held])
        predicted[held] = probe.predict(yale_features[held])
    print("   last layer trained on the other Yale people (leave one out): "
          f"Yale {yale_counts(predicted, labels, classes)}")
    train_features, val_features = features(dataset.train.images), features(dataset.val.images)
    for weighting in (None, "balanced"):
        head = LogisticRegression(C=0.01, max_iter=3000, class_weight=weighting)
        head.fit(train_features, dataset.train.labels)
        print(f"   last layer refitted on FER2013's training faces ({weighting or 'plain'}): "
              f"Yale {yale_counts(head.predict(yale_features), labels, classes)}  |  "
              f"{val_figures(head.predict(val_features), dataset.val.labels, len(classes))}")


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
