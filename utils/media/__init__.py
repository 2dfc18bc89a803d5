"""Pictures in and out: decoding a user's image, colour conversion, encoding PNGs, and the generic figures.

Owns: ``decode`` (bytes or a path -> an upright 8-bit BGR array, safely), ``colour`` (gray and RGB,
once), ``encode`` (figures and arrays -> PNG), ``grids`` (many small pictures as tiles) and
``charts`` (curves, bars, matrices, timelines). Knows nothing of faces or models.
May import: the top-level infrastructure (``utils.defaults``, ``utils.files``) only.
"""
