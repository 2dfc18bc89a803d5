"""Reading what a request sends: the image (multipart or base64) and its typed parameters.

Every endpoint reads its parameters through the readers here (:func:`text`,
:func:`choice`, :func:`whole_number`, :func:`number`), so a value of the wrong type,
from JSON, a form or the query string, is a 400 with a one-line reason, never a 500.
A new parameter is one line: a choice of strings, say, is
``choice(values, "detector", ("blazeface", "haar"))``.

Uploads stay in memory: Werkzeug would spool a file over 500 KB to a temporary file
on disk, and nothing a user uploads may touch the disk. The size limit
(``MAX_CONTENT_LENGTH``) is enforced by Flask before any of this runs.
"""
import base64
import binascii
import io
import math

from flask import Request, current_app, request

from utils.defaults import THRESHOLD
from utils.faces.blazeface import DetectorUnavailable
from utils.faces.detect import check_detector, DETAILS, DETECTORS, WHOLE
from utils.media.decode import decode_image, ImageError


class InMemoryRequest(Request):
    """A request whose uploaded files are kept in memory, never spooled to disk."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


class BadInput(ValueError):
    """The request cannot be served as sent; the message says why in one line (HTTP 400)."""


def params():
    """The request's parameters: query string, then form fields or a JSON object on top.

    Values are as sent (a JSON object's may be of any type; a field repeated in a form
    or query string becomes a list); the readers below check each one's type.
    """
    values = _fields(request.args)
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadInput("the JSON body must be an object such as {\"image\": \"<base64>\"}")
        values.update(body)
    elif not sends_raw_image():
        values.update(_fields(request.form))
    return values


def _fields(multidict):
    """A form's or query string's fields: each one's value, or the list of its values when it is repeated."""
    return {name: found[0] if len(found) == 1 else found for name, found in multidict.lists()}


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


# Typed parameters. Each reader takes the parameters and a name, gives the value or the default
# when it is absent (or an empty form field), and raises BadInput, one line, for any other type.

def text(values, name, default=None):
    """A string parameter (a model or layer name)."""
    if absent(values, name):
        return default
    value = values[name]
    if not isinstance(value, str):
        raise BadInput(f"'{name}' must be a string, not {_kind(value)}")
    return value


def choice(values, name, options):
    """One of ``options`` (strings), the first by default: ``detail``, and any later choice like it."""
    value = text(values, name, options[0])
    if value not in options:
        raise BadInput(f"'{name}' must be one of {', '.join(options)}")
    return value


def whole_number(values, name, default):
    """An integer parameter (a face or sample index); a form sends it as digits."""
    return _numeric(values, name, default, int, "a number (0, 1, 2 ...)")


def number(values, name, default, low, high):
    """A real-number parameter within ``[low, high]``; a form sends it as text."""
    value = _numeric(values, name, default, float, "a number")
    if not low <= value <= high:
        raise BadInput(f"'{name}' must be between {low:g} and {high:g}")
    return value


def _numeric(values, name, default, kind, described):
    """``kind(value)`` for a JSON number or a form's text; true/false, null, lists, objects (and 1.5 as an
    integer) are refused."""
    if absent(values, name):
        return default
    value = values[name]
    if isinstance(value, (int, float, str)) and not isinstance(value, bool) and not (
            kind is int and isinstance(value, float)):
        try:
            return kind(value)
        except ValueError:
            pass
    raise BadInput(f"'{name}' must be {described}, not {_kind(value)}")


def box(values, name):
    """A face's box ``x,y,w,h`` (a form's text, or a JSON list of four numbers), width and height above 0;
    None when absent."""
    if absent(values, name):
        return None
    return _box(values[name], name)


def boxes(values, name):
    """Boxes as :func:`box` reads one, separated by ``;`` (or a JSON list of them); None when absent."""
    if absent(values, name):
        return None
    value = values[name]
    items = value.split(";") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise BadInput(f"'{name}' must be boxes x,y,w,h separated by ';', not {_kind(value)}")
    return [_box(item, name) for item in items]


def names(values, name, count):
    """``count`` names separated by ``;`` (or a JSON list of strings), one per box; an empty one means
    none was chosen (None). None when absent."""
    if absent(values, name):
        return None
    value = values[name]
    items = value.split(";") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items) or len(items) != count:
        raise BadInput(f"'{name}' must be {count} name{'s' if count != 1 else ''} separated by ';', one per box")
    return [item.strip() or None for item in items]


def _box(value, name):
    parts = value.split(",") if isinstance(value, str) else value
    try:
        numbers = [float(part) for part in parts] if isinstance(parts, list) and not any(
            isinstance(part, bool) for part in parts) else None
    except (TypeError, ValueError):
        numbers = None
    if not numbers or len(numbers) != 4 or not all(map(math.isfinite, numbers)) or min(numbers[2:]) <= 0:
        raise BadInput(f"'{name}' must be a box x,y,w,h (four numbers, the width and height above 0), not {_kind(value)}")
    return tuple(numbers)


def absent(values, name):
    """Not sent, or sent empty (a form's blank field): the default applies. JSON null is a wrong type."""
    return name not in values or values[name] == ""


def name_or_index(values, name):
    """A class named or numbered (a string, or an integer in JSON), or None for the predicted one."""
    value = values.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return text(values, name)


def _kind(value):
    """How a wrong value looks, in JSON's words, for the one-line error."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return repr(value[:40])
    return {list: "a list", dict: "an object"}.get(type(value), "a number")


# The parameters the endpoints share.

def model(values):
    """The model a request names, or None for the default one."""
    return text(values, "model")


def threshold(values):
    """The confidence under which a prediction is flagged uncertain (0 to 1, by default the shared one)."""
    return number(values, "threshold", THRESHOLD, 0.0, 1.0)


def detail(values):
    """How hard to look for faces: "thorough" (default, photos), "fast" (live video frames), or "whole" (not at all:
    the picture is one face, as a data set's faces are)."""
    return choice(values, "detail", (*DETAILS, WHOLE))


def detector(values):
    """Which face detector: "blazeface" or "haar" (the 2001 cascade, for comparison); when not
    named, BlazeFace where it is installed (see :func:`utils.faces.detect.default_detector`)."""
    value = choice(values, "detector", DETECTORS) if not absent(values, "detector") else None
    try:
        return check_detector(value)
    except DetectorUnavailable as error:
        raise BadInput(str(error)) from None
