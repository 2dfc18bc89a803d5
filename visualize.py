"""Visualize: one photo -> every step of the CNN, from pixels to the softmax, and where it looked.

For one face it writes a PNG per layer (feature maps of convolutions and pooling,
bars for dense layers and the softmax, with its numbers), the first layer's kernels, Grad-CAM,
occlusion, facial regions and, when their packages are installed, SHAP and LIME,
plus an ``index.html`` that lays them out in the network's order. ``--operation``
adds the computation behind one number of a layer (the numbers the site's operation
view shows) and prints its result.

    python visualize.py photo.jpg                       # -> visualizations/index.html
    python visualize.py photo.jpg --class sad --layer block3_relu2 --methods gradcam,shap
    python visualize.py photo.jpg --operation block2_conv1:5:10:3 --operation logits:3
"""
import argparse
import html
import os
import re
import sys

from utils.defaults import EMOTION_MODEL, project_path
from utils.faces.detect import check_detector, DEFAULT_DETECTOR, DETECTORS

DEFAULT_OUT = "visualizations"
METHODS = ("gradcam", "occlusion", "regions", "shap", "lime")
DEFAULT_METHODS = "gradcam,occlusion,regions"

# What each explanation shows, beside its picture (each layer's own sentence is utils.explain.steps').
ABOUT = {
    "kernels": "The first convolution's filters: small weight patterns (edges, spots, gradients) "
               "that it slides over the face.",
    "gradcam": "Grad-CAM weighs a convolutional layer's maps by how much each raises the class's probability: "
               "red is where the network found its evidence.",
    "gradcam_classes": "Grad-CAM for every emotion: where the network looks for each one.",
    "occlusion": "A gray patch slides over the face; red marks places whose hiding lowers the class's "
                 "probability, blue places whose hiding raises it.",
    "regions": "Each facial region is hidden in turn (filled with the face's mean gray); the drop in the "
               "class's probability shows how much the network relies on it.",
    "shap": "SHAP shares the class's probability fairly among superpixels (Shapley values): red pushes "
            "towards the class, blue away from it.",
    "lime": "LIME fits a linear model to the network's answers on random on/off patterns of the same "
            "superpixels: red supports the class.",
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="a photo (JPEG, PNG, WebP, BMP ...)")
    parser.add_argument("--model", default=project_path(EMOTION_MODEL), help="a saved model with its card (default: %(default)s)")
    parser.add_argument("--face", type=int, default=0, help="which face, 0 being the largest (default 0)")
    parser.add_argument("--detector", choices=DETECTORS, default=None,
                        help=f"how faces are found (default {DEFAULT_DETECTOR}; haar is the 2001 cascade)")
    parser.add_argument("--layer", help="the layer Grad-CAM reads (default: the last convolutional map)")
    parser.add_argument("--class", dest="class_name", metavar="CLASS", help="the class to explain, by name or index "
                        "(default: the predicted one)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the PNGs and index.html (default {DEFAULT_OUT}/)")
    parser.add_argument("--methods", default=DEFAULT_METHODS,
                        help=f"comma-separated, from {', '.join(METHODS)}, or 'all' (default {DEFAULT_METHODS})")
    parser.add_argument("--operation", action="append", default=[], metavar="LAYER:CHANNEL[:Y:X]",
                        help="add the operation behind one number of a layer (a unit of a flat layer: "
                             "LAYER:UNIT) and print its result; repeat for several")
    return parser.parse_args(argv)


def operation_spec(text):
    """``"conv2:5:3:4"`` -> ``("conv2", 5, 3, 4)``; ``"logits:3"`` -> ``("logits", 3, 0, 0)``."""
    layer, *numbers = text.split(":")
    if not layer or len(numbers) not in (1, 3) or not all(number.isdigit() for number in numbers):
        raise ValueError(f"--operation '{text}' is not LAYER:CHANNEL:Y:X (or LAYER:UNIT for a flat layer)")
    channel, y, x = (int(number) for number in numbers + ["0", "0"][:3 - len(numbers)])
    return layer, channel, y, x


def parse_methods(text):
    methods = METHODS if text.strip() == "all" else [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method '{unknown[0]}' (choose from {', '.join(METHODS)}, or all)")
    return methods


class Page:
    """The PNGs written so far and the index.html that shows them in order."""

    def __init__(self, folder):
        self.folder, self.sections = folder, []

    def add(self, name, figure, title, about, extra=""):
        from utils.media.encode import figure_png
        filename = re.sub(r"[^\w.-]", "_", name) + ".png"
        with open(os.path.join(self.folder, filename), "wb") as handle:
            handle.write(figure_png(figure))
        self.sections.append((title, about, filename, extra))

    def pictures(self):
        return sum(1 for section in self.sections if section[2])

    def note(self, title, about, extra=""):
        self.sections.append((title, about, None, extra))

    def write(self, heading):
        parts = [f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(heading)}</title>",
                 "<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
                 "section{border-top:1px solid #ccc;padding:.5em 0}img{max-width:100%}"
                 "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}</style>",
                 f"</head><body><h1>{html.escape(heading)}</h1>"]
        for title, about, filename, extra in self.sections:
            image = f"<img src='{filename}' alt='{html.escape(title)}'>" if filename else ""
            about = f"<p>{html.escape(about)}</p>" if about else ""
            parts.append(f"<section><h2>{html.escape(title)}</h2>{about}{extra}{image}</section>")
        parts.append("</body></html>\n")
        path = os.path.join(self.folder, "index.html")
        with open(path, "w") as handle:
            handle.write("\n".join(parts))
        return path


def add_layers(page, loaded, face, probabilities):
    """Every layer in network order (kernels after the first convolution), softmax bars; each
    with the sentence the site shows for it."""
    from tqdm import tqdm

    from utils.explain.steps import describe_layer
    from utils.media import charts, grids
    first_conv = (loaded.layers.conv_layers() or [None])[0]
    outputs = loaded.layers.layer_outputs(face)
    for number, output in enumerate(tqdm(outputs, desc="drawing layers", unit="layer", leave=False), start=1):
        shape = "x".join(str(v) for v in output.shape)
        title = f"{number}. {output.name} ({output.kind}), output {shape}"
        about = describe_layer(loaded.predictor.model.get_layer(output.name), output.shape)
        extra = ""
        if output.kind == "softmax":
            figure = charts.probability_bars(probabilities)
            about += " (Calibrated as the model card says, the same numbers as every other front end.)"
            extra = probabilities_table(probabilities)
        elif output.array.ndim == 3:
            figure = grids.feature_map_grid(output)
        else:
            figure = charts.vector_bars(output)
        page.add(f"{number:02d}_{output.name}", figure, title, about, extra)
        if output.name == first_conv:
            page.add(f"{number:02d}_{output.name}_kernels", grids.kernel_grid(loaded.layers.first_kernels()),
                     f"{output.name} kernels", ABOUT["kernels"])


def probabilities_table(probabilities):
    """The softmax bars' numbers, one row per class of the card, in its order."""
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{p:.1%}</td></tr>" for name, p in probabilities.items())
    return f"<table class='probabilities'><tr><th>class</th><th>probability</th></tr>{rows}</table>"


def regions_table(regions):
    rows = "".join(f"<tr><td>{html.escape(r['region'])}</td><td>{r['probability'] + r['drop']:.1%}</td>"
                   f"<td>{r['probability']:.1%}</td><td>{r['drop']:+.1%}</td></tr>" for r in regions)
    return f"<table><tr><th>region</th><th>intact</th><th>hidden</th><th>drop</th></tr>{rows}</table>"


def add_methods(page, methods, loaded, face, target, layer, keypoints=None):
    """The explanations asked for, each of ``target``; SHAP/LIME only note when missing."""
    from utils.explain import figures
    from utils.explain.perturbation import occlusion_sensitivity, region_sensitivity
    from utils.explain.shap_lime import lime_map, MissingOptionalPackage, shap_map
    predictor, name = loaded.predictor, target.class_name
    if "gradcam" in methods:
        layer = loaded.gradcam.check_layer(layer)
        page.add("gradcam", figures.gradcam_figure(face, loaded.gradcam.gradcam(face, target, layer),
                                                 f"Grad-CAM: {name} at {layer}"),
                 f"Grad-CAM for {name} at {layer}", ABOUT["gradcam"])
        cams = loaded.gradcam.all_classes(face, predictor, layer)
        probabilities = dict(zip(predictor.classes, predictor.probabilities(face[None])[0]))
        page.add("gradcam_classes", figures.gradcam_classes_figure(face, cams, predictor.classes, probabilities),
                 "Grad-CAM for every class", ABOUT["gradcam_classes"])
    if "occlusion" in methods:
        page.add("occlusion", figures.attribution_figure(face, occlusion_sensitivity(predictor, face, target),
                                                       f"Occlusion: drop in {name}"),
                 f"Occlusion sensitivity for {name}", ABOUT["occlusion"])
    if "regions" in methods:
        regions = region_sensitivity(predictor, face, target, keypoints)
        page.add("regions", figures.region_figure(face, regions, name), f"Facial regions for {name}",
                 ABOUT["regions"], regions_table(regions))
    for method, compute, label in (("shap", shap_map, "SHAP"), ("lime", lime_map, "LIME")):
        if method in methods:
            try:
                values, segments = compute(predictor, face, target)
            except MissingOptionalPackage as missing:
                print(f"note: {missing}", file=sys.stderr)
                page.note(f"{label} (not installed)", str(missing))
                continue
            page.add(method, figures.attribution_figure(face, values, f"{label}: {name}", segments),
                     f"{label} for {name}", ABOUT[method])


def operation_views(loaded, face, wanted):
    """The operation view of each ``(layer, channel, y, x)`` asked for; a ValueError names what is valid."""
    return [loaded.operations.operation(face, *spot) for spot in wanted]


def add_operations(page, views, classes):
    """One section per operation: its sentences and every number, as text (utils.explain.operation_text)."""
    from utils.explain import operation_text
    for view in views:
        labels = operation_text.unit_labels(view, classes)
        text = "\n".join(operation_text.lines(view, labels))
        page.note(f"Operation: {view['layer']} at {operation_text.position(view)}", "", f"<pre>{html.escape(text)}</pre>")


def main(argv=None):
    args = parse_args(argv)
    methods = parse_methods(args.methods)
    wanted = [operation_spec(text) for text in args.operation]
    detector = check_detector(args.detector)
    from utils.media.decode import read_image
    image = read_image(args.image)
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"no model at {args.model} (train one with train.py, or name one with --model)")
    from utils.explain import operation_text
    from utils.faces.pictures import input_figure
    from utils.serving.model_file import LoadedModel  # imports TensorFlow: seconds, so only once the inputs are there
    from utils.explain.steps import describe_alignment, describe_input
    from utils.explain.targets import parse_class

    loaded = LoadedModel.load(args.model)
    predictor = loaded.predictor
    index = None if args.class_name is None else parse_class(predictor.classes, args.class_name)
    if args.layer:
        loaded.gradcam.check_layer(args.layer)
    chosen = predictor.choose_face(image, args.face, detector=detector)
    if chosen.prediction["whole_image"]:
        print("note: no face found; explaining the whole image", file=sys.stderr)
    face = chosen.input
    operations = operation_views(loaded, face, wanted)
    probabilities = predictor.probabilities(face[None])[0]
    predicted = int(probabilities.argmax())
    target = loaded.target(predicted if index is None else index)

    os.makedirs(args.out, exist_ok=True)
    page = Page(args.out)
    page.add("00_input", input_figure(image, chosen.prediction, chosen.crop, face), "Input",
             f"{describe_alignment(chosen.prediction, chosen.crop.angle)} {describe_input(face.shape)}")
    add_layers(page, loaded, face, dict(zip(predictor.classes, probabilities)))
    page.note("What the explanations explain", f"Every explanation below explains {target.describe()}.")
    add_methods(page, methods, loaded, face, target, args.layer, chosen.crop.keypoints_at(*face.shape[:2]))
    add_operations(page, operations, predictor.classes)
    heading = (f"{os.path.basename(args.image)}: {predictor.classes[predicted]} "
               f"({probabilities[predicted]:.0%}), explaining {target.class_name}")
    path = page.write(heading)
    print(heading)
    for view in operations:
        print(operation_text.headline(view))
    print(f"wrote {page.pictures()} pictures; open {path}")
    return 0


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
