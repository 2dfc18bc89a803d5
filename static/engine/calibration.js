/* Calibrate to me, frame by frame: utils/live/calibration.py's CalibrationSequence in the browser. Each
   expression in turn (neutral first): a countdown, then the last features of every analysed frame for a few
   seconds; the last second of each is held back. finish() fits the read-out (readout.js) on the others and
   reads the held-back frames with the model as shipped and with the read-out, as confusion counts. The
   durations are Python's (web/facts.py); nothing here draws. */
import { fit, Readout } from "./readout.js";
import { softmax } from "./predict.js";

/* ``neutral`` first (when the model has it: the name comes from Python, web/facts.py's calibration), then
   those ``chosen``, in the card's order (expressions_to_show). */
export function expressionsToShow(classes, chosen, neutral) {
  const unknown = chosen.filter((name) => !classes.includes(name));
  if (unknown.length) throw new Error(`no expression ${unknown.join(", ")} in this model (it has ${classes.join(", ")})`);
  const shown = classes.filter((name) => name === neutral).concat(classes.filter((name) => name !== neutral && chosen.includes(name)));
  if (shown.length < 2) throw new Error("a calibration needs at least two expressions: choose one besides neutral");
  return shown;
}

function argmax(values) {
  let best = 0;
  values.forEach((v, i) => { if (v > values[best]) best = i; });
  return best;
}

/* The prompt as one line: Python's utils.live.calibration.Prompt.text, which a test holds this to. */
export function promptText(prompt) {
  if (prompt.phase === "done") return "Calibration done";
  if (prompt.phase === "ready") return `${prompt.step}/${prompt.steps}: show ${prompt.expression} in ${Math.ceil(prompt.secondsLeft)}`;
  return `${prompt.step}/${prompt.steps}: hold ${prompt.expression} (${(Math.ceil(prompt.secondsLeft * 10) / 10).toFixed(1)} s)`;
}

export class CalibrationSequence {
  /* ``durations``: ``{countdown, hold, held_back}`` in seconds (web/facts.py's calibration). */
  constructor(classes, expressions, durations) {
    this.classes = classes;
    this.expressions = expressions;
    ({ countdown: this.countdown, hold: this.hold, held_back: this.heldBack } = durations);
    this.started = null;
    this.frames = [];   /* {step, time (seconds into its hold), features} */
  }

  get totalSeconds() { return this.expressions.length * (this.countdown + this.hold); }

  /* What to show at ``now`` (seconds; the first call starts the sequence): ``{phase: "ready" | "hold" | "done",
     expression, secondsLeft, step, steps, progress}`` (prompt). */
  prompt(now) {
    if (this.started === null) this.started = now;
    const elapsed = now - this.started, steps = this.expressions.length, period = this.countdown + this.hold;
    const step = Math.floor(elapsed / period), into = elapsed - step * period;
    const progress = Math.min(1, elapsed / (steps * period));
    if (step >= steps) return { phase: "done", expression: "", secondsLeft: 0, step: steps, steps, progress: 1 };
    const expression = this.expressions[step];
    if (into < this.countdown) return { phase: "ready", expression, secondsLeft: this.countdown - into, step: step + 1, steps, progress };
    return { phase: "hold", expression, secondsLeft: period - into, step: step + 1, steps, progress };
  }

  /* One analysed frame at ``now``: its first face's ``features`` (null: no face) count while an expression is held. */
  add(now, features) {
    const prompt = this.prompt(now);
    if (prompt.phase === "hold" && features) {
      this.frames.push({ step: prompt.step - 1, time: this.hold - prompt.secondsLeft, features: Float64Array.from(features) });
    }
    return prompt;
  }

  /* Fit on the frames collected, check on those held back (finish): ``{readout, fit, before, after (confusion counts,
     rows: the expressions, columns: every class), fitted, heldBack (frames per expression)}``. ``predictor``: the
     engine's (its card, its own last layer and calibration); ``settings``: the engine constants' readout. */
  finish(predictor, settings) {
    const fitted = this.frames.filter((frame) => frame.time < this.hold - this.heldBack);
    const held = this.frames.filter((frame) => frame.time >= this.hold - this.heldBack);
    const missing = this.expressions.filter((_, step) => !fitted.some((frame) => frame.step === step));
    if (missing.length) throw new Error(`no face was seen while you showed ${missing.join(", ")}: calibrate again, facing the camera`);
    const label = this.expressions.map((name) => this.classes.indexOf(name));
    const { weights, bias } = predictor.lastLayer();
    const result = fit(fitted.map((frame) => frame.features), fitted.map((frame) => label[frame.step]), weights, bias, settings);
    const count = (frames) => Object.fromEntries(this.expressions.map((name, step) => [name, frames.filter((frame) => frame.step === step).length]));
    const readout = Readout.made(predictor.card, result, count(fitted), settings.strength);
    const table = () => this.expressions.map(() => this.classes.map(() => 0));
    const before = table(), after = table();
    for (const frame of held) {
      const logits = bias.map((b, c) => weights.reduce((sum, row, f) => sum + frame.features[f] * row[c], b));
      before[frame.step][argmax(softmax(logits, predictor.temperature, predictor.offsets))] += 1;
      after[frame.step][argmax(readout.probabilities(frame.features))] += 1;
    }
    return { readout, fit: result, before, after, fitted: count(fitted), heldBack: count(held) };
  }
}
