"""How long one face's explanation arrays take: every layer's output plus Grad-CAM.

The budget (issue 5) is 300 ms on a 2-core machine for all layer maps plus Grad-CAM;
occlusion and the facial regions are timed too. Arrays only: figures are drawn when
a front end asks for them. Median over repeats, after a warm-up that builds the
sub-models (once per loaded model, as the front ends do).

    python bench/bench_explain.py [--model models/emotion_model.h5] [--repeats 20]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BUDGET_MS = 300


def median_ms(function, repeats):
    function()  # warm-up: builds and traces the sub-models
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join("models", "emotion_model.h5"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import numpy as np
    from skimage import data

    from utils import explain
    from utils.predict import Predictor

    predictor = Predictor.from_path(args.model)
    explainer = explain.Explainer(predictor.model)
    _, crops, _ = predictor.face_crops(np.ascontiguousarray(data.astronaut()[:, :, ::-1]))
    face = predictor.preprocess(crops[0])

    def layers_and_gradcam():
        outputs = explainer.layer_outputs(face)
        return outputs, explainer.gradcam(face, int(np.argmax(outputs[-1].array)))

    timings = {
        "all layer outputs": lambda: explainer.layer_outputs(face),
        "Grad-CAM (predicted class)": lambda: explainer.gradcam(face),
        "all layer outputs + Grad-CAM": layers_and_gradcam,
        "Grad-CAM, every class": lambda: explainer.gradcam_all_classes(face, len(predictor.classes)),
        "occlusion sensitivity": lambda: explain.occlusion_sensitivity(predictor, face),
        "facial regions": lambda: explain.region_sensitivity(predictor, face),
    }
    print(f"model {args.model} ({predictor.card.get('architecture', '?')}, {len(explainer.layers)} layers), "
          f"{os.cpu_count()} CPUs, median of {args.repeats}")
    results = {name: median_ms(function, args.repeats) for name, function in timings.items()}
    for name, milliseconds in results.items():
        print(f"{name:32s} {milliseconds:7.1f} ms")
    total = results["all layer outputs + Grad-CAM"]
    print(f"budget: layer outputs + Grad-CAM {total:.0f} ms of {BUDGET_MS} ms: {'ok' if total <= BUDGET_MS else 'OVER'}")


if __name__ == "__main__":
    main()
