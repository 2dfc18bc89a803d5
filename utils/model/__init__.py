"""The emotion model itself: its architectures, its file and card, and predictions from faces.

Owns: ``architectures`` (every network by name, and what it costs), ``card`` (the typed model
card, read and written and checked in one place), ``store`` (a model's file beside its card:
atomic saves, matched loads, the bfloat16 copy) and ``predict`` (faces -> emotions: the softmax,
calibration, the precision served, the uncertainty rule).
May import: ``utils.faces``, ``utils.media`` and the top-level infrastructure.
"""
