"""Calibrate to me: the guided sequence that collects one person's frames, expression by expression.

For each expression in turn (neutral always first, then those the person chose) the sequence
counts down, so the person can put the face on, then collects the model's last features of
every analysed frame for a few seconds. The frames of the last second of each expression are
held back: the read-out (:mod:`utils.model.readout`) is fitted on the others, and the held-back
frames show before and after, the model as shipped against the read-out, as a small confusion
table. Time comes from the caller (a video's own clock, or the wall clock for a camera), so a
video file gives the same sequence every run.

Nothing here draws: ``real_time.py`` and the desktop window draw :meth:`CalibrationSequence.prompt`;
``static/engine/calibration.js`` is the same sequence in the browser, with these durations
(handed to the pages by ``web/facts.py``).
"""
from dataclasses import dataclass

import numpy as np

from utils.model import readout

COUNTDOWN = 3.0     # seconds to put each expression on before its frames count
HOLD = 4.0          # seconds of frames collected per expression
HELD_BACK = 1.0     # the last this many seconds of each expression: the before-and-after check, not fitted
NEUTRAL = "neutral"
SUGGESTED = ("happy", "sad", "surprise")   # shown besides neutral when the person chooses none (those the model has)
READOUT_NOTE = "read by your calibrated last layer"   # the line under the picture while a read-out reads the faces


def durations(countdown=COUNTDOWN, hold=HOLD, held_back=HELD_BACK):
    """The sequence's durations as the pages receive them; ValueError unless 0 <= held_back < hold."""
    if countdown < 0 or not 0 <= held_back < hold:
        raise ValueError(f"calibration durations need countdown >= 0 and 0 <= held back < hold, not "
                         f"{countdown}, {hold}, {held_back}")
    return {"countdown": float(countdown), "hold": float(hold), "held_back": float(held_back)}


def expressions_to_show(classes, chosen=None):
    """The expressions of a calibration: neutral first (when the model has it), then those ``chosen``, in the
    card's order (None: :data:`SUGGESTED`); ValueError naming the card's classes for a name it does not have."""
    if chosen is None:
        chosen = [name for name in SUGGESTED if name in classes]
    unknown = [name for name in chosen if name not in classes]
    if unknown:
        raise ValueError(f"no expression {', '.join(unknown)} in this model (it has {', '.join(classes)})")
    shown = [name for name in classes if name == NEUTRAL] + [name for name in classes
                                                             if name in chosen and name != NEUTRAL]
    if len(shown) < 2:
        raise ValueError("a calibration needs at least two expressions: choose one besides neutral")
    return shown


@dataclass(frozen=True)
class Prompt:
    """What to show the person now: the ``phase`` ("ready": counting down; "hold": frames count;
    "done"), the ``expression``, the seconds left of the phase, which ``step`` of ``steps`` it is, and
    the share of the whole sequence done (``progress``, 0..1)."""
    phase: str
    expression: str
    seconds_left: float
    step: int
    steps: int
    progress: float

    def text(self):
        """The prompt as one line, as the windows draw it."""
        if self.phase == "done":
            return "Calibration done"
        if self.phase == "ready":
            return f"{self.step}/{self.steps}: show {self.expression} in {int(np.ceil(self.seconds_left))}"
        # tenths of a second rounded up (as a countdown does), so that no tie is rounded two ways
        return f"{self.step}/{self.steps}: hold {self.expression} ({np.ceil(self.seconds_left * 10) / 10:.1f} s)"


@dataclass
class Calibration:
    """A finished calibration: the read-out and the before-and-after check on the held-back frames
    (confusion counts, rows: the expressions shown; columns: all the model's classes)."""
    readout: readout.Readout
    expressions: list
    classes: list
    before: np.ndarray
    after: np.ndarray
    fitted_frames: dict
    held_back_frames: dict
    fit: readout.Fit
    held_back_seconds: float = HELD_BACK

    def accuracy(self, counts):
        rows = [self.classes.index(name) for name in self.expressions]
        total = counts.sum()
        return float(counts[np.arange(len(rows)), rows].sum() / total) if total else None

    def table_lines(self):
        """The before-and-after check as lines of text (the console's and the desktop window's)."""
        shown = [self.classes.index(name) for name in self.expressions]
        columns = sorted(set(shown) | set(np.flatnonzero(self.before.sum(axis=0) + self.after.sum(axis=0))))
        width = max(len(name) for name in self.classes) + 1
        lines = [f"Held-back frames (the last {self.held_back_seconds:g} s of each expression), read by the model "
                 "as shipped and by your read-out:"]
        for title, counts in (("as shipped", self.before), ("your read-out", self.after)):
            accuracy = self.accuracy(counts)
            lines.append(f"{title}: {accuracy:.0%} right" if accuracy is not None else f"{title}: no frames")
            lines.append("shown \\ read".ljust(width + 6) + "".join(self.classes[c][:width].rjust(width) for c in columns))
            for row, name in enumerate(self.expressions):
                lines.append(name.ljust(width + 6) + "".join(str(counts[row, c]).rjust(width) for c in columns))
        lines.append(f"fitted on {sum(self.fitted_frames.values())} frames in {self.fit.seconds * 1000:.0f} ms "
                     f"({self.fit.iterations} steps)")
        return lines


class CalibrationSequence:
    """The guided sequence, frame by frame: :meth:`prompt` says what to show, :meth:`add` takes each
    analysed frame's features (None when no face was seen), :meth:`finish` fits and checks."""

    def __init__(self, classes, expressions, countdown=COUNTDOWN, hold=HOLD, held_back=HELD_BACK):
        durations(countdown, hold, held_back)
        self.classes, self.expressions = list(classes), list(expressions)
        self.countdown, self.hold, self.held_back = countdown, hold, held_back
        self.started = None
        self.frames = []   # (expression index, seconds into its hold, features)

    @property
    def total_seconds(self):
        """How long the whole sequence takes."""
        return len(self.expressions) * (self.countdown + self.hold)

    def prompt(self, now):
        """The :class:`Prompt` at time ``now`` (seconds, any clock: the first call starts the sequence)."""
        if self.started is None:
            self.started = now
        elapsed, steps = now - self.started, len(self.expressions)
        step, into = divmod(elapsed, self.countdown + self.hold)
        step, progress = int(step), min(1.0, elapsed / (steps * (self.countdown + self.hold)))
        if step >= steps:
            return Prompt("done", "", 0.0, steps, steps, 1.0)
        expression = self.expressions[step]
        if into < self.countdown:
            return Prompt("ready", expression, self.countdown - into, step + 1, steps, progress)
        return Prompt("hold", expression, self.countdown + self.hold - into, step + 1, steps, progress)

    def add(self, now, features):
        """One analysed frame at ``now``: its first face's features count while an expression is held;
        returns the :class:`Prompt` for this moment."""
        prompt = self.prompt(now)
        if prompt.phase == "hold" and features is not None:
            self.frames.append((prompt.step - 1, self.hold - prompt.seconds_left, np.asarray(features, np.float64)))
        return prompt

    def finish(self, predictor):
        """Fit the read-out on the frames collected, check it on those held back: a :class:`Calibration`.
        ValueError in one line when an expression has no frame to fit on (no face was seen)."""
        fitted = [(step, features) for step, time, features in self.frames if time < self.hold - self.held_back]
        held = [(step, features) for step, time, features in self.frames if time >= self.hold - self.held_back]
        missing = [self.expressions[step] for step in range(len(self.expressions))
                   if not any(index == step for index, _ in fitted)]
        if missing:
            raise ValueError(f"no face was seen while you showed {', '.join(missing)}: calibrate again, "
                             "facing the camera")
        label = [self.classes.index(name) for name in self.expressions]
        features = np.stack([row for _, row in fitted])
        weights, bias = predictor.last_layer()
        result = readout.fit(features, [label[step] for step, _ in fitted], weights, bias)
        count = {name: sum(step == index for step, _ in fitted) for index, name in enumerate(self.expressions)}
        personal = readout.make_readout(predictor.card, result, count)
        before = np.zeros((len(self.expressions), len(self.classes)), np.int64)
        after = before.copy()
        if held:
            rows = np.stack([row for _, row in held])
            shipped = predictor.calibrated(rows @ weights + bias).argmax(axis=1)
            mine = personal.probabilities(rows).argmax(axis=1)
            for (step, _), was, now in zip(held, shipped, mine):
                before[step, was] += 1
                after[step, now] += 1
        return Calibration(personal, self.expressions, self.classes, before, after, count,
                           {name: sum(step == index for step, _ in held) for index, name in enumerate(self.expressions)},
                           result, self.held_back)


class LiveCalibration:
    """A calibration running on a live analyser's frames (:class:`utils.live.tracking.VideoAnalyser`):
    each analysed frame's first face feeds the sequence; when it is done the analyser reads with the
    read-out from then on. The front ends only draw :attr:`prompt` and, at the end, :attr:`result`."""

    def __init__(self, analyser, expressions, **durations_given):
        self.analyser = analyser
        self.shipped = analyser.predictor.with_readout(None)   # "before" is always the model as shipped
        self.sequence = CalibrationSequence(self.shipped.classes, expressions, **durations_given)
        self.prompt, self.result, self.error = None, None, None

    @property
    def running(self):
        """Until the sequence ends: then :attr:`result` holds the calibration, or :attr:`error` why there is none."""
        return self.result is None and self.error is None

    def after_frame(self, now, analysed):
        """Call after ``analyser.analyse`` with the frame's time; returns the :class:`Prompt`. The last
        frame fits the read-out and puts it to use, or, when an expression got no face, says why in
        :attr:`error` (the analyser reads as before)."""
        chosen = self.analyser.chosen
        features = chosen[0].features if analysed and chosen and self.analyser.seen[0] else None
        self.prompt = self.sequence.add(now, features) if analysed else self.sequence.prompt(now)
        if self.prompt.phase == "done" and self.running:
            try:
                self.result = self.sequence.finish(self.shipped)
            except ValueError as error:
                self.error = str(error)
                return self.prompt
            self.analyser.predictor = self.shipped.with_readout(self.result.readout)
        return self.prompt
