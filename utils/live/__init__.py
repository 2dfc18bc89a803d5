"""Video: sources, following faces from frame to frame, drawing the results, and what an analysis records.

Owns: ``sources`` (webcams, files, streams), ``tracking`` (detect now and then, follow in between,
smooth the probabilities), ``drawing`` (boxes and captions on a frame) and ``records`` (CSV rows,
the summary). Opens no window: every live front end uses it.
May import: ``utils.model``, ``utils.faces``, ``utils.media`` and the top-level infrastructure.
"""
