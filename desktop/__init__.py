"""The desktop window (``python index.py``), split so its logic runs without a display.

``session`` holds what the window shows (model, image, faces, threshold) and builds
each tab's figure from :mod:`utils`; ``worker`` and ``camera`` keep slow work off the
Tk thread; ``window`` is only widgets. Tests drive ``session`` directly and the
window under Xvfb.
"""
