"""Models kept loaded for the front ends, the identity comparison, and the exports for the browser.

Owns: ``model_file`` (a model file with its predictor and explainers, loaded once and reloaded
when the file changes), ``identity`` ("who" beside "how they feel") and ``browser_export`` (a
model and its facts written for the in-browser engine).
May import: every other part of ``utils``; nothing imports it but the front ends.
"""
