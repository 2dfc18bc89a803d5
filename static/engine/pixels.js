/* OpenCV's pixel operations that the Python reference uses, reproduced on typed arrays, so the browser
   sees the very pixels the server does: BGR2GRAY, resize (INTER_AREA, its fast 2x2 case, INTER_LINEAR)
   and warpAffine (INTER_LINEAR, BORDER_REPLICATE), all on 8-bit pictures, with OpenCV's own fixed-point
   arithmetic and rounding. An image is {width, height, channels, data: Uint8Array}, rows of interleaved
   channels, as OpenCV lays them out. Python holds these to cv2 (tests/test_browser_engine.py). */

export function image(width, height, channels, data = new Uint8Array(width * height * channels)) {
  return { width, height, channels, data };
}

/* RGBA pixels (a canvas's ImageData) -> RGB, the colour order BlazeFace reads. */
export function rgbFromRgba(pixels, width, height) {
  const out = image(width, height, 3);
  for (let i = 0, j = 0; j < out.data.length; i += 4, j += 3) {
    out.data[j] = pixels[i]; out.data[j + 1] = pixels[i + 1]; out.data[j + 2] = pixels[i + 2];
  }
  return out;
}

/* RGB -> gray with OpenCV's 8-bit BGR2GRAY weights (``weights`` R, G, B, ``shift`` fractional bits). */
export function gray(rgb, weights, shift) {
  const out = image(rgb.width, rgb.height, 1);
  const [wr, wg, wb] = weights;
  const half = 1 << (shift - 1);
  for (let i = 0, j = 0; i < out.data.length; i++, j += 3) {
    out.data[i] = (rgb.data[j] * wr + rgb.data[j + 1] * wg + rgb.data[j + 2] * wb + half) >> shift;
  }
  return out;
}

/* A rectangle of a picture (clipped to it by the caller), copied. */
export function crop(source, left, top, width, height) {
  const { channels } = source;
  const out = image(width, height, channels);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * source.width + left) * channels;
    out.data.set(source.data.subarray(from, from + width * channels), y * width * channels);
  }
  return out;
}

/* Rounding as OpenCV's saturate_cast<uchar>(float): to nearest, halves to even, clamped. */
function roundEven(value) {
  let rounded = Math.round(value);
  if (rounded - value === 0.5 && rounded % 2 !== 0) rounded -= 1;
  return rounded < 0 ? 0 : rounded > 255 ? 255 : rounded;
}

/* cv2.resize(source, (width, height), INTER_AREA when shrinking, else INTER_LINEAR). */
export function resize(source, width, height, area = width < source.width) {
  if (width === source.width && height === source.height) return source;
  const scaleX = source.width / width, scaleY = source.height / height;
  if (area && scaleX >= 1 && scaleY >= 1) {
    if (scaleX === 2 && scaleY === 2) return halve(source);
    if (Number.isInteger(scaleX) && Number.isInteger(scaleY)) return areaWhole(source, scaleX, scaleY);
    return areaFraction(source, width, height, scaleX, scaleY);
  }
  return linear(source, width, height);
}

/* INTER_AREA by exactly 2: OpenCV's fast case, (a + b + c + d + 2) >> 2. */
function halve(source) {
  const { channels } = source;
  const out = image(source.width / 2, source.height / 2, channels);
  const row = source.width * channels;
  let k = 0;
  for (let y = 0; y < out.height; y++) {
    const top = 2 * y * row;
    for (let x = 0; x < out.width; x++) {
      const at = top + 2 * x * channels;
      for (let c = 0; c < channels; c++, k++) {
        const a = at + c;
        out.data[k] = (source.data[a] + source.data[a + channels] + source.data[a + row] + source.data[a + row + channels] + 2) >> 2;
      }
    }
  }
  return out;
}

/* INTER_AREA by another whole factor: the block's sum times 1/area (a float), rounded. */
function areaWhole(source, sx, sy) {
  const { channels } = source;
  const out = image(source.width / sx, source.height / sy, channels);
  const scale = Math.fround(1 / (sx * sy));
  let k = 0;
  for (let y = 0; y < out.height; y++) {
    for (let x = 0; x < out.width; x++) {
      for (let c = 0; c < channels; c++, k++) {
        let sum = 0;
        for (let dy = 0; dy < sy; dy++) {
          const at = ((y * sy + dy) * source.width + x * sx) * channels + c;
          for (let dx = 0; dx < sx; dx++) sum += source.data[at + dx * channels];
        }
        out.data[k] = roundEven(Math.fround(sum * scale));
      }
    }
  }
  return out;
}

/* OpenCV's computeResizeAreaTab: which source cells feed each destination cell, and how much, as
   typed arrays ``{destination, source, weight}`` (one entry per pair; a video frame's search walks
   them hundreds of thousands of times). */
function areaTable(sourceSize, size, scale) {
  const destination = [], cells = [], weights = [];
  const add = (d, s, weight) => { destination.push(d); cells.push(s); weights.push(weight); };
  for (let d = 0; d < size; d++) {
    const start = d * scale, end = start + scale;
    const cell = Math.min(scale, sourceSize - start);
    let first = Math.ceil(start), last = Math.floor(end);
    last = Math.min(last, sourceSize - 1);
    first = Math.min(first, last);
    if (first - start > 1e-3) add(d, first - 1, Math.fround((first - start) / cell));
    for (let s = first; s < last; s++) add(d, s, Math.fround(1 / cell));
    if (end - last > 1e-3) add(d, last, Math.fround(Math.min(Math.min(end - last, 1), cell) / cell));
  }
  return { destination: Int32Array.from(destination), source: Int32Array.from(cells), weight: Float32Array.from(weights) };
}

/* INTER_AREA by a fractional factor: weighted cells summed in float32, row by row, as OpenCV does
   (a Float32Array rounds every sum to float32, as OpenCV's float buffers do). */
function areaFraction(source, width, height, scaleX, scaleY) {
  const { channels } = source;
  const data = source.data;
  const out = image(width, height, channels);
  const xs = areaTable(source.width, width, scaleX), ys = areaTable(source.height, height, scaleY);
  const length = width * channels;
  const buffer = new Float32Array(length), sum = new Float32Array(length);
  const xCount = xs.destination.length;
  const xTo = new Int32Array(xCount), xFrom = new Int32Array(xCount);
  for (let i = 0; i < xCount; i++) { xTo[i] = xs.destination[i] * channels; xFrom[i] = xs.source[i] * channels; }
  const flush = (row) => {
    const at = row * length;
    for (let i = 0; i < length; i++) out.data[at + i] = roundEven(sum[i]);
  };
  let previous = ys.destination[0];
  for (let j = 0; j < ys.destination.length; j++) {
    const dy = ys.destination[j], beta = ys.weight[j];
    buffer.fill(0);
    const at = ys.source[j] * source.width * channels;
    for (let i = 0; i < xCount; i++) {
      const to = xTo[i], from = at + xFrom[i], alpha = xs.weight[i];
      for (let c = 0; c < channels; c++) buffer[to + c] += Math.fround(data[from + c] * alpha);
    }
    if (dy !== previous) {
      flush(previous);
      for (let i = 0; i < length; i++) sum[i] = Math.fround(beta * buffer[i]);
      previous = dy;
    } else {
      for (let i = 0; i < length; i++) sum[i] += Math.fround(beta * buffer[i]);
    }
  }
  flush(previous);
  return out;
}

/* INTER_LINEAR, 8-bit: 11-bit fixed-point weights, each row interpolated, then the rows. */
function linear(source, width, height) {
  const { channels } = source;
  const out = image(width, height, channels);
  const scaleX = 1 / (width / source.width), scaleY = 1 / (height / source.height);
  const ONE = 2048;
  const weights = (size, sourceSize, scale, clamp) => {
    const offsets = new Int32Array(size), first = new Int32Array(size), second = new Int32Array(size);
    for (let d = 0; d < size; d++) {
      let f = Math.fround((d + 0.5) * scale - 0.5);
      let s = Math.floor(f);
      f = Math.fround(f - s);
      if (clamp && s < 0) { f = 0; s = 0; }
      if (clamp && s >= sourceSize - 1) { f = 0; s = sourceSize - 1; }
      offsets[d] = s;
      first[d] = cvRound(Math.fround(1 - f) * ONE);
      second[d] = cvRound(f * ONE);
    }
    return { offsets, first, second };
  };
  const xw = weights(width, source.width, scaleX, true), yw = weights(height, source.height, scaleY, false);
  const horizontal = (y) => {
    const row = new Int32Array(width * channels);
    const at = y * source.width * channels;
    for (let x = 0; x < width; x++) {
      const s = xw.offsets[x];
      const next = Math.min(s + 1, source.width - 1);
      for (let c = 0; c < channels; c++) {
        row[x * channels + c] = source.data[at + s * channels + c] * xw.first[x] + source.data[at + next * channels + c] * xw.second[x];
      }
    }
    return row;
  };
  const clampRow = (y) => Math.min(Math.max(y, 0), source.height - 1);
  for (let y = 0; y < height; y++) {
    const r0 = horizontal(clampRow(yw.offsets[y])), r1 = horizontal(clampRow(yw.offsets[y] + 1));
    const b0 = yw.first[y], b1 = yw.second[y];
    const at = y * width * channels;
    for (let i = 0; i < r0.length; i++) {   /* OpenCV's vector form: ((b0 * (s0 >> 4)) >> 16) + ((b1 * (s1 >> 4)) >> 16), then (+ 2) >> 2 */
      const value = (((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2;
      out.data[at + i] = value < 0 ? 0 : value > 255 ? 255 : value;
    }
  }
  return out;
}

/* OpenCV's 32 x 32 table of bilinear weights (15 fractional bits, each set summing exactly to 1). */
const WARP_TABLE = (() => {
  const table = new Int32Array(32 * 32 * 4);
  for (let i = 0; i < 32; i++) {
    for (let j = 0; j < 32; j++) {
      const fy = Math.fround(i / 32), fx = Math.fround(j / 32);
      const ys = [Math.fround(1 - fy), fy], xs = [Math.fround(1 - fx), fx];
      const values = [Math.fround(ys[0] * xs[0]), Math.fround(ys[0] * xs[1]), Math.fround(ys[1] * xs[0]), Math.fround(ys[1] * xs[1])];
      const whole = values.map((v) => roundEven32768(v));
      const total = whole.reduce((a, b) => a + b, 0);
      if (total !== 32768) {
        const pick = total < 32768 ? values.indexOf(Math.max(...values)) : values.indexOf(Math.min(...values));
        whole[pick] -= total - 32768;
      }
      table.set(whole, (i * 32 + j) * 4);
    }
  }
  return table;
})();

function roundEven32768(value) {
  const scaled = value * 32768;
  let rounded = Math.round(scaled);
  if (rounded - scaled === 0.5 && rounded % 2 !== 0) rounded -= 1;
  return rounded;
}

/* cvRound of a double: to nearest, halves to even. */
function cvRound(value) {
  let rounded = Math.round(value);
  if (rounded - value === 0.5 && rounded % 2 !== 0) rounded -= 1;
  return rounded;
}

/* cv2.warpAffine(gray, M, (side, side), INTER_LINEAR, BORDER_REPLICATE) for a one-channel picture:
   ``m`` the 2x3 transform from the picture to the output, as six numbers by rows. */
export function warpAffine(source, m, side) {
  const out = image(side, side, 1);
  let [a, b, c, d, e, f] = m;
  let det = a * e - b * d;
  det = det !== 0 ? 1 / det : 0;
  const a11 = e * det, a22 = a * det;
  a = a11; b *= -det; d *= -det; e = a22;
  const c2 = -a * c - b * f, f2 = -d * c - e * f;
  const { width, height, data } = source;
  const adelta = new Int32Array(side), bdelta = new Int32Array(side);
  for (let x = 0; x < side; x++) { adelta[x] = cvRound(a * x * 1024); bdelta[x] = cvRound(d * x * 1024); }
  for (let y = 0; y < side; y++) {
    const x0 = cvRound((b * y + c2) * 1024) + 16, y0 = cvRound((e * y + f2) * 1024) + 16;
    for (let x = 0; x < side; x++) {
      const X = (x0 + adelta[x]) >> 5, Y = (y0 + bdelta[x]) >> 5;
      const sx = X >> 5, sy = Y >> 5;
      const w = ((Y & 31) * 32 + (X & 31)) * 4;
      const left = Math.min(Math.max(sx, 0), width - 1), right = Math.min(Math.max(sx + 1, 0), width - 1);
      const top = Math.min(Math.max(sy, 0), height - 1) * width, bottom = Math.min(Math.max(sy + 1, 0), height - 1) * width;
      const value = (data[top + left] * WARP_TABLE[w] + data[top + right] * WARP_TABLE[w + 1] +
                     data[bottom + left] * WARP_TABLE[w + 2] + data[bottom + right] * WARP_TABLE[w + 3] + (1 << 14)) >> 15;
      out.data[y * side + x] = value < 0 ? 0 : value > 255 ? 255 : value;
    }
  }
  return out;
}
