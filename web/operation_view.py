"""An operation view (:mod:`utils.explain.operations`) composed for the explorer's dialog, as blocks.

Every sentence, name, sum and rounded number comes from here and :mod:`utils.explain.operation_text`
(the words the desktop window and visualize.py show), so the page only lays the blocks out
(static/pages/operation.js) and computes nothing. A block is a dict with a ``block`` type:

- ``heading``: ``text``; ``text``: ``text`` and its ``style`` (hint, note, op-formula);
- ``grid``: one table of numbers, ``caption`` and ``rows`` of cells ``{"text"}``, a marked cell
  with its ``class`` (pad, winner) and ``title``;
- ``planes``: a convolution's window, weights and products per plane (``shown`` of them drawn at
  first, the rest behind the ``more`` button), then every plane's sum when there are more;
- ``table``: ``caption``, ``head``, ``rows`` of ``{"cells", "class", "span"}`` (span: of the first cell);
- ``facts``: ``pairs`` of name and value;
- ``maps``: an activation's input and output as grey maps on one scale (``low``, ``high``), the
  chosen cell at ``chosen``;
- ``result``: the equation up to the result (``before``), the result rounded (``text``) and
  exact (``value``).
"""
from utils.explain import operation_text
from utils.explain.operation_text import rounded, SHOWN_CHANNELS

PAD_MARK = {"class": "pad", "title": "padding: outside the input, read as 0"}
WINNER_MARK = {"class": "winner", "title": "the largest value: kept"}


def display(view, labels, columns):
    """``{"title", "blocks"}`` for ``view``; ``labels`` name a class layer's units, and a vector's
    maps are folded into rows of ``columns`` (the explorer's strips)."""
    return {"title": f"{view['layer']} ({view['type']}) at {operation_text.position(view)}",
            "blocks": KINDS[view["kind"]](view, labels, columns)}


def _sign(number):
    return "positive" if number > 0 else "negative" if number < 0 else ""


def _percent(share):
    return f"{share:.0%}"


def _shape(dims):
    return " × ".join(map(str, dims))


def _grid(values, caption, mark=lambda i, j: None):
    """A table of numbers; ``mark(i, j)`` gives a cell's class and title, or None."""
    return {"block": "grid", "caption": caption,
            "rows": [[{"text": rounded(value), **(mark(i, j) or {})} for j, value in enumerate(row)]
                     for i, row in enumerate(values)]}


def _text(text, style):
    return {"block": "text", "text": text, "style": style}


def _facts(pairs):
    return {"block": "facts", "pairs": [[name, value] for name, value in pairs]}


def _table(caption, head, rows):
    return {"block": "table", "caption": caption, "head": head, "rows": rows}


def _result(view, before="result "):
    value = operation_text.result(view)
    return {"block": "result", "before": before, "text": rounded(value), "value": value}


def _plane(grid3, plane):
    return [[cells[plane] for cells in row] for row in grid3]


def _planes(view):
    """The window, weights and products plane by plane, and each plane's sum."""
    noun, numbers = operation_text.planes(view)
    sums = operation_text.plane_sums(view)
    padded = any(map(any, view["padding"]))
    pad = lambda i, j: PAD_MARK if view["padding"][i][j] else None   # noqa: E731
    place = (f"Input rows {', '.join(map(str, view['rows']))} and columns {', '.join(map(str, view['columns']))}" +
             ("; the hatched cells are the zero padding around the border." if padded else "."))
    planes = [{"caption": f"{name}: the products add up to {rounded(total)}",
               "grids": [_grid(_plane(view["window"], p), "input", pad), _grid(_plane(view["kernel"], p), "weights"),
                         _grid(_plane(view["products"], p), "products")]}
              for p, (name, total) in enumerate(zip(operation_text.plane_names(view), sums))]
    more = None
    if len(planes) > SHOWN_CHANNELS:
        more = {"button": f"Show all {len(planes)} {noun}s", "intro": f"Each {noun}'s products add up to:",
                "label": f"the sum of each {noun}'s products",
                "sums": [{"text": f"{number}: {rounded(total)}", "class": _sign(total)}
                         for number, total in zip(numbers, sums)]}
    return [_text(place, "hint"), {"block": "planes", "shown": SHOWN_CHANNELS, "planes": planes, "more": more}]


def _conv(view, labels, columns):
    return [*_planes(view), _result(view, operation_text.equation(view, "sum of all products"))]


def _separable(view, labels, columns):
    """Depthwise: a filter per input channel (or several), each giving one sum; pointwise: those sums weighted and added."""
    rows = [{"cells": [str(index), rounded(total), rounded(weight), rounded(product)], "class": _sign(product)}
            for index, (total, weight, product)
            in enumerate(zip(view["depthwise"], view["pointwise"], view["pointwise_products"]))]
    return [{"block": "heading", "text": "Depthwise step"}, *_planes(view), {"block": "heading", "text": "Pointwise step"},
            _table(f"output channel {view['position']['channel']}'s weight on each depthwise filter's sum",
                   ["depthwise filter", "its sum", "weight", "weight × sum"], rows),
            _result(view, operation_text.equation(view, "sum of the pointwise products"))]


def _batchnorm(view, labels, columns):
    return [_facts([("value in", rounded(view["input"])), ("mean (learned)", rounded(view["mean"])),
                    ("variance (learned)", rounded(view["variance"])), ("epsilon", f"{view['epsilon']:g}"),
                    ("gamma (scale)", rounded(view["gamma"])), ("beta (shift)", rounded(view["beta"]))]),
            _text("(value − mean) / √(variance + epsilon) × gamma + beta", "op-formula"),
            _text(view["formula"], "op-formula"), _result(view)]


def _activation(view, labels, columns):
    """The channel (or the whole vector, in rows of ``columns``) before and after, on one grey scale."""
    flat = not isinstance(view["input_map"][0], list)
    fold = (lambda values: [values[start:start + columns] for start in range(0, len(values), columns)]) if flat \
        else (lambda values: values)
    spot = view["position"]
    chosen = divmod(spot["channel"], columns) if flat else (spot["y"], spot["x"])
    every = [value for values in (view["input_map"], view["output_map"]) for row in fold(values) for value in row]
    low, high = min(every), max(every)
    what = "the layer's values" if flat else f"channel {spot['channel']}"
    maps = []
    for values, name in ((view["input_map"], "before"), (view["output_map"], "after")):
        cells = [value for row in fold(values) for value in row]
        maps.append({"rows": fold(values), "caption": f"{name} {view['function']}",
                     "label": f"{what} {name} {view['function']}, values {rounded(min(cells))} to {rounded(max(cells))} "
                              f"(black {rounded(low)}, white {rounded(high)})"})
    zeroed = view["zeroed"]
    shares = ([("set to zero in the layer", _percent(zeroed["layer"]))] if flat else
              [("set to zero in this channel", _percent(zeroed["channel"])),
               ("set to zero in the whole layer", _percent(zeroed["layer"]))])
    return [{"block": "maps", "low": low, "high": high, "chosen": list(chosen), "maps": maps},
            _facts([("value in", rounded(view["input"])), ("value out", rounded(view["result"])), *shares]),
            _result(view)]


def _pool(view, labels, columns):
    winner = view.get("winner") or [-1, -1]

    def mark(i, j):
        if [i, j] == winner:
            return WINNER_MARK
        return {"class": "pad", "title": "padding: left out"} if view.get("padding") and view["padding"][i][j] else None

    window = view["window"]
    caption = (f"the whole channel ({_shape([len(window), len(window[0])])})" if view["global"] else
               f"the {_shape(view['pool_size'])} window, rows {', '.join(map(str, view['rows']))}, "
               f"columns {', '.join(map(str, view['columns']))}")
    before = "the largest value: " if view["pool"] == "max" else f"the mean of {view['count']} values: "
    return [_grid(window, caption, mark), _result(view, before)]


def _flatten(view, labels, columns):
    y, x, channel = view["source"]
    return [_facts([("position in the list", str(view["index"])), ("came from", f"row {y}, column {x}, channel {channel}")]),
            _text(view["formula"], "op-formula"), _result(view)]


def _dense(view, labels, columns):
    rows = [{"cells": [str(entry["index"]), rounded(entry["value"]), rounded(entry["weight"]), rounded(entry["product"])],
             "class": _sign(entry["product"])} for entry in view["top"]]
    others = view["inputs"] - len(view["top"])
    if others:
        rows.append({"cells": [f"the other {others}", rounded(view["rest"])], "span": 3})
    return [_table(f"the {len(view['top'])} largest contributions (weight × value) of {view['inputs']} inputs",
                   ["input", "value", "weight", "weight × value"], rows),
            _result(view, operation_text.equation(view, f"{operation_text.unit_name(view, labels)}: sum"))]


def _softmax(view, labels, columns):
    names = labels or [f"unit {unit}" for unit in range(len(view["logits"]))]
    rows = [{"cells": [name, *map(rounded, values)], "class": "chosen" if index == view["position"]["channel"] else ""}
            for index, (name, *values) in enumerate(zip(names, view["logits"], view["shifted"], view["exponentials"],
                                                        view["probabilities"]))]
    rows.append({"cells": ["total", rounded(view["total"]), "1"], "span": 3})
    return [_table("from logits to probabilities", ["class", "logit", "logit − largest", "e to that power",
                                                    "÷ total = probability"], rows),
            _text(view["stable"], "hint"), _text(view["note"], "note"), _result(view)]


def _dropout(view, labels, columns):
    return [_facts([("rate while training", _percent(view["rate"])), ("value in", rounded(view["input"])),
                    ("value out", rounded(view["result"]))]), _text(view["note"], "note"), _result(view)]


def _generic(view, labels, columns):
    return [_facts([("value in", "(not the same shape)" if view["input"] is None else rounded(view["input"]))]),
            _result(view)]


KINDS = {"conv": _conv, "separable": _separable, "batchnorm": _batchnorm, "activation": _activation, "pool": _pool,
         "flatten": _flatten, "dense": _dense, "softmax": _softmax, "dropout": _dropout, "generic": _generic}
