"""Privacy written into every response, not only into the code: a Content-Security-Policy and the headers
beside it, on every answer of the site (pages, the API, static and engine files, errors), and as ``<meta>``
tags in the pages ``make site`` writes, since a static web server sets no headers of its own.

The policy lets a page run scripts from this site only and connect to this site only, so no script, ours
by mistake or one slipped into a page, can send a photo or a webcam frame anywhere else; WebAssembly may
compile (the in-browser engine); no inline script runs. The pages' one inline ``<script>`` is an import
map (LiteRT.js imports its helper by a bare name), which runs nothing and is allowed by its hash alone.
"""
import base64
import hashlib
import json

# LiteRT.js's bare import and the file of static/ it names.
IMPORTED_MODULE = ("@litertjs/wasm-utils", "vendor/litertjs/wasm-utils/index.js")

# Headers beside the policy: no guessing a file's type from its bytes, no address sent to another site,
# the camera for this site only (the Live page) and no microphone or location for anyone.
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Permissions-Policy": "camera=(self), microphone=(), geolocation=()"}
# What a <meta> tag cannot carry, and the web server must: frame-ancestors is ignored in a meta policy.
HEADER_ONLY = ("frame-ancestors",)


def import_map(asset):
    """The text of the pages' ``<script type="importmap">``; ``asset`` turns a file of static/ into its URL."""
    name, path = IMPORTED_MODULE
    return json.dumps({"imports": {name: asset(path)}})


def policy(import_map_text, in_meta=False):
    """The Content-Security-Policy of pages whose import map is ``import_map_text``; ``in_meta``: as a
    ``<meta http-equiv>`` tag carries it (without what only a header can say)."""
    digest = base64.b64encode(hashlib.sha256(import_map_text.encode()).digest()).decode()
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' 'wasm-unsafe-eval' 'sha256-{digest}'",
        "connect-src": "'self'",
        "img-src": "'self' data: blob:",       # Grad-CAM and feature maps come as data: URLs; photos as blob: URLs
        "style-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",           # no other site may show the pages in a frame
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items()
                     if not (in_meta and name in HEADER_ONLY))


def init_app(app, asset):
    """Put the policy and :data:`HEADERS` on every response of ``app``; ``asset`` as for :func:`import_map`."""
    @app.after_request
    def protect(response):
        response.headers["Content-Security-Policy"] = policy(import_map(asset))
        response.headers.update(HEADERS)
        return response
