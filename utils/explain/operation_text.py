"""An operation view (:mod:`utils.explain.operations`) in words and in plain-text tables.

The desktop window and visualize.py show :func:`lines`, every number of the view; the site
arranges the same sentences, names, sums and rounded numbers as the page's blocks
(web/operation_view.py), so no front end words or rounds a view on its own. Numbers are rounded to three significant digits for reading; the headline
gives the result exactly as computed, so each front end shows the same number.
"""
import textwrap

from utils.explain.steps import ACTIVATION_NAMES
from utils.model.architectures import LOGITS_LAYER, PROBABILITIES_LAYER

DIGITS = 3           # significant digits a number is shown with, here and on the pages
SHOWN_CHANNELS = 8   # a convolution's input planes drawn as grids; the others as their sums
LINE_WIDTH = 100     # sentences are wrapped to this many characters in the text tables
AGREEMENT = 1e-4     # relative difference under which the view's result is the layer's output


def unit_labels(view, classes):
    """The class names when the view's layer has one unit per class (the logits, the softmax), else None."""
    return list(classes) if view["layer"] in (LOGITS_LAYER, PROBABILITIES_LAYER) else None


def rounded(value):
    """A number as a student reads it: three significant digits (and no "-0")."""
    return f"{value:.{DIGITS}g}" if value else "0"


def result(view):
    """The number the view computes (a view without steps has only the layer's output)."""
    return view.get("result", view["output"])


def position(view):
    """Where the view is: "row 3, column 4, channel 5" in a feature map, "unit 5" in a flat layer."""
    spot = view["position"]
    if len(view["output_shape"]) == 3:
        return f"row {spot['y']}, column {spot['x']}, channel {spot['channel']}"
    return f"unit {spot['channel']}"


def headline(view):
    return f"{view['layer']} ({view['type']}) at {position(view)}: {result(view)!r}"


def check(view):
    """Whether the number computed from the view's numbers is the layer's own output there."""
    own = view["output"]
    same = abs(result(view) - own) <= AGREEMENT * max(1.0, abs(own))
    return (f"The layer's own output here is {rounded(own)}: " +
            ("the same number." if same else f"NOT the {rounded(result(view))} computed above."))


def _activation(name):
    return ACTIVATION_NAMES.get(name, name)


def _then(view):
    """The end of a sentence about a sum: what the layer's activation made of it."""
    if view["activation"] == "linear":
        return "."
    return f", and {_activation(view['activation'])} makes it {rounded(view['result'])}."


def _span(indices):
    return f"{indices[0]} to {indices[-1]}" if len(indices) > 1 else str(indices[0])

def _bias(view):
    """The step from the sum to the value before the activation (a layer without a bias has none)."""
    if not view["bias"]:
        return " (the layer has no bias)"
    return f"; with the bias {rounded(view['bias'])} that is {rounded(view['pre_activation'])}"


def _window_place(view):
    padded = sum(map(sum, view["padding"]))
    place = f"rows {_span(view['rows'])}, columns {_span(view['columns'])} of its input"
    cells = len(view["rows"]) * len(view["columns"])
    return place + (f" ({padded} of the {cells} places are the zero padding around the border)" if padded else "")


def unit_name(view, labels):
    unit = view["position"]["channel"]
    return f"unit {unit} ({labels[unit]})" if labels else f"unit {unit}"


def planes(view):
    """``(noun, numbers)`` for the planes of a convolution's window: the input channel of each,
    or for a separable convolution the number of each depthwise filter."""
    if view["kind"] == "separable":
        return "depthwise filter", list(range(len(view["input_channels"])))
    return "input channel", view["input_channels"]


def plane_names(view):
    """Each plane's name; a separable convolution's also says which input channel its filter reads."""
    noun, numbers = planes(view)
    names = [f"{noun} {number}" for number in numbers]
    if view["kind"] == "separable":
        names = [f"{name} (on input channel {channel})" for name, channel in zip(names, view["input_channels"])]
    return names


def _read_channels(view):
    """A sentence naming the input channels a filter reads when it reads only some (grouped, depthwise)."""
    channels = view["input_channels"]
    if len(channels) == view["input_shape"][-1]:
        return ""
    return f" This filter reads input channel{'s' if len(channels) > 1 else ''} {_span(channels)} only."


def _conv(view, labels):
    rows, columns, channels = len(view["rows"]), len(view["columns"]), len(view["kernel"][0][0])
    return (f"The filter's {rows} x {columns} x {channels} weights lie on {_window_place(view)}.{_read_channels(view)} "
            f"Each input number is multiplied by the weight on it and the {rows * columns * channels} products add up "
            f"to {rounded(view['sum'])}{_bias(view)}{_then(view)}")


def _separable(view, labels):
    rows, columns, filters = len(view["rows"]), len(view["columns"]), len(view["depthwise"])
    inputs = view["input_shape"][-1]
    each = "a filter" if filters == inputs else f"{filters // inputs} filters"
    return (f"Two steps. Depthwise: each of the {inputs} input channels has {each} of {rows} x {columns} weights of "
            f"its own, lying on {_window_place(view)}; each filter's {rows * columns} products add up to one number, "
            f"{filters} in all. Pointwise: output channel {view['position']['channel']} multiplies those {filters} "
            f"numbers by its own {filters} weights and adds the products: {rounded(view['sum'])}{_bias(view)}"
            f"{_then(view)}")


def _batchnorm(view, labels):
    spread = (view["variance"] + view["epsilon"]) ** 0.5
    return (f"Batch normalisation subtracts the mean this channel had in training, {rounded(view['mean'])}, and "
            f"divides by its spread, sqrt({rounded(view['variance'])} + {view['epsilon']:g}) = {rounded(spread)}; "
            f"then it multiplies by gamma {rounded(view['gamma'])} and adds beta {rounded(view['beta'])}. "
            f"{rounded(view['input'])} becomes {rounded(view['result'])}.")


def _activation_view(view, labels):
    text = f"{_activation(view['function'])} turns {rounded(view['input'])} into {rounded(view['result'])}."
    zeroed = view["zeroed"]
    if zeroed["layer"] > 0 and len(view["output_shape"]) == 3:
        text += (f" It set {zeroed['channel']:.0%} of this channel's values to zero "
                 f"({zeroed['layer']:.0%} of the whole layer's).")
    elif zeroed["layer"] > 0:
        text += f" It set {zeroed['layer']:.0%} of the layer's values to zero."
    return text


def _pool(view, labels):
    if view["global"]:
        rows, columns = len(view["window"]), len(view["window"][0])
        place = f"the whole {rows} x {columns} channel"
    else:
        place = f"the {' x '.join(map(str, view['pool_size']))} window on {_window_place(view)}"
    if view["pool"] == "max":
        y, x = view.get("winner_position") or view["winner"]
        return (f"Max pooling looks at {place} and keeps the largest value, {rounded(view['result'])}, "
                f"from row {y}, column {x}.")
    return (f"Average pooling adds the {view['count']} values of {place} and divides by {view['count']}: "
            f"{rounded(view['result'])}.")


def _flatten(view, labels):
    y, x, channel = view["source"]
    return (f"Number {view['index']} of the list is the value at row {y}, column {x}, channel {channel} of the maps "
            f"before it, {rounded(view['result'])}: they are unrolled row by row, and within a pixel channel by "
            "channel. Nothing is computed; from here on the network no longer knows where a number came from.")


def _dense(view, labels):
    others = view["inputs"] - len(view["top"])
    rest = f"; the other {others} add up to {rounded(view['rest'])}" if others else ""
    return (f"{unit_name(view, labels).capitalize()} multiplies each of its {view['inputs']} inputs by its own "
            f"weight and adds the products: {rounded(view['sum'])}. The {len(view['top'])} largest contributions "
            f"are listed{rest}{_bias(view)}{_then(view)}")


def _softmax(view, labels):
    unit = view["position"]["channel"]
    name = labels[unit] if labels else f"unit {unit}"
    return (f"Softmax raises e to each logit minus the largest ({rounded(view['max'])}): numbers from 0 to 1 that "
            f"add up to {rounded(view['total'])}. Each divided by that total is a probability; for {name} "
            f"{rounded(view['exponentials'][unit])} / {rounded(view['total'])} = {rounded(view['result'])}.")


def _dropout(view, labels):
    return f"{view['note']} Here {rounded(view['input'])} passes through as {rounded(view['result'])}."


def _generic(view, labels):
    before = "" if view["input"] is None else f"its input here was {rounded(view['input'])} and "
    return f"A {view['type']} layer, shown without its steps: {before}its output is {rounded(view['output'])}."


SUMMARIES = {"conv": _conv, "separable": _separable, "batchnorm": _batchnorm, "activation": _activation_view,
             "pool": _pool, "flatten": _flatten, "dense": _dense, "softmax": _softmax, "dropout": _dropout,
             "generic": _generic}


def summary(view, labels=None):
    """Two or three sentences on what the layer computed here, with the view's own numbers.

    ``labels`` name the units of a layer with one unit per class (logits, softmax).
    """
    return SUMMARIES[view["kind"]](view, labels)


# ---- every number, as text tables ----------------------------------------------------------

CELL = 10    # characters per number in a table: the longest, -0.000123, and a space


def _cells(values, marks=None):
    """One row of a grid, each value rounded in a fixed-width cell; ``marks`` replace some."""
    return "".join((marks or {}).get(index, rounded(value)).rjust(CELL) for index, value in enumerate(values))


def _grids(titles, grids, marks):
    """Grids of the same shape side by side under their titles; ``marks``, one per grid, {row: {column: text}}."""
    head = "   ".join(title.rjust(CELL * len(grids[0][0])) for title in titles)
    rows = ["   ".join(_cells(grid[row], mark.get(row)) for grid, mark in zip(grids, marks))
            for row in range(len(grids[0]))]
    return [head, *rows]


def _padding_marks(padding):
    return {row: {column: "pad" for column, padded in enumerate(cells) if padded} for row, cells in enumerate(padding)}


def _plane_lines(view, shown):
    """A convolution's window, weights and products, plane by plane (``shown`` of them as grids,
    the others as their sums)."""
    window, kernel, products = view["window"], view["kernel"], view["products"]
    count = len(kernel[0][0])
    sums = plane_sums(view)
    marks = _padding_marks(view["padding"])
    names = plane_names(view)
    lines = [f"input rows {view['rows']}, columns {view['columns']} (pad: outside the input, read as 0)"]
    for plane in range(min(shown, count)):
        grids = [[[cells[plane] for cells in row] for row in grid] for grid in (window, kernel, products)]
        lines += ["", f"{names[plane]}: its products add up to {rounded(sums[plane])}"]
        lines += _grids(("input", "weights", "products"), grids, [marks, {}, {}])
    if count > shown:
        noun, numbers = planes(view)
        lines += ["", f"{noun}s {numbers[shown]} to {numbers[-1]}, the sum of each one's products:"]
        lines += [f"  {numbers[start]:4d}: " + _cells(sums[start:start + 8]) for start in range(shown, count, 8)]
    return lines


def plane_sums(view):
    """The sum of each plane's products: what each input channel (or depthwise filter) adds."""
    products = view["products"]
    return [sum(cells[plane] for row in products for cells in row) for plane in range(len(products[0][0]))]


def equation(view, what):
    """How a weighted sum becomes the result, up to the result: "sum S + bias B = P → ReLU → "
    (without a bias or an activation, shorter)."""
    bias = f" + bias {rounded(view['bias'])} = {rounded(view['pre_activation'])}" if view["bias"] else ""
    then = " = " if view["activation"] == "linear" else f" → {_activation(view['activation'])} → "
    return f"{what} {rounded(view['sum'])}{bias}{then}"


def _summed(view, what):
    return equation(view, what) + rounded(view["result"])


def _conv_lines(view, labels, shown):
    return _plane_lines(view, shown) + ["", _summed(view, "sum of all products")]


def _separable_lines(view, labels, shown):
    lines = ["depthwise step:", *_plane_lines(view, shown), "", "pointwise step:",
             f"{'filter':>8}{'depthwise':>{CELL}}{'weight':>{CELL}}{'product':>{CELL}}"]
    lines += [f"{plane:>8}" + _cells(values) for plane, values
              in enumerate(zip(view["depthwise"], view["pointwise"], view["pointwise_products"]))]
    return lines + [_summed(view, "sum of the pointwise products")]


def _pool_lines(view, labels, shown):
    marks = {} if view["global"] else _padding_marks(view["padding"])
    if view["pool"] == "max":
        i, j = view["winner"]
        marks.setdefault(i, {})[j] = f"[{rounded(view['window'][i][j])}]"
    lines = _grids(("window",), [view["window"]], [marks])
    how = "largest, in brackets" if view["pool"] == "max" else f"mean of {view['count']} values"
    return lines + [f"{view['pool']} pooling keeps the {how}: {rounded(view['result'])}"]


def _dense_lines(view, labels, shown):
    lines = [f"{'input':>8}{'value':>{CELL}}{'weight':>{CELL}}{'product':>{CELL}}"]
    lines += [f"{entry['index']:>8}" + _cells([entry["value"], entry["weight"], entry["product"]]) for entry in view["top"]]
    others = view["inputs"] - len(view["top"])
    if others:
        lines.append(f"{'the other ' + str(others):>{8 + 2 * CELL}}" + _cells([view["rest"]]))
    return lines + [_summed(view, "sum")]


def _softmax_lines(view, labels, shown):
    names = labels or [f"unit {unit}" for unit in range(len(view["logits"]))]
    lines = ["".join(title.rjust(CELL) for title in ("class", "logit", "- max", "e^", "prob."))]
    lines += [name.rjust(CELL) + _cells(values) for name, *values
              in zip(names, view["logits"], view["shifted"], view["exponentials"], view["probabilities"])]
    return lines + ["total".rjust(4 * CELL) + _cells([view["total"]]), *_prose(view["stable"]), *_prose(view["note"])]


DETAILS = {
    "conv": _conv_lines, "separable": _separable_lines, "pool": _pool_lines, "dense": _dense_lines, "softmax": _softmax_lines,
    "batchnorm": lambda view, labels, shown: [view["formula"]],
    "activation": lambda view, labels, shown: [
        f"{view['function']}({rounded(view['input'])}) = {rounded(view['result'])}; set to zero: "
        f"{view['zeroed']['channel']:.1%} of this channel, {view['zeroed']['layer']:.1%} of the layer"],
    "flatten": lambda view, labels, shown: [view["formula"]],
    "dropout": lambda view, labels, shown: [f"rate {view['rate']:g} while training; now {rounded(view['input'])} "
                                            f"in, {rounded(view['result'])} out"],
    "generic": lambda view, labels, shown: [],
}


def _prose(text):
    return textwrap.wrap(text, LINE_WIDTH)


def lines(view, labels=None, shown=SHOWN_CHANNELS):
    """Every number of the view as lines of text: the headline, the summary, the tables, the check."""
    return [headline(view), *_prose(summary(view, labels)), "", *DETAILS[view["kind"]](view, labels, shown), "",
            check(view)]
