"""Opening the network up: layers, Grad-CAM, perturbation, SHAP/LIME, each layer's arithmetic, and the words for it.

Owns: ``layers`` (reading any layer's output), ``targets`` (what an explanation explains),
``gradcam``, ``perturbation``, ``shap_lime``, ``sanity`` (checks that an explanation depends on
the weights), ``operations`` and ``operation_text`` (one unit's arithmetic, and its sentences),
``receptive`` (which input pixels a unit sees), ``channels`` (what each channel responds to),
``steps`` (the words that describe each step) and ``figures`` (the explanations drawn).
May import: ``utils.train`` (test faces for ``channels``), ``utils.model``, ``utils.faces``,
``utils.media`` and the top-level infrastructure.
"""
