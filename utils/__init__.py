"""EmoDetect-Pro's shared library: every front end imports it, nothing else.

One module per concern: ``data`` (loading FER2013 and class folders), ``models``
(architectures, atomic save and load with the model card), ``faces`` (detection and
THE preprocessing function), ``predict`` (faces -> emotions), ``explain`` (layer
outputs, Grad-CAM, regions), ``plots`` (figures, returned and never shown),
``identity`` (one face through the identity and emotion models), ``jobs``
(train.py in the background for the site and the desktop window) and ``files``
(atomic writes and file stamps).
"""
import os

from absl import logging as absl_logging

# TensorFlow prints start-up chatter (absl's "log messages before InitializeLog", cpu_feature_guard,
# oneDNN notes) on stderr as it loads, ahead of a tool's one-line error. Its C++ logging reads this
# once, when TensorFlow is imported; every front end imports ``utils`` first, so this is the one place.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Keras' Python-side notes ("WARNING:absl:... HDF5 file format is considered legacy") go through absl.
absl_logging.set_verbosity(absl_logging.ERROR)
