/* The in-browser engine's one public face: load it once (the runtime, both BlazeFace networks, the
   chosen emotion model and the constants Python serves), then find and label faces in a photo or follow
   them through a video, all on this device. What it answers has the JSON API's fields. */
import * as pixels from "./pixels.js";
import * as picture from "./picture.js";
import { fetchFile, loadRuntime } from "./litert.js";
import { Detector, Network } from "./detection.js";
import { Predictor } from "./predict.js";
import { VideoAnalyser } from "./video.js";
import { LayerMaps } from "./layers.js";

async function json(url, what) {
  return (await fetchFile(url, what)).json();
}

/* ``engineUrl``: where constants.json, blazeface/ and models/ are; ``vendorUrl``: the LiteRT.js folder. */
export async function loadEngine({ engineUrl, vendorUrl, model }) {
  const constants = await json(new URL("constants.json", engineUrl), "the engine's settings");
  await loadRuntime(vendorUrl);
  const networks = {};
  for (const [key, spec] of Object.entries(constants.detection.networks)) {
    networks[key] = await Network.load(spec, new URL(`blazeface/${spec.file}`, engineUrl).href);
  }
  const modelsUrl = new URL("models/", engineUrl);
  const predictor = await Predictor.load(modelsUrl, model, constants.faces);
  return new Engine(new Detector(networks, constants.detection), predictor, constants, modelsUrl);
}

export class Engine {
  constructor(detector, predictor, constants, modelsUrl) {
    this.detector = detector;
    this.predictor = predictor;
    this.constants = constants;
    this.modelsUrl = modelsUrl;
    this.layerMaps = null;
    this.canvas = document.createElement("canvas");
    this.context = this.canvas.getContext("2d", { willReadFrequently: true, colorSpace: "srgb" });
  }

  /* A picture (ImageBitmap, video, canvas) as 8-bit RGB, colours as stored (no colour management, as
     Python reads them), transparency on the background Python puts it on. */
  rgbOf(source, width, height) {
    if (this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas.width = width;    /* a new size resets the context's state, not the context */
      this.canvas.height = height;
    }
    this.context.fillStyle = `rgb(${this.constants.picture.background.join(", ")})`;
    this.context.fillRect(0, 0, width, height);
    this.context.drawImage(source, 0, 0, width, height);
    return pixels.rgbFromRgba(this.context.getImageData(0, 0, width, height).data, width, height);
  }

  /* RGB and its gray, the two forms the detector and the model read. */
  withGray(rgb) {
    const { gray_weights: weights, gray_shift: shift } = this.constants.faces;
    return { rgb, gray: pixels.gray(rgb, weights, shift) };
  }

  /* A photo file decoded as Python decodes an upload (picture.js); rejects with a one-line reason. */
  decode(file) {
    return picture.decode(file, this.constants.picture);
  }

  /* A decoded photo's pixels as Python's decode_image gives them: big pictures shrunk. */
  photoPixels(bitmap) {
    const rgb = this.rgbOf(bitmap, bitmap.width, bitmap.height);
    return this.withGray(picture.shrunk(rgb, this.constants.picture.decode_side));
  }

  /* Every face of a decoded photo, found thoroughly and labelled: the JSON API's answer. */
  async analysePhoto(bitmap, threshold) {
    const { rgb, gray } = this.photoPixels(bitmap);
    const found = await this.detector.findFaces(rgb, "thorough");
    const chosen = await this.predictor.chooseFaces(gray, found, threshold);
    return { model: this.predictor.card.name, image: { width: rgb.width, height: rgb.height },
             faces: chosen.map((face) => face.prediction), order: this.constants.detection.face_order, chosen };
  }

  /* A video analyser: frames in (analyseFrame), smoothed faces out. */
  analyser() {
    return new VideoAnalyser(this.detector, this.predictor, this.constants.video, this.constants.detection.sure_score);
  }

  async analyseFrame(analyser, video, threshold) {
    const { rgb, gray } = this.withGray(this.rgbOf(video, video.videoWidth, video.videoHeight));
    return analyser.analyse(rgb, gray, threshold);
  }

  /* One layer's feature maps for a preprocessed face; the layers' model loads on first use. */
  async layer(input, name, channels) {
    if (!this.layerMaps) {
      this.layerMaps = LayerMaps.load(this.modelsUrl, this.predictor.card, this.constants.viridis, channels);
    }
    return (await this.layerMaps).maps(input, name);
  }
}
