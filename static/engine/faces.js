/* A found face cut out upright, framed like FER2013's, and THE preprocessing: utils/faces/align.py and
   utils/faces/preprocess.py in the browser. The canonical face is the one Python measured
   (utils/faces/canonical_face.json), handed over in
   the engine constants; the warp and the shrink are OpenCV's own (pixels.js). */
import * as pixels from "./pixels.js";

/* The 2x3 similarity taking ``source`` points (the two eyes first) nearest to ``target``: the turn
   that lays the eye line on the target's, then the least-squares scale and shift (upright_fit). */
export function uprightFit(source, target) {
  const [sx, sy] = [source[1][0] - source[0][0], source[1][1] - source[0][1]];
  const [tx, ty] = [target[1][0] - target[0][0], target[1][1] - target[0][1]];
  const turn = Math.atan2(ty, tx) - Math.atan2(sy, sx);
  const [cos, sin] = [Math.cos(turn), Math.sin(turn)];
  const mean = (points) => [0, 1].map((k) => points.reduce((sum, p) => sum + p[k], 0) / points.length);
  const [smx, smy] = mean(source), [tmx, tmy] = mean(target);
  let dot = 0, norm = 0;
  source.forEach(([x, y], i) => {
    const [rx, ry] = [cos * (x - smx) - sin * (y - smy), sin * (x - smx) + cos * (y - smy)];
    const [cx, cy] = [target[i][0] - tmx, target[i][1] - tmy];
    dot += rx * cx + ry * cy;
    norm += rx * rx + ry * ry;
  });
  const scale = dot / Math.max(norm, 1e-12);
  const shift = [tmx - scale * (cos * smx - sin * smy), tmy - scale * (sin * smx + cos * smy)];
  return [scale * cos, -scale * sin, shift[0], scale * sin, scale * cos, shift[1]];
}

/* A face of the gray picture cut out upright (aligned_crop): ``{image, transform, side}``. The crop
   is ``multiple`` times a power of two wide, the smallest at least as wide as the face, so the
   preprocessing shrinks it by a whole factor. */
export function alignedCrop(gray, face, constants, context = 1, multiple = null) {
  const [frameHeight, frameWidth] = constants.frame;
  const unit = (name) => {
    const [x, y] = constants.keypoints[name];
    return [0.5 + (x / frameWidth - 0.5) / context, 0.5 + (y / frameHeight - 0.5) / context];
  };
  const source = constants.fitted.map((name) => face.keypoints[name]);
  const target = constants.fitted.map(unit);
  const fit = uprightFit(source, target);
  multiple = multiple || frameWidth;
  const side = multiple * 2 ** Math.max(0, Math.ceil(Math.log2(1 / Math.hypot(fit[0], fit[3]) / multiple - 1e-9)));
  const transform = fit.map((v) => v * side);
  return { image: pixels.warpAffine(gray, transform, side), transform, side };
}

/* THE preprocessing (preprocess): any gray face -> float32 (height, width, channels) in [0, 1];
   shrinking by area averaging, enlarging bilinear. */
export function preprocess(gray, height, width, channels = 1) {
  const sized = gray.width === width && gray.height === height ? gray
    : pixels.resize(gray, width, height, gray.height > height || gray.width > width);
  const out = new Float32Array(width * height * channels);
  for (let i = 0; i < width * height; i++) {
    const value = Math.fround(sized.data[i] / 255);
    for (let c = 0; c < channels; c++) out[i * channels + c] = value;
  }
  return out;
}

/* The same input mirrored left to right, for the test-time flip. */
export function mirrored(input, height, width, channels) {
  const out = new Float32Array(input.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * channels, to = (y * width + width - 1 - x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = input[from + c];
    }
  }
  return out;
}
