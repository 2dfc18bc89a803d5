"""Are the explanations about the model? The model-randomisation check (Adebayo et al., 2018).

A method whose maps barely change when the learned weights are thrown away explains
the image (its edges), not the model. The deletion check (hide the top-ranked pixels,
watch the target fall) uses :func:`utils.explain.perturbation.top_fraction_mask`.
"""
import keras
import numpy as np


def reinitialised_copy(model, seed=0):
    """The same architecture with fresh random weights; seeds Keras' global generators."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(model)


def rank_correlation(first, second):
    """Spearman rank correlation of two maps.

    A constant (or empty) map ranks nothing: that is a broken explanation, not an
    uncorrelated one, so it is a ValueError rather than a correlation of zero.
    """
    from scipy.stats import spearmanr
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        raise ValueError("a constant map ranks nothing: the explanation gave no information")
    return float(spearmanr(np.ravel(first), np.ravel(second))[0])


def randomisation_correlation(trained_maps, randomised_maps):
    """``(mean Spearman, pairs)`` of each face's map from the trained and the randomised model.

    Low means the maps depend on what the model learned. A constant map from the trained
    model is a broken method: ValueError. One from the randomised model (its random
    weights found no evidence at all) ranks nothing either, so its pair is left out
    rather than counted as uncorrelated.
    """
    pairs = [(trained, randomised) for trained, randomised in zip(trained_maps, randomised_maps)
             if np.ptp(randomised) > 0 or np.ptp(trained) == 0]
    if not pairs:
        raise ValueError("every randomised map is constant: nothing to compare")
    correlations = [rank_correlation(trained, randomised) for trained, randomised in pairs]
    return float(np.mean(correlations)), len(correlations)
