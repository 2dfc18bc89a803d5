"""The classroom web site's parts, registered by ``app.create_app``.

``registry`` keeps the models loaded once per process, ``inputs`` reads what a
request sends, ``analysis`` turns explanations from :mod:`utils` into JSON, ``gallery``
lists test faces, and ``pages`` and ``api`` are the two blueprints.
"""
