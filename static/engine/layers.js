/* One layer's feature maps for one face, computed in the browser for the Live page: the exported
   model with every layer the page offers as an output (NAME.layers.tflite), and the pictures drawn as
   web/analysis.py's layer_maps draws them (the first channels, on one viridis scale for the layer). */
import { Model } from "./litert.js";
import { roundTo } from "./detection.js";

export class LayerMaps {
  constructor(model, card, viridis, channels) {
    this.model = model;
    this.layers = Object.fromEntries(card.browser.layers.map((layer) => [layer.name, layer]));
    this.viridis = viridis;
    this.channels = channels;
  }

  static async load(modelsUrl, card, viridis, channels) {
    return new LayerMaps(await Model.load(new URL(card.browser.layers_file, modelsUrl).href), card, viridis, channels);
  }

  /* ``{name, kind, shape, range, maps: [PNG URL], channel_ranges}`` for one preprocessed face (layer_maps). */
  async maps(input, name) {
    const layer = this.layers[name];
    if (!layer) throw new Error(`'${name}' is not a layer with feature maps`);
    const values = (await this.model.run(input, [layer.output]))[layer.output];
    const [height, width, depth] = layer.shape;
    let low = Infinity, high = -Infinity;
    for (const v of values) { if (v < low) low = v; if (v > high) high = v; }
    const shown = Math.min(this.channels, depth);
    const maps = [], ranges = [];
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    for (let c = 0; c < shown; c++) {
      const picture = context.createImageData(width, height);
      let least = Infinity, most = -Infinity;
      for (let i = 0; i < height * width; i++) {
        const v = values[i * depth + c];
        least = Math.min(least, v);
        most = Math.max(most, v);
        const scaled = high > low ? Math.fround(Math.fround(v - low) / Math.fround(high - low)) : 0;
        const [r, g, b] = this.viridis[Math.min(255, Math.max(0, Math.floor(Math.min(1, Math.max(0, scaled)) * 256)))];
        picture.data.set([r, g, b, 255], i * 4);
      }
      context.putImageData(picture, 0, 0);
      maps.push(canvas.toDataURL("image/png"));
      ranges.push([roundTo(least, 4), roundTo(most, 4)]);
    }
    return { name, kind: layer.kind, shape: layer.shape, range: [roundTo(low, 4), roundTo(high, 4)], maps, channel_ranges: ranges };
  }
}
