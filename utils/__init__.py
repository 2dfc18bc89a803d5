"""EmoDetect-Pro's shared library: every front end imports it, nothing else.

One module per job: ``detection`` finds faces, ``faces`` cuts them out upright and holds THE
preprocessing, ``predict`` turns faces into emotions, ``layers``, ``gradcam``, ``perturbation``,
``shap_lime``, ``operations``, ``receptive``, ``channels`` and ``sanity`` explain them (what
they explain: ``targets``), ``plots`` draws and ``pictures`` encodes, ``data``, ``models`` and
``training`` train, ``serving`` keeps loaded models, ``video`` runs the live front ends,
``identity`` sets "who" beside "how they feel", ``jobs`` trains in the background, and
``defaults`` holds every shared value.

Importing it first quiets TensorFlow's start-up chatter, so a command-line tool's stderr
holds only its own one-line messages.
"""
import os

from absl import logging as absl_logging

# TensorFlow prints start-up chatter (absl's "log messages before InitializeLog", cpu_feature_guard,
# oneDNN notes) on stderr as it loads, ahead of a tool's one-line error. Its C++ logging reads this
# once, when TensorFlow is imported; every front end imports ``utils`` first, so this is the one place.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Keras' Python-side notes ("WARNING:absl:... HDF5 file format is considered legacy") go through absl.
absl_logging.set_verbosity(absl_logging.ERROR)
