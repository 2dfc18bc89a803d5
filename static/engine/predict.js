/* Faces in, calibrated emotion probabilities out: utils/model/predict.py's Predictor in the browser. The
   model is the sub-model Keras exported for a batch of two (a face and its mirror), from the input to the
   last features (the final dense layer's input) and the logits; the mirror average and the card's
   temperature are applied here, as Python applies them. With a personal read-out (readout.js) the
   probabilities are the read-out's, softmax(W f + b) of the features, as Python's with_readout serves them. */
import * as faces from "./faces.js";
import { Model } from "./litert.js";
import { faceJson, roundTo } from "./detection.js";
import { isUncertain } from "../shared/uncertain.js";
import { softmax } from "./softmax.js";

/* Calibrated probabilities from logits: a softmax of logits / temperature + offsets (softmax). */
export { softmax };

/* The card's calibration: its temperature (1 without one) and its per-class logit offsets in the
   card's class order (a class they leave out gets 0), or null without any (calibration). */
export function calibration(card) {
  const entry = card.calibration || {};
  const named = entry.logit_offsets;
  const offsets = named && Object.keys(named).length ? card.classes.map((name) => Number(named[name] || 0)) : null;
  return { temperature: Number(entry.temperature || 1), offsets };
}

export class Predictor {
  /* ``card``: the exported card (the model card plus how to read the browser's files). */
  constructor(model, card, faceConstants) {
    this.model = model;
    this.card = card;
    this.faceConstants = faceConstants;
    this.classes = card.classes;
    ({ temperature: this.temperature, offsets: this.offsets } = calibration(card));
    this.testTimeFlip = Boolean((card.preprocessing || {}).test_time_flip);
    this.cropContext = Number((card.preprocessing || {}).crop_context || 1);
    ({ height: this.height, width: this.width, channels: this.channels } = card.input);
    this.outputs = card.browser.outputs;
    this.readout = null;   /* a Readout (readout.js) replacing the last layer, or null: the model as shipped */
  }

  /* The model's own final dense layer, ``{weights (features x classes), bias}``: where a read-out starts. */
  lastLayer() {
    return this.card.browser.head;
  }

  static async load(modelsUrl, name, faceConstants) {
    const url = new URL(`${name}.json`, modelsUrl);
    const response = await fetch(url);
    if (!response.ok) {
      let reason = `the server answered ${response.status}`;
      try { reason = (await response.json()).error || reason; } catch (err) { /* not JSON: the status says it */ }
      throw new Error(`the model files of ${name} could not be loaded: ${reason}`);
    }
    const card = await response.json();
    return new Predictor(await Model.load(new URL(card.browser.logits, modelsUrl).href), card, faceConstants);
  }

  /* The upright crop of a face of the gray picture (crop). */
  crop(gray, face) {
    return faces.alignedCrop(gray, face, this.faceConstants, this.cropContext, this.width);
  }

  /* A gray face image as the model receives it (preprocess_for_card). */
  preprocess(gray) {
    return faces.preprocess(gray, this.height, this.width, this.channels);
  }

  /* ``{features, logits}`` for one preprocessed face, each averaged with its mirror's when the card says so
     (features_and_logits). */
  async featuresAndLogits(input) {
    const size = this.height * this.width * this.channels;
    const batch = new Float32Array(2 * size);
    batch.set(input);
    batch.set(this.testTimeFlip ? faces.mirrored(input, this.height, this.width, this.channels) : input, size);
    const outputs = await this.model.run(batch);
    const first = (values) => {
      const count = values.length / 2;
      if (!this.testTimeFlip) return values.slice(0, count);
      return Float32Array.from({ length: count }, (_, k) => (values[k] + values[count + k]) / 2);
    };
    return { features: first(outputs[this.outputs.features]), logits: first(outputs[this.outputs.logits]) };
  }

  /* The probabilities served for a face's features and logits: the read-out's, or the card's calibration (served). */
  served({ features, logits }) {
    return this.readout ? this.readout.probabilities(features) : softmax(logits, this.temperature, this.offsets);
  }

  /* Every face found as a prediction dict, with the input it was predicted from (choose_found); no
     face: the whole picture, said so (face_crops). */
  async chooseFaces(gray, found, threshold) {
    if (!found.length) {
      const input = this.preprocess(gray);
      const whole = { box: [0, 0, gray.width, gray.height], score: 0, keypoints: {} };
      const heads = await this.featuresAndLogits(input);
      return [{ prediction: this.predictionDict(whole, this.served(heads), threshold, true), input, features: heads.features }];
    }
    const chosen = [];
    for (const face of found) {
      const input = this.preprocess(this.crop(gray, face).image);
      const heads = await this.featuresAndLogits(input);
      chosen.push({ prediction: this.predictionDict(face, this.served(heads), threshold, false), input,
                    features: heads.features });
    }
    return chosen;
  }

  /* A face and its probabilities as the API's dict (prediction_dict). */
  predictionDict(face, probabilities, threshold, wholeImage) {
    let best = 0;
    probabilities.forEach((p, i) => { if (p > probabilities[best]) best = i; });
    const confidence = probabilities[best];
    return { ...faceJson(face), label: this.classes[best], confidence: roundTo(confidence, 4),
             probabilities: Object.fromEntries(this.classes.map((name, i) => [name, roundTo(probabilities[i], 4)])),
             uncertain: isUncertain(confidence, threshold), whole_image: wholeImage };
  }
}
