/* Face finding in the browser: utils/faces/blazeface.py's BlazeFace search, step for step
   (the order faces come in: utils/faces/detect.py). Anchors come from
   each network's grids, decoding and the weighted merge are pure functions over arrays, and every
   threshold is the Python module's own (engine constants, served from Python). Two levels of search:
   "thorough" (photos: the full-range network over the whole picture and its tiles) and "fast" (video
   frames: the whole picture once); both add the short-range network over the whole picture, and every
   candidate gets a second look by the short-range network before it is a face. */
import * as pixels from "./pixels.js";
import { Model } from "./litert.js";

/* A BlazeFace network: its compiled model, square input side and anchor centres (x, y pairs in [0, 1]). */
export class Network {
  constructor(spec, model) {
    this.name = spec.name;
    this.side = spec.side;
    this.model = model;
    this.anchors = anchors(spec.side, spec.grids);
    this.count = this.anchors.length / 2;
  }

  static async load(spec, url) {
    return new Network(spec, await Model.load(url));
  }

  /* The raw outputs for one input (side x side x 3 in [-1, 1]): ``{values (N x 16), logits (N)}``. */
  async raw(input) {
    const outputs = Object.values(await this.model.run(input));
    const values = outputs.find((output) => output.length === this.count * 16);
    const logits = outputs.find((output) => output.length === this.count);
    return { values, logits };
  }
}

/* Anchor centres: the middle of every cell of every grid, repeated per cell (Network.anchors). */
export function anchors(side, grids) {
  const centres = [];
  for (const [stride, perCell] of grids) {
    const cells = side / stride;
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        const cx = Math.fround((x + 0.5) / cells), cy = Math.fround((y + 0.5) / cells);
        for (let k = 0; k < perCell; k++) centres.push(cx, cy);
      }
    }
  }
  return Float32Array.from(centres);
}

/* One detection: ``box`` [x0, y0, x1, y1], ``points`` [x, y] x 6, ``score``. */
const detection = (box, points, score) => ({ box, points, score });

/* The network's values at the anchors ``indices``, in fractions of its input -> detections; boxes
   without area are dropped (decode). */
export function decode(values, anchorCentres, indices, scores, side) {
  const found = [];
  indices.forEach((anchor, i) => {
    const v = (k) => values[anchor * 16 + k] / side;
    const ax = anchorCentres[2 * anchor], ay = anchorCentres[2 * anchor + 1];
    const cx = v(0) + ax, cy = v(1) + ay, hw = v(2) / 2, hh = v(3) / 2;
    if (!(hw > 0 && hh > 0)) return;
    const points = [];
    for (let k = 0; k < 6; k++) points.push([v(4 + 2 * k) + ax, v(5 + 2 * k) + ay]);
    found.push(detection([cx - hw, cy - hh, cx + hw, cy + hh], points, scores[i]));
  });
  return found;
}

/* Intersection over union and over the smaller box's area, of two x0 y0 x1 y1 boxes (box_overlaps). */
export function boxOverlaps(a, b) {
  const width = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const height = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = width * height;
  const areaA = (a[2] - a[0]) * (a[3] - a[1]), areaB = (b[2] - b[0]) * (b[3] - b[1]);
  return [inter / Math.max(areaA + areaB - inter, 1e-12), inter / Math.max(Math.min(areaA, areaB), 1e-12)];
}

/* MediaPipe's weighted non-maximum suppression (weighted_merge): the best detection absorbs those
   overlapping it, its box and keypoints becoming their score-weighted mean; ``containment`` also
   absorbs one lying that much inside the other. */
export function weightedMerge(found, mergeIou, containment = null) {
  let remaining = found.map((item, index) => [item, index])
    .sort((p, q) => q[0].score - p[0].score || p[1] - q[1]).map(([item]) => item);
  const kept = [];
  while (remaining.length) {
    const best = remaining[0];
    const same = remaining.map((other) => {
      const [union, covered] = boxOverlaps(best.box, other.box);
      return union > mergeIou || (containment !== null && covered > containment);
    });
    const group = remaining.filter((_, i) => same[i]);
    const total = group.reduce((sum, item) => sum + item.score, 0);
    const box = [0, 1, 2, 3].map((k) => group.reduce((sum, item) => sum + item.box[k] * item.score, 0) / total);
    const points = best.points.map((_, p) => [0, 1].map((k) =>
      group.reduce((sum, item) => sum + item.points[p][k] * item.score, 0) / total));
    kept.push(detection(box, points, best.score));
    remaining = remaining.filter((_, i) => !same[i]);
  }
  return kept;
}

/* Python's round(): to nearest, halves to even. */
export function roundHalfEven(value) {
  let rounded = Math.round(value);
  if (rounded - value === 0.5 && rounded % 2 !== 0) rounded -= 1;
  return rounded;
}

/* The tile sides of a thorough search, the whole picture first (search_sides). */
export function searchSides(width, height, c) {
  let side = Math.max(width, height);
  const smallest = Math.max(c.min_face_px, side * c.min_face_fraction);
  const last = Math.max(c.networks.full.side, smallest * c.networks.full.side / c.min_face_input);
  const sides = [side];
  while (side > last) {
    side = Math.max(last, side / 2);
    sides.push(side);
  }
  return sides;
}

/* Window starts covering ``length``, the last flush with the end (_starts). */
export function starts(length, window, step) {
  if (length <= window) return [0];
  const found = [];
  for (let start = 0; start < length - window; start += step) found.push(start);
  return found.concat(length - window);
}

function cutByTile([x0, y0, x1, y1], left, top, window, width, height, margin = 2) {
  const right = left + window, bottom = top + window;
  return (x0 <= left + margin && left > 0) || (y0 <= top + margin && top > 0)
    || (x1 >= right - margin && right < width) || (y1 >= bottom - margin && bottom < height);
}

/* ``image`` at ``width`` x ``height``: halved while over twice as large, then area-averaged or enlarged (_resized). */
export function resized(image, width, height) {
  while (image.width >= 2 * width && image.height >= 2 * height) {
    image = pixels.resize(image, Math.floor(image.width / 2), Math.floor(image.height / 2), true);
  }
  return pixels.resize(image, width, height);
}

/* RGB 8-bit -> float32 in [-1, 1], as the networks read it. */
function toInput(image, into = new Float32Array(image.data.length)) {
  for (let i = 0; i < image.data.length; i++) into[i] = image.data[i] / 127.5 - 1;
  return into;
}

/* The whole search over an RGB picture, given both loaded networks and the constants. */
export class Detector {
  constructor(networks, constants) {
    this.networks = networks;   /* {full, short} */
    this.c = constants;
    this.threshold = Math.log(constants.min_score / (1 - constants.min_score));
    this.timings = { calls: 0 };
  }

  /* Every face of ``rgb`` in face order: ``detail`` "thorough" or "fast" (find_faces). */
  async findFaces(rgb, detail = "thorough") {
    const longest = Math.max(rgb.width, rgb.height);
    const sides = detail === "thorough" ? searchSides(rgb.width, rgb.height, this.c) : [longest];
    const candidates = await this.search(rgb, [[this.networks.short, longest], ...sides.map((side) => [this.networks.full, side])]);
    const accepted = [];
    for (const face of candidates) {
      const score = await this.secondLook(rgb, face.box);
      if (score >= this.c.accept_score) accepted.push({ ...face, score });
    }
    return this.order(accepted);
  }

  /* The face near ``box`` (x, y, w, h) of ``rgb``, searched by the short-range network alone in the
     region around it; the one overlapping the box most, or null (find_near). */
  async findNear(rgb, box) {
    const [x, y, w, h] = box;
    const dx = Math.trunc(w * this.c.near_margin), dy = Math.trunc(h * this.c.near_margin);
    const left = Math.max(0, x - dx), top = Math.max(0, y - dy);
    const right = Math.min(rgb.width, x + w + dx), bottom = Math.min(rgb.height, y + h + dy);
    if (right <= left || bottom <= top) return null;
    const region = pixels.crop(rgb, left, top, right - left, bottom - top);
    const found = await this.search(region, [[this.networks.short, Math.max(region.width, region.height)]]);
    let best = null, bestIou = -1;
    for (const face of found) {
      const moved = shifted(face, left, top);
      const overlap = iou(moved.box, box);
      if (overlap >= this.c.near_min_iou && overlap > bestIou) { best = moved; bestIou = overlap; }
    }
    return best;
  }

  order(found) {
    return found.map((face, i) => [face, i]).sort(([p, i], [q, j]) => {
      const [a, b] = [orderKey(p, this.c.sure_score), orderKey(q, this.c.sure_score)];
      return a[0] - b[0] || a[1] - b[1] || i - j;
    }).map(([face]) => face);
  }

  /* BlazeFace over ``levels`` ([network, window side in picture pixels]), finest first, each level
     scaled from the one before, the tiles' detections merged (_search). */
  async search(source, levels) {
    const { width, height } = source;
    const longest = Math.max(width, height);
    const sorted = levels.map((level, i) => [level, i])
      .sort(([a, i], [b, j]) => b[0].side / b[1] - a[0].side / a[1] || i - j).map(([level]) => level);
    let picture = source;
    const found = [];
    for (const [network, side] of sorted) {
      const scale = network.side / side;
      const size = [Math.max(1, roundHalfEven(width * scale)), Math.max(1, roundHalfEven(height * scale))];
      picture = resized(picture, size[0], size[1]);
      const level = toInput(picture);
      const tiled = side < longest;
      const step = Math.trunc(network.side * (1 - this.c.tile_overlap));
      for (const top of starts(size[1], network.side, step)) {
        for (const left of starts(size[0], network.side, step)) {
          for (const item of await this.window(network, level, size, left, top)) {
            if (tiled && cutByTile(item.box, left, top, network.side, size[0], size[1])) continue;
            found.push(detection(item.box.map((v) => v / scale), item.points.map(([px, py]) => [px / scale, py / scale]), item.score));
          }
        }
      }
    }
    return weightedMerge(found, this.c.merge_iou, this.c.contained).map((item) => face(item, width, height, this.c.keypoints));
  }

  /* One network once on its square window at (left, top) of a level, padded at the right and bottom;
     detections in the level's pixels, merged (detect_window). */
  async window(network, level, [width, height], left, top) {
    const side = network.side;
    const input = new Float32Array(side * side * 3);
    const rows = Math.min(side, height - top), columns = Math.min(side, width - left);
    for (let y = 0; y < rows; y++) {
      const from = ((top + y) * width + left) * 3;
      input.set(level.subarray(from, from + columns * 3), y * side * 3);
    }
    const { values, logits } = await this.run(network, input);
    const keep = [], scores = [];
    for (let i = 0; i < logits.length; i++) {
      const logit = Math.min(Math.max(logits[i], -this.c.raw_score_limit), this.c.raw_score_limit);
      if (logit > this.threshold) { keep.push(i); scores.push(Math.fround(1 / (1 + Math.exp(-logit)))); }
    }
    return weightedMerge(decode(values, network.anchors, keep, scores, side), this.c.merge_iou).map((item) => detection(
      item.box.map((v, k) => v * side + (k % 2 ? top : left)), item.points.map(([x, y]) => [x * side + left, y * side + top]), item.score));
  }

  async run(network, input) {
    const start = performance.now();
    const answer = await network.raw(input);
    this.timings.calls += 1;
    this.timings[network.name] = (this.timings[network.name] || 0) + performance.now() - start;
    return answer;
  }

  /* How sure the short-range network is that ``box`` is a face, looking at it again as a close-up:
     the mean over the look spreads of its best score where the box should be (second_look). */
  async secondLook(rgb, box) {
    const network = this.networks.short;
    let total = 0;
    for (const spread of this.c.look_spreads) {
      const { values, logits } = await this.run(network, lookWindow(rgb, box, spread, network.side));
      const all = [], scores = [];
      for (let i = 0; i < logits.length; i++) {
        const logit = Math.min(Math.max(logits[i], -this.c.raw_score_limit), this.c.raw_score_limit);
        all.push(i);
        scores.push(Math.fround(1 / (1 + Math.exp(-logit))));
      }
      const low = 0.5 - 0.5 / spread, high = 0.5 + 0.5 / spread;
      let best = 0;
      for (const item of decode(values, network.anchors, all, scores, network.side)) {
        if (boxOverlaps([low, low, high, high], item.box)[0] > this.c.merge_iou) best = Math.max(best, item.score);
      }
      total += best;
    }
    return total / this.c.look_spreads.length;
  }
}

/* The square region ``spread`` times the box's larger side around its centre, as a network's input,
   grey (0) beyond the picture (_look_window). */
export function lookWindow(rgb, [x, y, w, h], spread, side) {
  const size = Math.max(w, h) * spread;
  const left = x + w / 2 - size / 2, top = y + h / 2 - size / 2;
  const scale = side / size;
  const x0 = Math.max(0, Math.floor(left)), y0 = Math.max(0, Math.floor(top));
  const x1 = Math.min(rgb.width, Math.ceil(left + size)), y1 = Math.min(rgb.height, Math.ceil(top + size));
  const window = new Float32Array(side * side * 3);
  if (x1 <= x0 || y1 <= y0) return window;
  const column = Math.max(0, roundHalfEven((x0 - left) * scale)), row = Math.max(0, roundHalfEven((y0 - top) * scale));
  const part = resized(pixels.crop(rgb, x0, y0, x1 - x0, y1 - y0),
    Math.max(1, roundHalfEven((x1 - x0) * scale)), Math.max(1, roundHalfEven((y1 - y0) * scale)));
  const rows = Math.min(part.height, side - row), columns = Math.min(part.width, side - column);
  for (let j = 0; j < rows; j++) {
    for (let i = 0; i < columns * 3; i++) {
      window[((row + j) * side + column) * 3 + i] = part.data[(j * part.width) * 3 + i] / 127.5 - 1;
    }
  }
  return window;
}

/* A detection clipped to the picture, in whole pixels, keypoints by name (_face). */
function face(item, width, height, names) {
  const [bx0, by0, bx1, by1] = item.box;
  const x0 = Math.max(0, roundHalfEven(bx0)), y0 = Math.max(0, roundHalfEven(by0));
  const x1 = Math.min(width, roundHalfEven(bx1)), y1 = Math.min(height, roundHalfEven(by1));
  const keypoints = Object.fromEntries(names.map((name, i) => [name, item.points[i]]));
  return { box: [x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0)], score: item.score, keypoints };
}

function shifted(found, left, top) {
  const [x, y, w, h] = found.box;
  return { box: [x + left, y + top, w, h], score: found.score,
           keypoints: Object.fromEntries(Object.entries(found.keypoints).map(([name, [px, py]]) => [name, [px + left, py + top]])) };
}

/* Intersection over union of two x, y, w, h boxes (iou). */
export function iou(a, b) {
  const left = Math.max(a[0], b[0]), top = Math.max(a[1], b[1]);
  const right = Math.min(a[0] + a[2], b[0] + b[2]), bottom = Math.min(a[1] + a[3], b[1] + b[3]);
  const inter = Math.max(0, right - left) * Math.max(0, bottom - top);
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union ? inter / union : 0;
}

/* A face's place in face order: sure before doubtful, then larger before smaller (order_key). */
export function orderKey(found, sureScore) {
  return [found.score < sureScore ? 1 : 0, -found.box[2] * found.box[3]];
}

/* Python's round(value, digits): the nearest decimal, an exact half to the even digit. */
export function roundTo(value, digits) {
  const exact = value.toFixed(Math.min(100, digits + 40));
  const cut = exact.indexOf(".") + digits + 1;
  const rest = exact.slice(cut);
  if (/^50*$/.test(rest)) {   /* an exact half: to the even digit */
    const kept = exact.slice(0, cut).replace(/\.$/, "");
    const last = Number(kept[kept.length - 1]);
    if (last % 2 === 0) return Number(kept);
  }
  return Number(value.toFixed(digits));
}

/* A face as the JSON API gives it (Face.to_json). */
export function faceJson(found) {
  return { box: found.box.map((v) => Math.trunc(v)), score: roundTo(found.score, 4),
           keypoints: Object.fromEntries(Object.entries(found.keypoints).map(([name, [x, y]]) => [name, [roundTo(x, 1), roundTo(y, 1)]])) };
}
