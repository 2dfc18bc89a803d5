"""Teaching the model: data sets, augmentation, the photo path, batches, fitting, metrics, background jobs.

Owns: ``datasets`` (FER2013, people folders, LFW; splits), ``augment``, ``photo_path`` (faces found
again as a photo's would be), ``batches`` (Keras batches), ``fit`` (a training run, its card and
checkpoints), ``distribute`` (training on several devices or machines, tf.distribute) and ``cluster``
(its workers: TF_CONFIG, finding each other), ``metrics`` (accuracy, confusion, calibration),
``photo_benchmark`` (faces read through the whole photo path) and ``jobs`` (training in the
background for the site).
May import: ``utils.model``, ``utils.faces``, ``utils.media`` and the top-level infrastructure.
"""
