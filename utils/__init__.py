"""EmoDetect-Pro's shared library: every front end imports it, nothing else.

In parts named by what they own, each importing only the parts beneath it (every part's
``__init__.py`` says what it owns and what it may import; ``tests/test_layout.py`` holds them to it):

    serving/    models kept loaded for the front ends, the identity comparison, browser exports
    explain/    layers, Grad-CAM, perturbation, SHAP/LIME, each layer's arithmetic and its words
    live/       video sources, following faces through frames, drawing, records   (beside explain/)
    train/      data sets, augmentation, the photo path, batches, fitting, metrics, background jobs
    model/      the architectures, a model's file and card, predictions
    faces/      finding faces, the upright crop, THE preprocessing, facial regions
    media/      decoding a user's image, colour conversion, PNGs, charts and tile grids

and under them all the modules here at the top: ``defaults`` (every shared value), ``files``
(atomic saves), ``cpu``, ``cli`` and ``quiet``. Importing the library changes nothing in the
process: a front end's entry point keeps native libraries' start-up notes off stderr itself
(``quiet.install``, which :func:`utils.cli.run_cli` calls).
"""
