"""Keras batches for training: augmented faces, and the teacher's soft labels when distilling."""
import math

import keras
import numpy as np

from utils.model.predict import softmax
from utils.train.augment import random_affine, random_erase


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, augmented mini-batches with one-hot labels, for ``model.fit``.

    Plain NumPy and OpenCV, so it feeds any Keras backend (TensorFlow, JAX, torch).
    Each epoch's order and augmentations come from ``(seed, epoch)``: a run resumed at
    ``epoch`` sees what an uninterrupted run would have, not the first epochs again.
    ``served`` (the same faces as :func:`utils.train.photo_path.served_faces` gives them) stands in for a face with
    probability ``served_share``, so the network also learns faces framed as photos are.
    ``targets`` (``(N, classes)``, e.g. :func:`utils.train.labels.label_targets` of a crowd's votes) replaces the
    one-hot labels.
    """

    def __init__(self, split, num_classes, batch_size, seed, augment=True, erase_probability=0.0, epoch=0,
                 served=None, served_share=0.0, targets=None, **kwargs):
        super().__init__(**kwargs)
        self.split, self.num_classes, self.batch_size = split, num_classes, batch_size
        self.targets = np.eye(num_classes, dtype=np.float32)[split.labels] if targets is None else targets
        self.augment, self.erase_probability, self.seed = augment, erase_probability, seed
        self.served, self.served_share = served, served_share
        self._start_epoch(epoch)

    def _start_epoch(self, epoch):
        self.epoch = epoch
        self.rng = np.random.default_rng([self.seed, epoch])
        self.order = self.rng.permutation(len(self.split))

    def __len__(self):
        return math.ceil(len(self.split) / self.batch_size)

    def __getitem__(self, index):
        picked = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.split.images[picked]
        if self.served is not None:
            swap = self.rng.random(len(picked)) < self.served_share
            images = np.where(swap[:, None, None, None], self.served[picked], images)
        if self.augment:
            images = np.stack([random_affine(face, self.rng) for face in images])
            for i in np.flatnonzero(self.rng.random(len(images)) < self.erase_probability):
                images[i] = random_erase(images[i], self.rng)
        return images, self.targets[picked]

    def on_epoch_end(self):
        self._start_epoch(self.epoch + 1)


class DistilledBatches(AugmentedBatches):
    """:class:`AugmentedBatches` whose targets mix the true label with a teacher's answer (distillation).

    The teacher sees each augmented face as the student does; its logits, softened by
    ``temperature``, tell the student which wrong classes are nearly right (a sad face
    that looks a little fearful), which a one-hot label cannot (Hinton et al. 2015).
    ``teacher`` maps a batch of faces to logits; ``weight`` is the teacher's share.
    """

    def __init__(self, split, num_classes, batch_size, seed, teacher, weight, temperature, **kwargs):
        super().__init__(split, num_classes, batch_size, seed, **kwargs)
        self.teacher, self.weight, self.temperature = teacher, weight, temperature

    def __getitem__(self, index):
        images, targets = super().__getitem__(index)
        taught = softmax(self.teacher(images), self.temperature).astype(np.float32)
        return images, (1 - self.weight) * targets + self.weight * taught
