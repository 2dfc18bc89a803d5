"""EmoDetect-Pro's shared library: every front end imports it, nothing else.

One module per job: ``detection`` finds faces, ``faces`` cuts them out upright and holds THE
preprocessing, ``predict`` turns faces into emotions, ``layers``, ``gradcam``, ``perturbation``,
``shap_lime``, ``operations``, ``receptive``, ``channels`` and ``sanity`` explain them (what
they explain: ``targets``), ``plots`` draws and ``pictures`` encodes, ``data``, ``models`` and
``training`` train, ``serving`` keeps loaded models, ``video`` runs the live front ends,
``identity`` sets "who" beside "how they feel", ``jobs`` trains in the background, and
``defaults`` holds every shared value.

Importing it first keeps native libraries' start-up chatter off stderr (see ``quiet``), so a
command-line tool's stderr holds only its own one-line messages.
"""
from absl import logging as absl_logging

from utils.quiet import quiet_imports

# TensorFlow's C++ notes as its libraries load, on whichever CPU, wherever it is first imported
# (Keras imports it too); every front end imports ``utils`` first, so this is the one place.
quiet_imports("tensorflow")
# Keras' Python-side notes ("WARNING:absl:... HDF5 file format is considered legacy") go through absl.
absl_logging.set_verbosity(absl_logging.ERROR)
