"""The emotion model itself: its architectures, its file and card, and predictions from faces.

Owns: ``predict`` (faces -> emotions: the softmax, calibration, the precision served, the
uncertainty rule).
May import: ``utils.faces``, ``utils.media`` and the top-level infrastructure.
"""
