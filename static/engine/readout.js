/* A personal read-out: utils/model/readout.py in the browser. The model's last layer fitted again on one
   person's features (multinomial logistic regression, started from and pulled towards the model's own
   final weights), by the very steps Python takes: limited-memory BFGS with a backtracking line search, the
   settings handed over in the engine constants (readout). Python is the reference; a test in Chromium
   holds the two together. Everything here stays on this device. */

import { softmax } from "./softmax.js";

export const FORMAT = "emodetect-readout";
export const VERSION = 1;

/* Where this browser keeps a student's read-out of the model of ``card`` (Live writes it, Explore reads it). */
export function storageKey(card) {
  return `readout:${card.weights_sha256}`;
}

function dot(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}


/* ``[value, gradient]`` of the fit's objective at ``theta`` (the weights row by row, then the bias): the mean
   cross-entropy of the frames plus strength / 2 times the squared distance from the model's own (objective). */
function objective(theta, features, labels, start, strength, width, classes) {
  const count = features.length;
  const gradient = new Float64Array(theta.length);
  const biasAt = width * classes;
  const p = new Float64Array(classes);   /* one frame's logits, then its probabilities, then its error */
  let loss = 0;
  for (let i = 0; i < count; i++) {
    const row = features[i];
    for (let c = 0; c < classes; c++) p[c] = 0;
    for (let f = 0; f < width; f++) {
      const x = row[f];
      if (x === 0) continue;
      const offset = f * classes;
      for (let c = 0; c < classes; c++) p[c] += x * theta[offset + c];
    }
    let top = -Infinity;
    for (let c = 0; c < classes; c++) {
      p[c] += theta[biasAt + c];
      if (p[c] > top) top = p[c];
    }
    let total = 0;
    for (let c = 0; c < classes; c++) {
      p[c] = Math.exp(p[c] - top);
      total += p[c];
    }
    for (let c = 0; c < classes; c++) p[c] /= total;
    loss -= Math.log(Math.max(p[labels[i]], 1e-300));
    p[labels[i]] -= 1;
    for (let c = 0; c < classes; c++) p[c] /= count;
    for (let f = 0; f < width; f++) {
      const x = row[f];
      if (x === 0) continue;
      const offset = f * classes;
      for (let c = 0; c < classes; c++) gradient[offset + c] += x * p[c];
    }
    for (let c = 0; c < classes; c++) gradient[biasAt + c] += p[c];
  }
  let pull = 0;
  for (let k = 0; k < theta.length; k++) {
    const change = theta[k] - start[k];
    pull += change * change;
    gradient[k] += strength * change;
  }
  return [loss / count + (strength / 2) * pull, gradient];
}

/* L-BFGS' estimate of the inverse Hessian times ``gradient`` from the remembered pairs (two_loop). */
function twoLoop(gradient, steps, changes) {
  const direction = Float64Array.from(gradient);
  const alphas = [];
  for (let k = steps.length - 1; k >= 0; k--) {
    const alpha = dot(steps[k], direction) / dot(steps[k], changes[k]);
    for (let i = 0; i < direction.length; i++) direction[i] -= alpha * changes[k][i];
    alphas.push(alpha);
  }
  if (steps.length) {
    const last = steps.length - 1;
    const scale = dot(steps[last], changes[last]) / dot(changes[last], changes[last]);
    for (let i = 0; i < direction.length; i++) direction[i] *= scale;
  }
  for (let k = 0; k < steps.length; k++) {
    const alpha = alphas[steps.length - 1 - k];
    const beta = dot(changes[k], direction) / dot(steps[k], changes[k]);
    for (let i = 0; i < direction.length; i++) direction[i] += (alpha - beta) * steps[k][i];
  }
  return direction;
}

function largest(values) {
  let most = 0;
  for (const v of values) most = Math.max(most, Math.abs(v));
  return most;
}

/* The read-out for ``features`` (frames, each an array of the model's last features) labelled ``labels`` (class
   indices), started from and pulled towards ``weights`` (features x classes, as Keras keeps them) and ``bias``
   (fit): ``{weights, bias, iterations, milliseconds, gradient}``. ``settings``: the engine constants' readout. */
export function fit(features, labels, weights, bias, settings) {
  const started = performance.now();
  const width = weights.length, classes = bias.length;
  if (!features.length) throw new Error("no frames to fit a read-out on");
  if (features.some((row) => row.length !== width)) throw new Error(`every frame needs ${width} features`);
  const start = new Float64Array(width * classes + classes);
  weights.forEach((row, f) => row.forEach((v, c) => { start[f * classes + c] = v; }));
  bias.forEach((v, c) => { start[width * classes + c] = v; });
  const rows = features.map((row) => Float64Array.from(row));
  const evaluate = (theta) => objective(theta, rows, labels, start, settings.strength, width, classes);
  let theta = Float64Array.from(start);
  let [value, gradient] = evaluate(theta);
  let steps = [], changes = [];
  let iterations = 0;
  while (iterations < settings.max_iterations && largest(gradient) > settings.tolerance) {
    let direction = twoLoop(gradient, steps, changes).map((v) => -v);
    let slope = dot(gradient, direction);
    if (slope >= 0) {   /* not a descent direction (rounding): start the memory again */
      steps = [];
      changes = [];
      direction = gradient.map((v) => -v);
      slope = -dot(gradient, gradient);
    }
    let size = 1, taken = null, newValue = 0, newGradient = null;
    for (let halving = 0; halving < settings.max_halvings; halving++) {
      const candidate = theta.map((v, i) => v + size * direction[i]);
      [newValue, newGradient] = evaluate(candidate);
      if (newValue <= value + settings.armijo * size * slope) {
        taken = candidate;
        break;
      }
      size *= settings.backtrack;
    }
    if (!taken) break;   /* no step lowers it any more: as close as float64 gets */
    const step = taken.map((v, i) => v - theta[i]);
    const change = newGradient.map((v, i) => v - gradient[i]);
    if (dot(step, change) > 1e-12) {
      steps.push(step);
      changes.push(change);
      if (steps.length > settings.memory) {
        steps.shift();
        changes.shift();
      }
    }
    [theta, value, gradient] = [taken, newValue, newGradient];
    iterations += 1;
  }
  const fitted = Array.from({ length: width }, (_, f) => Array.from(theta.subarray(f * classes, (f + 1) * classes)));
  return { weights: fitted, bias: Array.from(theta.subarray(width * classes)), iterations,
           milliseconds: performance.now() - started, gradient: largest(gradient) };
}

/* One person's last layer for one model; the same JSON file as Python's (Readout.to_dict). */
export class Readout {
  constructor({ model, weights_sha256, classes, weights, bias, strength, frames = {}, created = "" }) {
    Object.assign(this, { model, weights_sha256, classes, weights, bias, strength, frames, created });
  }

  /* softmax(f W + b) for one frame's features: no temperature, no offsets (its fit is its calibration). */
  probabilities(features) {
    const classes = this.bias.length;
    const logits = Array.from(this.bias);
    for (let f = 0; f < this.weights.length; f++) {
      const x = features[f];
      if (x === 0) continue;
      for (let c = 0; c < classes; c++) logits[c] += x * this.weights[f][c];
    }
    return softmax(logits);
  }

  toJSON() {
    return { format: FORMAT, version: VERSION, model: this.model, weights_sha256: this.weights_sha256,
             classes: this.classes, features: this.weights.length, weights: this.weights, bias: this.bias,
             strength: this.strength, frames: this.frames, created: this.created };
  }

  /* A read-out of ``card``'s model from a fit (make_readout); ``frames``: class name -> frames fitted on. */
  static made(card, result, frames, strength) {
    return new Readout({ model: card.name, weights_sha256: card.weights_sha256, classes: card.classes,
                         weights: result.weights, bias: result.bias, strength, frames,
                         created: new Date().toISOString().replace(/\.\d+Z$/, "Z") });
  }

  /* The read-out a parsed JSON file describes, checked against ``card``'s model (Readout.from_dict and
     check_model); throws an Error whose message is one line. */
  static fromJSON(mapping, card) {
    if (!mapping || mapping.format !== FORMAT) throw new Error('this is not a read-out file (it has no "format": "emodetect-readout")');
    if (mapping.version !== VERSION) throw new Error(`read-out version ${mapping.version} is not one this page reads (${VERSION})`);
    const { weights, bias, classes } = mapping;
    const shaped = Array.isArray(weights) && Array.isArray(bias) && Array.isArray(classes) &&
      weights.length === mapping.features && bias.length === classes.length &&
      weights.every((row) => Array.isArray(row) && row.length === classes.length && row.every(Number.isFinite)) &&
      bias.every(Number.isFinite);
    if (!shaped) throw new Error("the read-out file's weights do not match its features and classes");
    const readout = new Readout(mapping);
    if (!card.weights_sha256) throw new Error(`model ${card.name} has no weights digest in its card, so no read-out can be tied to it`);
    if (readout.weights_sha256 !== card.weights_sha256 || readout.classes.join("\n") !== card.classes.join("\n")) {
      throw new Error(`this read-out belongs to model ${readout.model} (weights ${String(readout.weights_sha256).slice(0, 12)}), ` +
                      `not to ${card.name} (weights ${card.weights_sha256.slice(0, 12)}): calibrate again with this model`);
    }
    return readout;
  }
}
