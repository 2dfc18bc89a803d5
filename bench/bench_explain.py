"""How long one face's explanation arrays take: every layer's output plus Grad-CAM,
the operation behind one position, and what a channel looks for.

The budgets on a 2-core machine: 300 ms for all layer maps plus Grad-CAM;
100 ms for one operation view, of any kind; 2 s for one channel's pattern (gradient
ascent, computed once per channel and then kept). The operation is also timed as the
Explore page asks for it, ``POST /api/explain`` with ``parts=operation`` through
Flask's test client (the server's time: the photo is decoded and its face found again
each time), beside ``/api/predict`` on the same photo. Occlusion and the facial regions are
timed too. Arrays only: figures are drawn when a front end asks for them. Median over
repeats, after a warm-up that builds the sub-models (once per loaded model, as the
front ends do); each pattern is timed once, as its first request is.

    python bench/bench_explain.py [--model models/emotion_model.h5] [--repeats 20] [--channels 3]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BUDGET_MS = 300
OPERATION_BUDGET_MS = 100
PATTERN_BUDGET_S = 2.0


def median_ms(function, repeats):
    function()  # warm-up: builds and traces the sub-models
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join("models", "emotion_model.h5"))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--channels", type=int, default=3,
                        help="channels whose pattern is timed in the first and the last convolution")
    args = parser.parse_args(argv)

    import numpy as np
    from skimage import data

    from utils.explain.perturbation import occlusion_sensitivity, region_sensitivity
    from utils.serving.model_file import LoadedModel

    loaded = LoadedModel.load(args.model)
    predictor = loaded.predictor
    face = predictor.choose_face(np.ascontiguousarray(data.astronaut()[:, :, ::-1])).input
    target = loaded.target(int(np.argmax(predictor.probabilities(face[None])[0])))

    def layers_and_gradcam():
        return loaded.layers.layer_outputs(face), loaded.gradcam.gradcam(face, target)

    timings = {
        "all layer outputs": lambda: loaded.layers.layer_outputs(face),
        "Grad-CAM (predicted class)": lambda: loaded.gradcam.gradcam(face, target),
        "all layer outputs + Grad-CAM": layers_and_gradcam,
        "Grad-CAM, every class": lambda: loaded.gradcam.all_classes(face, predictor),
        "occlusion sensitivity": lambda: occlusion_sensitivity(predictor, face, target),
        "facial regions": lambda: region_sensitivity(predictor, face, target),
    }
    print(f"model {args.model} ({predictor.card.architecture}, {len(loaded.layers.layers)} layers), "
          f"{os.cpu_count()} CPUs, median of {args.repeats}")
    results = {name: median_ms(function, args.repeats) for name, function in timings.items()}
    for name, milliseconds in results.items():
        print(f"{name:32s} {milliseconds:7.1f} ms")
    total = results["all layer outputs + Grad-CAM"]
    print(f"budget: layer outputs + Grad-CAM {total:.0f} ms of {BUDGET_MS} ms: {'ok' if total <= BUDGET_MS else 'OVER'}")
    bench_operations(predictor.model, face, args.repeats)
    bench_api(args.model, args.repeats)
    bench_patterns(predictor, args.channels)


def bench_operations(model, face, repeats):
    """The median of each layer's operation view at its centre, then the median per kind."""
    from utils.explain.operations import LayerOperations
    operations = LayerOperations(model)
    by_kind = {}
    for layer in operations.layers:
        shape = layer.output.shape[1:]
        position = (shape[0] // 2, shape[1] // 2) if len(shape) == 3 else (0, 0)
        view = operations.operation(face, layer.name, shape[-1] // 2, *position)
        by_kind.setdefault(view["kind"], []).append(
            median_ms(lambda: operations.operation(face, layer.name, shape[-1] // 2, *position), repeats))
    print("operation view, median ms per kind (layers of that kind):")
    for kind, milliseconds in by_kind.items():
        print(f"  {kind:12s} {statistics.median(milliseconds):7.1f} ms ({len(milliseconds)})")
    slowest = max(max(milliseconds) for milliseconds in by_kind.values())
    print(f"budget: slowest operation view {slowest:.0f} ms of {OPERATION_BUDGET_MS} ms: "
          f"{'ok' if slowest <= OPERATION_BUDGET_MS else 'OVER'}")


def bench_api(model_path, repeats):
    """``POST /api/explain`` with ``parts=operation`` at the centre of the first layer of each kind."""
    import io

    import cv2
    import numpy as np
    from skimage import data

    from app import create_app
    from utils.explain.layers import layer_kind
    app = create_app({"DEFAULT_MODEL": os.path.abspath(model_path), "MODELS_DIR": os.path.dirname(os.path.abspath(model_path))})
    client = app.test_client()
    photo = cv2.imencode(".jpg", np.ascontiguousarray(data.astronaut()[:, :, ::-1]))[1].tobytes()

    def post(url, **fields):
        response = client.post(url, data={"file": (io.BytesIO(photo), "photo.jpg"), **fields},
                               content_type="multipart/form-data")
        assert response.status_code == 200, response.get_json()

    first_of_kind = {}
    for layer in app.extensions["models"].get().operations.layers:
        first_of_kind.setdefault(layer_kind(layer), layer)
    print("POST /api/explain parts=operation (test client, 512x512 JPEG, thorough face search), median ms:")
    print(f"  {'(predict, same photo)':28s} {median_ms(lambda: post('/api/predict'), repeats):7.1f} ms")
    for kind, layer in first_of_kind.items():
        shape = layer.output.shape[1:]
        position = {"channel": str(shape[-1] // 2)}
        if len(shape) == 3:
            position.update(y=str(shape[0] // 2), x=str(shape[1] // 2))
        milliseconds = median_ms(lambda: post("/api/explain", parts="operation", layer=layer.name, **position), repeats)
        print(f"  {kind + ' (' + layer.name + ')':28s} {milliseconds:7.1f} ms")


def bench_patterns(predictor, count):
    """Each pattern once (its first request), in the first and the last convolution, then a kept one."""
    from utils.explain.channels import ChannelExplainer
    channels = ChannelExplainer(predictor.model, predictor.classes)
    convolutions = channels.convolutions()
    seconds = []
    for name in (convolutions[0], convolutions[-1]):
        for channel in range(count):
            start = time.perf_counter()
            channels.pattern(name, channel)
            seconds.append(time.perf_counter() - start)
            print(f"pattern {name} channel {channel}: {seconds[-1]:.2f} s"
                  + (" (compiles the layer's gradient)" if channel == 0 else ""))
    start = time.perf_counter()
    channels.pattern(convolutions[-1], 0)
    print(f"pattern kept: {(time.perf_counter() - start) * 1000:.2f} ms")
    print(f"budget: slowest pattern {max(seconds):.2f} s of {PATTERN_BUDGET_S:.0f} s: "
          f"{'ok' if max(seconds) <= PATTERN_BUDGET_S else 'OVER'}")


if __name__ == "__main__":
    from utils.cli import run_cli
    run_cli(main)
