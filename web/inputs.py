"""Reading what a request sends: the image (multipart or base64) and the parameters.

Uploads stay in memory: Werkzeug would spool a file over 500 KB to a temporary file
on disk, and nothing a user uploads may touch the disk. The size limit
(``MAX_CONTENT_LENGTH``) is enforced by Flask before any of this runs.
"""
import base64
import binascii
import io

from flask import Request, current_app, request

from utils.detection import DETAILS, DETECTORS, DetectorUnavailable, check_detector
from utils.images import ImageError, decode_image
from utils.predict import DEFAULT_THRESHOLD


class InMemoryRequest(Request):
    """A request whose uploaded files are kept in memory, never spooled to disk."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


class BadInput(ValueError):
    """The request cannot be served as sent; the message says why in one line (HTTP 400)."""


def params():
    """The request's parameters: query string, then form fields or a JSON object on top."""
    values = dict(request.args.items())
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadInput("the JSON body must be an object such as {\"image\": \"<base64>\"}")
        values.update(body)
    elif not sends_raw_image():
        values.update(request.form.items())
    return values


def sends_raw_image():
    """Whether the body is the image itself (``Content-Type: image/...``), as the Live page sends frames.

    A raw body skips multipart parsing, whose per-request pattern compiling costs
    several milliseconds when each request has a new boundary, as browsers' have.
    """
    return request.mimetype.startswith("image/") or request.mimetype == "application/octet-stream"


def image_bytes(values):
    """The uploaded image's bytes: a raw image body, multipart field ``file``, or base64 / data URL in ``image``."""
    if sends_raw_image():
        return request.get_data(cache=False)
    upload = request.files.get("file")
    if upload is not None:
        return upload.read()
    encoded = values.get("image")
    if encoded is None:
        raise BadInput("send an image as multipart field 'file', as the body with Content-Type image/..., "
                       "or as JSON {\"image\": \"<base64>\"}")
    if not isinstance(encoded, str):
        raise BadInput("'image' must be a base64 string or a data URL")
    if encoded.startswith("data:"):
        encoded = encoded.partition(",")[2]
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("'image' is not valid base64") from None


def read_image(values):
    """The uploaded image as an upright BGR array; :class:`BadInput` for anything unusable."""
    try:
        return decode_image(image_bytes(values), current_app.config["MAX_PIXELS"])
    except ImageError as error:
        raise BadInput(str(error)) from None


def threshold(values):
    """The confidence under which a prediction is flagged uncertain (0 to 1, default 0.35)."""
    value = number(values, "threshold", DEFAULT_THRESHOLD, float)
    if not 0.0 <= value <= 1.0:
        raise BadInput("'threshold' must be between 0 and 1")
    return value


def detail(values):
    """How hard to look for faces: "thorough" (default, photos) or "fast" (live video frames)."""
    value = values.get("detail") or "thorough"
    if value not in DETAILS:
        raise BadInput(f"'detail' must be one of {', '.join(DETAILS)}")
    return value


def detector(values):
    """Which face detector: "blazeface" (default) or "haar" (the 2001 cascade, for comparison)."""
    value = values.get("detector") or None
    if value is not None and value not in DETECTORS:
        raise BadInput(f"'detector' must be one of {', '.join(DETECTORS)}")
    try:
        return check_detector(value)
    except DetectorUnavailable as error:
        raise BadInput(str(error)) from None


def number(values, name, default, kind=int):
    """Parameter ``name`` as ``kind``, or ``default`` when absent."""
    value = values.get(name)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise BadInput(f"'{name}' must be a number") from None


def text(values, name, default=None):
    """A string parameter (a layer name), or ``default`` when absent."""
    value = values.get(name)
    if value in (None, ""):
        return default
    if not isinstance(value, str):
        raise BadInput(f"'{name}' must be a string")
    return value


def whole_number(values, name, default):
    """An integer parameter (a channel or a position), or ``default`` when absent; 1.5 and true are refused."""
    value = values.get(name)
    if value in (None, ""):
        return default
    if isinstance(value, (bool, float)) or not isinstance(value, (int, str)):
        raise BadInput(f"'{name}' must be a whole number")
    try:
        return int(value)
    except ValueError:
        raise BadInput(f"'{name}' must be a whole number") from None
