"""Evaluate trained emotion models on a test split: how good, where they fail, how well calibrated.

    python evaluate.py --model models/emotion_model.h5 --model models/baseline_cnn.h5 \\
        --data dataset/fer2013/test

The story, top to bottom: load the split the way training loaded faces (classes matched
to the model card by name), predict it in batches, then write under ``reports/<model>/``
the overall and per-class figures, confusion matrices, the most confident mistakes and
a reliability diagram, tied together in ``report.md``. A second benchmark, whole photos of
other people's posed expressions (the Yale faces, once ``make data PEOPLE=...`` has put them in
``dataset/people``), is read end to end through the photo path, as a front end reads a photo.
``--calibrate`` first fits a softmax temperature (and with ``--logit-offsets`` per-class logit
offsets) on the validation part of the model's own training data (never on the split being
reported) and stores it in the model card, so every front end shows calibrated confidence. With
several models, ``reports/comparison.md`` sets them side by side.
On a data set with a crowd's votes (FER+: ten people a face) the model is also judged by the crowd:
how often it says what most people said, the probability it gives their choice, the cross-entropy to
their votes, its calibration against their shares, and how often FER2013's own label agrees with
them; ``--record-crowd`` stores these in the card.
``--personal FOLDER`` measures a personal read-out instead (:mod:`utils.train.personal`): each person's
photos read by the model as shipped and by a last layer fitted on that person's other photos.
"""
import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from datetime import datetime, timezone

from utils.cli import run_cli
from utils.defaults import EMOTION_MODEL, FER2013_TEST, IDENTITY_DATA, project_path
from utils.faces.detect import check_detector, DEFAULT_DETECTOR, DETECTORS

# Defaults: the shipped model on FER2013's PublicTest images.
MODEL = EMOTION_MODEL
DATA = FER2013_TEST
USAGE = "PublicTest"
OUT = "reports"
BATCH_SIZE = 256
MISTAKES = 24
OFFSET_STRENGTH = 1.0    # --logit-offsets: the fitted offsets are multiplied by this
# The second benchmark: the people's photos `make data PEOPLE=...` puts here, read when they are named
# by expression (the Yale faces are: subject01/happy.png ...); a class's own photos named otherwise are left out.
FACES_BENCHMARK = IDENTITY_DATA
NO_BENCHMARK = "none"    # --faces-benchmark none: skip the second benchmark
TIMING_CALLS = 50
TIMING_WARMUP = 5
# A photo-path crop counts as on the face when at most this share of it comes from the grey square.
MOSTLY_FACE = 0.1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", metavar="PATH",
                        help=f"a trained model (.h5 or .keras) with its card; repeat to compare (default {MODEL})")
    parser.add_argument("--data", default=DATA, help="a folder of class folders, fer2013.csv, or FER+ (make data "
                                                     "FERPLUS=...: its --usage faces, judged by their ten votes)")
    parser.add_argument("--usage", choices=("PublicTest", "PrivateTest"), default=USAGE,
                        help="which fer2013.csv rows (or FER+ faces) to report on")
    parser.add_argument("--record-crowd", action="store_true",
                        help="on a data set with votes: store the crowd figures in each model's card (the Models "
                             "page shows them)")
    parser.add_argument("--out", default=OUT, help="reports go to OUT/<model name>/")
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    parser.add_argument("--calibrate", action="store_true",
                        help="fit a softmax temperature on the model's validation split and store it in its card")
    parser.add_argument("--logit-offsets", action="store_true",
                        help="with --calibrate: also fit per-class logit offsets for balanced accuracy on the "
                             "validation split and store them in the card beside the temperature")
    parser.add_argument("--offset-strength", type=float, default=OFFSET_STRENGTH, metavar="S",
                        help=f"with --logit-offsets: store S times the fitted offsets (default {OFFSET_STRENGTH})")
    parser.add_argument("--faces-benchmark", metavar="PATH",
                        help="a second benchmark of whole photos read through the photo path: one folder per "
                             "person with photos named by expression (the Yale faces), or a folder of class "
                             f"folders of photos (default {FACES_BENCHMARK} when its photos are named so; "
                             "'none' to skip)")
    parser.add_argument("--val-data", metavar="PATH",
                        help="the training data to rebuild the validation split from (default: the card's)")
    parser.add_argument("--validation", action="store_true",
                        help="report on the validation split training held out (rebuilt from the card's data, "
                             "fraction and seed, or --val-data) instead of --data: for choosing between models "
                             "without looking at the test split")
    parser.add_argument("--photo-path", action="store_true",
                        help="also classify each reported face the way a photo is: centred on a grey square, found by "
                             "the face detector, turned upright and cut out; both accuracies are reported")
    parser.add_argument("--detector", choices=DETECTORS, default=None,
                        help=f"the face detector of --photo-path (default {DEFAULT_DETECTOR})")
    parser.add_argument("--personal", metavar="FOLDER",
                        help="measure a personal read-out instead of the test split: FOLDER/person/expression/"
                             "photos (or photos named by expression, as the Yale faces), each photo read by the "
                             "model as shipped and by a last layer fitted on the person's other photos")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--mistakes", type=int, default=MISTAKES, help="how many confident mistakes to show")
    args = parser.parse_args(argv)
    args.model = args.model or [MODEL]
    if args.batch_size < 1 or args.mistakes < 0:
        parser.error("--batch-size must be positive and --mistakes not negative")
    if args.validation and args.calibrate:
        parser.error("--calibrate fits on the validation split: report it on a test split, not --validation")
    if args.logit_offsets and not args.calibrate:
        parser.error("--logit-offsets are fitted with the temperature: add --calibrate")
    if args.personal and (args.calibrate or args.validation or args.photo_path):
        parser.error("--personal measures the read-out alone: leave out --calibrate, --validation and --photo-path")
    if args.offset_strength < 0:
        parser.error("--offset-strength must not be negative")
    args.faces_benchmark_optional = args.faces_benchmark is None   # the default: read only when it fits
    if args.faces_benchmark is None:
        args.faces_benchmark = project_path(FACES_BENCHMARK)
    if args.faces_benchmark == NO_BENCHMARK:
        args.faces_benchmark = None
    return args


# Load the split.

def load_split(path, card, usage, cache):
    """The split with labels in the card's class order; read once per input shape and class list."""
    from utils.train.datasets import DatasetError, load_test_split
    classes = [name.lower() for name in card.classes]
    key = (tuple(classes), card.input.shape)
    if key not in cache:
        try:
            cache[key] = load_test_split(path, classes, card.input.size, card.input.channels, usage)
        except (UnicodeDecodeError, csv.Error):
            raise DatasetError(f"{path} is neither a folder of class folders nor a readable fer2013.csv")
    return cache[key]


def validation_split(card, val_data, cache):
    """``(source, split)``: the validation faces training held out, rebuilt from the card's data
    (or ``val_data``), fraction and seed; read once per source, split and input shape."""
    from utils.train.datasets import DatasetError, load_dataset
    if card.training is None:
        raise DatasetError("the model card has no training record to rebuild the validation split from")
    source = val_data or card.training.data
    if not os.path.exists(source):
        raise DatasetError(f"no training data at {source} to rebuild the validation split from "
                           "(pass --val-data PATH)")
    fraction, seed = card.training.val_fraction, card.training.seed
    key = ("validation", os.path.realpath(source), fraction, seed, card.input.shape)
    if key not in cache:
        cache[key] = load_dataset(source, fraction, seed, card.input.size, card.input.channels)
    dataset = cache[key]
    if [name.lower() for name in dataset.classes] != [name.lower() for name in card.classes]:
        raise DatasetError(f"{source} has classes {dataset.classes}, the model card {list(card.classes)}")
    if len(dataset.val) == 0:
        raise DatasetError(f"{source} gives an empty validation split")
    return source, dataset.val


# Predict.

def batched_logits(predictor, images, batch_size, description):
    """Logits for every face, in batches, with a progress bar."""
    import numpy as np
    from tqdm import tqdm
    starts = range(0, len(images), batch_size)
    return np.concatenate([predictor.logits(images[start:start + batch_size])
                           for start in tqdm(starts, desc=description, unit=" batches")])


def ms_per_face(predictor, face):
    """Median milliseconds of one single-face call, after a warm-up: what a front end waits."""
    import numpy as np
    batch = face[None]
    for _ in range(TIMING_WARMUP):
        predictor.probabilities(batch)
    timings = []
    for _ in range(TIMING_CALLS):
        start = time.perf_counter()
        predictor.probabilities(batch)
        timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000)


# Calibrate.

def calibrate(predictor, model_path, args, test_logits, test_labels, split_cache):
    """Fit T (and with ``--logit-offsets`` per-class offsets) on the validation split training held
    out, store them in the card, report ECE on test. The card's calibration is replaced whole: a run
    without ``--logit-offsets`` leaves none."""
    from utils.model.card import Calibration, card_path, write_card
    from utils.model.predict import softmax
    from utils.train import metrics
    from utils.train.datasets import DatasetError
    card = predictor.card
    source = args.val_data or (card.training.data if card.training else None)
    if source and os.path.realpath(source) == os.path.realpath(args.data):
        raise DatasetError("--calibrate fits on validation data, never on the split being reported")
    source, validation = validation_split(card, source, split_cache)
    val_logits = batched_logits(predictor, validation.images, args.batch_size, "validation")
    temperature = round(metrics.fit_temperature(val_logits, validation.labels), 4)
    offsets, offsets_note = None, {}
    if args.logit_offsets:
        fitted = metrics.fit_logit_offsets(val_logits, validation.labels, temperature) * args.offset_strength
        offsets = [round(float(value), 4) for value in fitted]

        def val_macro_recall(offsets):
            predicted = softmax(val_logits, temperature, offsets).argmax(axis=1)
            return round(metrics.summary(validation.labels, predicted, len(predictor.classes))["macro_recall"], 4)
        offsets_note = {"logit_offsets": dict(zip(predictor.classes, offsets)),
                        "offsets_fitted_for": "balanced accuracy (macro recall) on validation",
                        "offset_strength": args.offset_strength,
                        "val_macro_recall_before": val_macro_recall(None),
                        "val_macro_recall_after": val_macro_recall(offsets)}
    card = dataclasses.replace(card, calibration=Calibration(
        temperature=temperature,
        ece_before=round(metrics.expected_calibration_error(softmax(test_logits), test_labels), 4),
        ece_after=round(metrics.expected_calibration_error(softmax(test_logits, temperature, offsets), test_labels), 4),
        fitted_on="validation", val_images=len(validation), val_data=source, ece_bins=metrics.ECE_BINS,
        ece_measured_on=args.data, **offsets_note))
    write_card(card_path(model_path), card)
    predictor.card = card
    predictor.temperature, predictor.logit_offsets = card.logit_calibration()


def record_crowd(predictor, model_path, result, data):
    """The crowd figures into the model's card, atomically (the Models page shows them)."""
    from utils.model.card import CrowdMetrics, card_path, write_card
    card = dataclasses.replace(predictor.card, crowd=CrowdMetrics.measured(data, result["crowd"]))
    write_card(card_path(model_path), card)
    predictor.card = card


# Evaluate one model and write its report.

def evaluate_model(model_path, args, split_cache):
    """Every figure for one model, written under OUT/<name>/; returns the summary."""
    import numpy as np

    from utils import cpu
    from utils.media import charts, grids
    from utils.model.predict import softmax
    from utils.train import metrics
    name = os.path.splitext(os.path.basename(model_path))[0]
    predictor = load_predictor(model_path)
    if args.validation:
        source, split = validation_split(predictor.card, args.val_data, split_cache)
        reported_on = f"{source} (validation split)"
    else:
        split, reported_on = load_split(args.data, predictor.card, args.usage, split_cache), args.data
    if args.record_crowd and split.votes is None:   # said before any model is read through
        from utils.train.datasets import DatasetError
        raise DatasetError(f"{reported_on} has no votes to judge the model by: --record-crowd needs FER+")
    classes = predictor.classes
    logits = batched_logits(predictor, split.images, args.batch_size, f"predicting {name}")
    if args.calibrate:
        calibrate(predictor, model_path, args, logits, split.labels, split_cache)
    probabilities = predictor.calibrated(logits)
    predicted = probabilities.argmax(axis=1)

    table = metrics.per_class_table(split.labels, predicted, classes)
    counts, shares = metrics.confusion(split.labels, predicted, len(classes))
    raw_bins = metrics.reliability_bins(softmax(logits), split.labels)
    ece_raw = metrics.expected_calibration_error(softmax(logits), split.labels)
    ece = metrics.expected_calibration_error(probabilities, split.labels)
    mistakes = metrics.confident_mistakes(probabilities, split.labels, args.mistakes)
    result = {
        "name": name, "model": model_path, "architecture": predictor.card.architecture,
        "data": reported_on, "images": len(split), "skipped": int(split.skipped),
        **metrics.summary(split.labels, predicted, len(classes)),
        "per_class": {cls: {key: (int(value) if key == "support" else float(value)) for key, value in row.items()}
                      for cls, row in table.to_dict(orient="index").items()},
        "temperature": predictor.temperature,
        "logit_offsets": (None if predictor.logit_offsets is None
                          else dict(zip(classes, (float(v) for v in predictor.logit_offsets)))),
        "ece": ece, "ece_uncalibrated": ece_raw,
        "ms_per_face": ms_per_face(predictor, split.images[0]), "machine": cpu.describe(),
        "precision": predictor.precision,
        "photo_path": photo_path_summary(predictor, split, args, predicted) if args.photo_path else None,
        "faces_benchmark": faces_benchmark_summary(predictor, args) if args.faces_benchmark else None,
        "crowd": (metrics.crowd_metrics(probabilities, split.votes, split.labels, classes, split.fer2013)
                  if split.votes is not None else None),
        "parameters": int(predictor.model.count_params()),
        "file_mb": os.path.getsize(model_path) / 1e6,
    }

    if args.record_crowd:
        record_crowd(predictor, model_path, result, reported_on)
    folder = os.path.join(args.out, name)
    os.makedirs(folder, exist_ok=True)
    table.to_csv(os.path.join(folder, "per_class.csv"), float_format="%.4f")
    with open(os.path.join(folder, "per_class.md"), "w") as handle:
        handle.write(markdown_table(table) + "\n")
    curves = [("uncalibrated", raw_bins, ece_raw)]
    if predictor.temperature != 1.0 or predictor.logit_offsets is not None:
        label = f"T = {predictor.temperature:.2f}" + (" and offsets" if predictor.logit_offsets is not None else "")
        curves.append((label, metrics.reliability_bins(probabilities, split.labels), ece))
    figures = {
        "confusion_counts.png": charts.confusion_heatmap(counts, classes, title=f"{name}: confusion matrix (faces)"),
        "confusion_normalised.png": charts.confusion_heatmap(shares, classes, normalised=True,
                                                             title=f"{name}: confusion matrix (row shares)"),
        "reliability.png": charts.reliability_diagram(curves),
        "mistakes.png": grids.mistakes_grid(split.images[mistakes], [classes[i] for i in split.labels[mistakes]],
                                            [classes[i] for i in predicted[mistakes]],
                                            probabilities[mistakes].max(axis=1)),
    }
    benchmark = result["faces_benchmark"]
    if benchmark:
        confusion = benchmark["confusion"]
        figures["faces_confusion.png"] = charts.confusion_heatmap(
            np.array(confusion["counts"]), confusion["columns"], row_classes=confusion["rows"],
            title=f"{name}: {benchmark['name']} (photos)")
    for file_name, figure in figures.items():
        figure.savefig(os.path.join(folder, file_name), dpi=100)
    result["report"] = os.path.join(folder, "report.md")
    with open(os.path.join(folder, "metrics.json"), "w") as handle:
        json.dump(result, handle, indent=2)
    with open(result["report"], "w") as handle:
        handle.write(report_markdown(result, table))
    return result


def photo_path_summary(predictor, split, args, direct_predicted):
    """Accuracy of the photo path beside the direct one, how many faces the detector found, and both
    accuracies apart for the crops that stay on the face and for those reaching into the grey square."""
    import numpy as np
    from utils.train.photo_path import PHOTO_PAD, served_faces
    detector = check_detector(args.detector)
    served, on_square = served_faces(split.images, detector, predictor.crop_context)
    logits = batched_logits(predictor, served, args.batch_size, "predicting the photo path")
    right = predictor.calibrated(logits).argmax(axis=1) == split.labels
    direct_right = direct_predicted == split.labels
    found = np.isfinite(on_square)
    on_face = found & (on_square <= MOSTLY_FACE)

    def part(faces):
        return {"faces": int(faces.sum()), "accuracy": float(right[faces].mean()) if faces.any() else None,
                "direct_accuracy": float(direct_right[faces].mean()) if faces.any() else None}
    return {"detector": detector, "pad": PHOTO_PAD, "found": int(found.sum()), "faces": len(split),
            "accuracy": float(right.mean()), "on_face": part(on_face), "into_square": part(found & ~on_face)}


def faces_benchmark_summary(predictor, args):
    """The second benchmark: each photo's first face found, turned upright, cut out and classified as
    a front end does (:mod:`utils.train.photo_benchmark`); accuracy, macro recall, per-class recall, confusion.
    None when the default folder is missing or holds no photos named by the model's classes."""
    from utils.train import photo_benchmark
    from utils.train.datasets import DatasetError
    detector = check_detector(args.detector)
    try:
        paths, labels, layout = photo_benchmark.find_photos(args.faces_benchmark, predictor.classes)
    except DatasetError:
        if args.faces_benchmark_optional:   # no such photos where the default looks: no second benchmark
            return None
        raise
    inputs, found = photo_benchmark.photo_inputs(predictor, paths, detector)
    logits = batched_logits(predictor, inputs, args.batch_size, "predicting the photo benchmark")
    predicted = predictor.calibrated(logits).argmax(axis=1)
    name = os.path.basename(os.path.normpath(args.faces_benchmark))
    return {"name": name, "data": args.faces_benchmark, "layout": layout, "detector": detector,
            "found": int(found.sum()), **photo_benchmark.summary(labels, predicted, predictor.classes)}


def load_predictor(model_path):
    """The model and its card, or a one-line error saying what is wrong with the file."""
    from utils.model.predict import Predictor
    try:
        return Predictor.from_path(model_path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"cannot load the model {model_path}: {str(error).splitlines()[0] if str(error) else error!r}")


def markdown_table(frame, digits=3):
    """A pandas frame as a GitHub Markdown table (pandas' own needs the tabulate package)."""
    def cell(value):
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return f"{value:,}" if isinstance(value, int) else str(value)
    header = [frame.index.name or ""] + [str(column) for column in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for label, row in zip(frame.index, frame.itertuples(index=False)):
        lines.append("| " + " | ".join(cell(v.item() if hasattr(v, "item") else v) for v in (label, *row)) + " |")
    return "\n".join(lines)


def report_markdown(result, table):
    """report.md: the figures and pictures of one model, each with a sentence on how to read it."""
    import pandas as pd
    overall = pd.DataFrame(
        {"precision": [result["macro_precision"], result["weighted_precision"]],
         "recall": [result["macro_recall"], result["weighted_recall"]],
         "f1": [result["macro_f1"], result["weighted_f1"]]},
        index=pd.Index(["macro", "weighted"], name="average"))
    if result["logit_offsets"]:
        calibration = (f"With the card's temperature T = {result['temperature']:.3f} and per-class logit offsets "
                       f"(fitted on validation data) the expected calibration error is {result['ece']:.3f}; "
                       f"without them, {result['ece_uncalibrated']:.3f}.")
    elif result["temperature"] != 1.0:
        calibration = (f"With the card's temperature T = {result['temperature']:.3f} (fitted on validation data) "
                       f"the expected calibration error is {result['ece']:.3f}; "
                       f"without it, {result['ece_uncalibrated']:.3f}.")
    else:
        calibration = (f"The expected calibration error is {result['ece']:.3f}; the card has no temperature "
                       "yet (run with `--calibrate` to fit one on validation data).")
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""# Evaluation: {result['name']}

Model `{result['model']}` ({result['architecture']}, {result['parameters']:,} parameters,
{result['file_mb']:.1f} MB) on `{result['data']}`: {result['images']:,} faces
({result['skipped']} unreadable skipped), served in {result['precision']}. Written {created}.

## Overall

Accuracy **{result['accuracy']:.3f}**; balanced accuracy (macro recall, the mean of the classes'
accuracies) **{result['macro_recall']:.3f}**. Macro averages weigh every class the same, so rare
classes count as much as common ones; weighted averages follow the class sizes.

{markdown_table(overall)}

## Per class

A class's accuracy is the share of its faces labelled correctly (its recall);
precision is the share of faces given that label that truly have it.

{markdown_table(table)}

## Confusion matrices

Rows are the true classes, columns the predicted ones. The counts show where most
errors are; the row shares show each class's accuracy on the diagonal and what it is
mistaken for along its row.

![confusion matrix, counts](confusion_counts.png)

![confusion matrix, row shares](confusion_normalised.png)

## Calibration

Does a confidence of 0.8 mean right 80% of the time? Faces are grouped into 15
confidence bins; a bar below the diagonal is over-confidence. {calibration}

![reliability diagram](reliability.png)

## Most confident mistakes

The wrong answers the model was surest of: some are mislabelled faces, some show
which expressions look alike to the network.

![most confident mistakes](mistakes.png)

{crowd_section(result)}
{photo_path_section(result)}
{faces_benchmark_section(result)}
## Speed

{result['ms_per_face']:.2f} ms per face: the median of {TIMING_CALLS} single-face calls, after a warm-up,
without face detection. Measured on {result['machine']}.
"""


def crowd_section(result):
    """report.md's paragraph on the crowd's votes, when the data set has them."""
    crowd = result.get("crowd")
    if not crowd:
        return ""
    import pandas as pd

    from utils.train.metrics import ECE_BINS
    table = pd.DataFrame({"majority accuracy": list(crowd["per_class"].values())},
                         index=pd.Index(list(crowd["per_class"]), name="the crowd's class"))
    fer2013 = (f" FER2013's own label is the crowd's choice on **{crowd['fer2013_agreement']:.1%}** of the "
               f"{crowd['fer2013_faces']:,} faces whose FER2013 label is known; the model says FER2013's label on "
               f"{crowd['fer2013_accuracy']:.1%} of them." if "fer2013_agreement" in crowd else "")
    return f"""## Judged by the crowd

Each of these {crowd['faces']:,} faces was labelled by ten people. The model says what most of them
said on **{crowd['majority_accuracy']:.1%}** of the faces; it gives the crowd's choice a probability of {crowd['crowd_choice_probability']:.3f} on average;
the cross-entropy from the votes' shares to its probabilities is {crowd['vote_cross_entropy']:.3f} nats;
against the share of votes its label got, its confidence is off by {crowd['vote_ece']:.3f} on average
(the expected calibration error, {ECE_BINS} bins).{fer2013}

{markdown_table(table)}
"""


def photo_path_section(result):
    """report.md's paragraph on the photo path, when it was measured."""
    photo = result.get("photo_path")
    if not photo:
        return ""
    on_face, into_square = photo["on_face"], photo["into_square"]

    def accuracies(part):
        return (f"{part['accuracy']:.3f} through the photo path against {part['direct_accuracy']:.3f} directly"
                if part["faces"] else "no faces")
    return f"""## Through the photo path

Each face was centred on a grey square {photo['pad']} px wider on each side, found by
the {photo['detector']} detector ({photo['found']:,} of {photo['faces']:,} found; the others were classified
whole), turned upright, cut out and preprocessed, as every front end does with a photo:
accuracy **{photo['accuracy']:.3f}**, against {result['accuracy']:.3f} for the 48x48 faces as they are.

FER2013 keeps no more of each picture than its 48x48 face, so turning a face upright and framing
it as the canonical face is framed brings some of the grey square into the crop. Of the faces
found, {on_face['faces']:,} crops come at least {1 - MOSTLY_FACE:.0%} from the face itself:
{accuracies(on_face)}. The other {into_square['faces']:,} reach further into the grey square:
{accuracies(into_square)}.
"""


def faces_benchmark_section(result):
    """report.md's paragraph on the second benchmark, when it was read."""
    import pandas as pd
    benchmark = result.get("faces_benchmark")
    if not benchmark:
        return ""
    table = pd.DataFrame({"photos": [row["photos"] for row in benchmark["per_class"].values()],
                          "right": [row["right"] for row in benchmark["per_class"].values()],
                          "recall": [row["recall"] for row in benchmark["per_class"].values()]},
                         index=pd.Index(list(benchmark["per_class"]), name="class"))
    layout = ("one folder per person, each photo named by its expression" if benchmark["layout"] == "people"
              else "one folder of photos per class")
    return f"""## Other people's faces: {benchmark['name']}

{benchmark['photos']} whole photos of posed expressions from `{benchmark['data']}` ({layout}), read
end to end as a front end reads a photo: the first face found by the {benchmark['detector']} detector
({benchmark['found']} of {benchmark['photos']} found; the others were classified whole), turned upright,
cut out and classified. Accuracy **{benchmark['accuracy']:.3f}**, balanced accuracy (macro recall over
the {len(benchmark['per_class'])} classes it has) **{benchmark['macro_recall']:.3f}**.

{markdown_table(table)}

![confusion matrix of the photo benchmark](faces_confusion.png)
"""


# A personal read-out.

def evaluate_personal(model_path, args):
    """The personal read-out's measurement for one model (:func:`utils.train.personal.measure`), written
    as OUT/<name>/personal.json and personal.md; returns the summary."""
    from utils import cpu
    from utils.train import personal
    name = os.path.splitext(os.path.basename(model_path))[0]
    predictor = load_predictor(model_path)
    started = time.perf_counter()
    result = {"name": name, "model": model_path, "precision": predictor.precision, "machine": cpu.describe(),
              "personal": personal.measure(predictor, args.personal, check_detector(args.detector), args.batch_size)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    folder = os.path.join(args.out, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "personal.json"), "w") as handle:
        json.dump(result, handle, indent=2)
    result["report"] = os.path.join(folder, "personal.md")
    with open(result["report"], "w") as handle:
        handle.write(personal_markdown(result))
    return result


def personal_markdown(result):
    """personal.md: before and after, overall, per class, per person, and the frames curve."""
    import pandas as pd
    measured = result["personal"]
    before, after, among = measured["before"], measured["after"], measured["before_among_shown"]
    per_class = pd.DataFrame({"photos": [row["photos"] for row in after["per_class"].values()],
                              "as shipped": [before["per_class"][cls]["recall"] for cls in after["per_class"]],
                              "read-out": [row["recall"] for row in after["per_class"].values()]},
                             index=pd.Index(list(after["per_class"]), name="class"))
    people = pd.DataFrame({"photos": [row["photos"] for row in measured["people"]],
                           "as shipped": [row["before"] for row in measured["people"]],
                           "read-out": [row["after"] for row in measured["people"]]},
                          index=pd.Index([row["person"] for row in measured["people"]], name="person"))
    curve = " · ".join(f"{count}: {row['accuracy']:.3f}" for count, row in measured["frames"].items()
                       if row["accuracy"] is not None)
    return f"""# A personal read-out: {result['name']}

{measured['photos_count']} photos of {measured['people_count']} people from `{measured['data']}`, each read end
to end through the photo path ({measured['found']} faces found; the others classified whole), served in
{result['precision']}. Each photo is read by the model as shipped and by a read-out (the last layer fitted
again, pulled towards the model's own with strength {measured['strength']}) fitted on that person's other
photos only: leave one photo out. {measured['left_out']} photos had no other photo of their person and are
left out of both figures.

Accuracy as shipped **{before['accuracy']:.3f}**, with the read-out **{after['accuracy']:.3f}** (balanced:
{before['macro_recall']:.3f} and {after['macro_recall']:.3f}). The read-out only knows the expressions each
person showed; the model as shipped, choosing only among those, scores {among['accuracy']:.3f}.

{markdown_table(per_class)}

Per person:

{markdown_table(people)}

How many photos per expression the read-out needs (at most this many of the person's other photos of
each expression, the same leave-one-out): {curve}.

Measured in {result['seconds']} s on {result['machine']}.
"""


# Compare the models.

def write_comparison(results, out):
    """comparison.csv/.md and one bar chart of per-class accuracy across the models."""
    import pandas as pd

    from utils.media import charts
    classes = list(dict.fromkeys(cls for result in results for cls in result["per_class"]))
    rows = {}
    for result in results:
        benchmark = result["faces_benchmark"]
        rows[result["name"]] = {
            "accuracy": result["accuracy"],
            **({"photo path": result["photo_path"]["accuracy"]} if result["photo_path"] else {}),
            "macro recall": result["macro_recall"],
            "macro F1": result["macro_f1"], "ECE": result["ece"],
            **({f"{benchmark['name']} accuracy": benchmark["accuracy"],
                f"{benchmark['name']} macro recall": benchmark["macro_recall"],
                **{f"{benchmark['name']} {cls}": row["recall"] for cls, row in benchmark["per_class"].items()}}
               if benchmark else {}),
            "ms/face": result["ms_per_face"], "parameters": result["parameters"], "MB": result["file_mb"],
            **{cls: result["per_class"].get(cls, {}).get("accuracy", float("nan")) for cls in classes}}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    frame.to_csv(os.path.join(out, "comparison.csv"), float_format="%.4f")
    benchmark = results[0]["faces_benchmark"]
    benchmark_note = (f" Columns starting `{benchmark['name']}` are the second benchmark: {benchmark['photos']} whole "
                      f"photos of other people's posed expressions from `{benchmark['data']}`, read through the photo "
                      "path (accuracy, macro recall over its classes, and each class's recall)." if benchmark else "")
    chart = charts.per_class_accuracy_bars({name: frame.loc[name, classes].tolist() for name in frame.index}, classes)
    chart.savefig(os.path.join(out, "per_class_accuracy.png"), dpi=100)
    path = os.path.join(out, "comparison.md")
    with open(path, "w") as handle:
        handle.write(f"# Model comparison on `{results[0]['data']}`\n\n"
                     "ECE is the expected calibration error (15 bins) of the confidence the front ends show; "
                     "photo path, where measured, is the accuracy of the faces found, turned upright and cut out "
                     "from grey squares (--photo-path); macro recall is the balanced accuracy (the mean of the "
                     "classes' accuracies); ms/face is one face, without detection. Class columns are per-class "
                     f"accuracy on `{results[0]['data']}`.{benchmark_note}\n\n"
                     f"{markdown_table(frame)}\n\nEvery figure computed in {results[0]['precision']}; "
                     f"speed measured on {results[0]['machine']}.\n\n"
                     "![per-class accuracy](per_class_accuracy.png)\n")
    return path


def main_personal(args):
    """evaluate.py --personal: the personal read-out's measurement for every model."""
    log = sys.stderr if args.json else sys.stdout
    results = []
    for model_path in args.model:
        result = evaluate_personal(model_path, args)
        results.append(result)
        measured = result["personal"]
        curve = ", ".join(f"{count}: {row['accuracy']:.3f}" for count, row in measured["frames"].items()
                          if row["accuracy"] is not None)
        print(f"{result['name']}: personal read-out, {measured['photos_count']} photos of {measured['people_count']} "
              f"people: accuracy {measured['before']['accuracy']:.3f} as shipped -> {measured['after']['accuracy']:.3f} "
              f"with each person's read-out (as shipped among the expressions shown: "
              f"{measured['before_among_shown']['accuracy']:.3f}); photos per expression {curve}; "
              f"report {result['report']}", file=log)
    if args.json:
        json.dump({"data": args.personal, "models": results}, sys.stdout, indent=2)
        print()


def main(argv=None):
    args = parse_args(argv)
    if args.personal:
        return main_personal(args)
    log = sys.stderr if args.json else sys.stdout
    split_cache, results = {}, []
    for model_path in args.model:
        result = evaluate_model(model_path, args, split_cache)
        results.append(result)
        ece = f"ECE {result['ece']:.3f}" if result["temperature"] == 1.0 else (
            f"ECE {result['ece_uncalibrated']:.3f} -> {result['ece']:.3f} at T = {result['temperature']:.3f}")
        photo = result["photo_path"]
        photo = (f"; photo path {photo['accuracy']:.3f} ({photo['found']} of {photo['faces']} faces found)"
                 if photo else "")
        benchmark = result["faces_benchmark"]
        benchmark = (f"; {benchmark['name']}: accuracy {benchmark['accuracy']:.3f}, macro recall "
                     f"{benchmark['macro_recall']:.3f} ("
                     + ", ".join(f"{cls} {row['right']}/{row['photos']}" for cls, row in benchmark["per_class"].items())
                     + ")" if benchmark else "")
        crowd = result["crowd"]
        crowd = (f"; the crowd's majority {crowd['majority_accuracy']:.3f}, its choice's probability "
                 f"{crowd['crowd_choice_probability']:.3f}, cross-entropy to its votes {crowd['vote_cross_entropy']:.3f}"
                 if crowd else "")
        print(f"{result['name']}: accuracy {result['accuracy']:.3f}, macro recall {result['macro_recall']:.3f}, "
              f"macro F1 {result['macro_f1']:.3f}, {ece}{crowd}{photo}{benchmark}; report {result['report']}", file=log)
    comparison = write_comparison(results, args.out) if len(results) > 1 else None
    if comparison:
        print(f"comparison: {comparison}", file=log)
    if args.json:
        json.dump({"data": args.data, "models": results, "comparison": comparison}, sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    run_cli(main)
