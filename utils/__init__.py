"""EmoDetect-Pro's shared library: every front end imports it, nothing else.

One module per concern: ``data`` (loading FER2013 and class folders), ``models``
(architectures, atomic save and load with the model card), ``faces`` (detection and
THE preprocessing function), ``predict`` (faces -> emotions), ``explain`` (layer
outputs, Grad-CAM, regions), ``plots`` (figures, returned and never shown),
``identity`` (one face through the identity and emotion models) and ``jobs``
(train.py in the background for the site and the desktop window).
"""
