/* A photo decoded as utils/media/decode.py decodes it, Python being the reference; the numbers arrive in
   the engine constants (``picture``, from utils.media.decode.browser_rules). Upright by its EXIF
   orientation, colours as stored, transparency on the background (white), 16-bit samples by their high
   byte and CMYK as this browser converts them (Python reads them the same way), over the pixel limit
   refused with Python's own line, and a picture longer than twice ``decode_side`` shrunk by a power of
   two with OpenCV's area averaging (pixels.js). tests/test_browser_engine.py holds each rule to Python. */
import * as pixels from "./pixels.js";

/* A pixel count in megapixels as the refusal says it: one decimal, rounded up (megapixels). */
export function megapixels(count) {
  const tenths = Math.ceil(count / 100000);
  return tenths % 10 === 0 ? String(tenths / 10) : `${Math.floor(tenths / 10)}.${tenths % 10}`;
}

/* The refusal of a picture of ``count`` pixels (too_large). */
export function tooLarge(count, rules) {
  return rules.too_large.replace("{megapixels}", megapixels(count)).replace("{limit}", megapixels(rules.max_pixels));
}

const UNREADABLE = "this file is not a picture the browser can decode (JPEG, PNG or WebP)";

/* A picture's size as an <img> reads it from the file's header: the pixels are decoded only when drawn. */
async function headerSize(file) {
  const url = URL.createObjectURL(file);
  try {
    const image = new Image();
    await new Promise((loaded, failed) => {
      image.onload = loaded;
      image.onerror = failed;
      image.src = url;
    });
    return image.naturalWidth * image.naturalHeight;
  } finally {
    URL.revokeObjectURL(url);
  }
}

/* A photo file decoded upright, as an ImageBitmap; rejects with a one-line reason (Python's line when
   the picture is over the limit, checked before its pixels are decoded). */
export async function decode(file, rules) {
  let count;
  try {
    count = await headerSize(file);
  } catch (error) {
    throw new Error(UNREADABLE);
  }
  if (count > rules.max_pixels) throw new Error(tooLarge(count, rules));
  try {
    return await createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none",
                                           premultiplyAlpha: "none" });
  } catch (error) {
    throw new Error(UNREADABLE);
  }
}

/* 1, or for a picture longer than ``2 * side`` the largest power of two that keeps its long side over ``side`` (shrink_factor). */
export function shrinkFactor(width, height, side) {
  let factor = 1;
  while (Math.max(width, height) > side * factor * 2) factor *= 2;
  return factor;
}

/* A decoded picture at the size Python shrinks it to (shrunk): each side divided by the factor, rounded up. */
export function shrunk(image, side) {
  const factor = shrinkFactor(image.width, image.height, side);
  if (factor === 1) return image;
  return pixels.resize(image, Math.ceil(image.width / factor), Math.ceil(image.height / factor), true);
}
