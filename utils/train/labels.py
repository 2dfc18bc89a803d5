"""What a face teaches: its one label, or a crowd's votes as a distribution or a majority.

No Keras here: train.py reads the schemes for ``--help`` before it loads anything heavy.
"""
import numpy as np

# How a crowd-labelled face (FER+'s ten votes) becomes a training target: the share of votes each class
# got ("distribution": cross-entropy against it, the FER+ paper's best scheme), or all on the class most
# people chose ("majority").
LABEL_SCHEMES = ("distribution", "majority")


def label_targets(split, num_classes, scheme):
    """Each face's training target ``(N, classes)``: one-hot of its label, or from its votes by ``scheme``."""
    if split.votes is None or scheme == "majority":
        return np.eye(num_classes, dtype=np.float32)[split.labels]
    if scheme != "distribution":
        raise ValueError(f"unknown label scheme {scheme!r}: choose from {', '.join(LABEL_SCHEMES)}")
    return (split.votes / split.votes.sum(axis=1, keepdims=True)).astype(np.float32)
