/**
 * Image files to model input with sharp (decoded on libuv's thread pool, off the JS thread),
 * using the spec's eval transform, and patch-semantics heat maps rendered back onto an image.
 * @module
 */
import sharp from 'sharp';

import { RilsInputError } from './errors.js';
import { describe } from './validate.js';

/** An encoded image (JPEG, PNG, WebP, …): a file path or the file's bytes. */
export type ImageSource = string | Uint8Array;

/** Pixels already decoded: `[height, width, 3]` uint8 RGB, row-major. */
export interface RawImage {
  /** `height × width × 3` bytes. */
  pixels: Uint8Array;
  /** Columns. */
  width: number;
  /** Rows. */
  height: number;
}

/** An image to evaluate: an encoded file (path or bytes) or decoded RGB pixels. */
export type EvalImage = ImageSource | RawImage;

/** Whether `image` is decoded pixels rather than an encoded file. */
export function isRawImage(image: unknown): image is RawImage {
  const r = image as RawImage | null;
  return typeof r === 'object' && r !== null && !(r instanceof Uint8Array) && r.pixels instanceof Uint8Array;
}

/** A name of an image for messages: its path, or its size. */
export function imageName(image: EvalImage, index: number): string {
  if (typeof image === 'string') return image;
  return isRawImage(image) ? `image ${index} (${image.width}×${image.height} pixels)` : `image ${index} (${image.byteLength} bytes)`;
}

function checkRaw(image: RawImage): RawImage {
  const { pixels, width, height } = image;
  if (pixels.length !== width * height * 3) {
    throw new RilsInputError(`Expected ${width}×${height}×3 RGB bytes but received ${pixels.length}`);
  }
  return image;
}

function sharpOf(image: EvalImage): sharp.Sharp {
  if (!isRawImage(image)) return sharp(image).rotate(); // honour EXIF orientation
  const { pixels, width, height } = checkRaw(image);
  return sharp(pixels, { raw: { width, height, channels: 3 } });
}

/**
 * One image through the eval transform of the spec: resize the shorter side to `size`, centre crop
 * `size`×`size`, RGB; `[size, size, 3]` uint8. Decoded pixels of that size already are used as they are.
 */
export async function decodeImage(image: EvalImage, size: number): Promise<Uint8Array> {
  if (isRawImage(image) && image.width === size && image.height === size) {
    return checkRaw(image).pixels; // no resampling needed
  }
  const { data } = await sharpOf(image)
    .resize(size, size, { fit: 'cover', position: 'centre', kernel: 'linear' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  return data;
}

/** An image as PNG bytes (for reports), its shorter side resized to `size` and centre-cropped. */
export async function imagePng(image: EvalImage, size: number): Promise<Buffer> {
  const pixels = await decodeImage(image, size);
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

/**
 * Decodes images with the eval transform of the spec: resize the shorter side to `size`, centre
 * crop `size`×`size`, RGB. Returns `[n, size, size, 3]` uint8 (normalisation happens natively).
 */
export async function loadImages(sources: readonly ImageSource[], size: number): Promise<Uint8Array> {
  if (!Array.isArray(sources) || sources.length === 0) {
    throw new RilsInputError(`Expected a non-empty array of image paths or buffers but received ${describe(sources)}`);
  }
  const out = new Uint8Array(sources.length * size * size * 3);
  await Promise.all(
    sources.map(async (src, i) => {
      if (typeof src !== 'string' && !(src instanceof Uint8Array)) {
        throw new RilsInputError(`Expected a path or a Uint8Array for image ${i} but received ${describe(src)}`);
      }
      try {
        out.set(await decodeImage(src, size), i * size * size * 3);
      } catch (error) {
        throw new RilsInputError(`Cannot decode ${imageName(src, i)}: ${(error as Error).message}`);
      }
    }),
  );
  return out;
}

/**
 * Renders one text's per-patch probabilities as a heat map over the image (eval crop), as PNG.
 * `probabilities` holds the `gridSize`² patch values of that text, row-major.
 */
export async function renderHeatmap(
  image: EvalImage,
  probabilities: ArrayLike<number>,
  gridSize: number,
  options: { size?: number; opacity?: number } = {},
): Promise<Buffer> {
  if (probabilities.length !== gridSize * gridSize) {
    throw new RilsInputError(`Expected ${gridSize * gridSize} patch values but received ${probabilities.length}`);
  }
  const size = options.size ?? 224;
  const opacity = options.opacity ?? 0.6;
  let base: Uint8Array;
  try {
    base = await decodeImage(image, size);
  } catch (error) {
    throw new RilsInputError(`Cannot decode ${imageName(image, 0)}: ${(error as Error).message}`);
  }
  // A red→yellow ramp, alpha growing with the probability (scaled to this map's maximum).
  let max = 0;
  for (let i = 0; i < probabilities.length; i++) max = Math.max(max, probabilities[i]!);
  const cells = Buffer.alloc(gridSize * gridSize * 4);
  for (let i = 0; i < gridSize * gridSize; i++) {
    const p = max > 0 ? probabilities[i]! / max : 0;
    cells.set([255, Math.round(255 * p), 0, Math.round(255 * opacity * p)], i * 4);
  }
  const overlay = await sharp(cells, { raw: { width: gridSize, height: gridSize, channels: 4 } })
    .resize(size, size, { kernel: 'nearest' })
    .png()
    .toBuffer();
  return sharp(base, { raw: { width: size, height: size, channels: 3 } })
    .composite([{ input: overlay }])
    .png()
    .toBuffer();
}
