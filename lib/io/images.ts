/**
 * Image files to model input with sharp (decoded on libuv's thread pool, off the JS thread),
 * using the spec's eval transform, and patch-semantics heat maps rendered back onto an image.
 * @module
 */
import sharp from 'sharp';

import { native } from '../addon/binding.js';
import { RilsInputError, fromNative } from '../errors.js';
import { checkRegularFile } from './regular-file.js';
import { describe } from '../validate.js';

/** An encoded image (JPEG, PNG, WebP, …): a file path or the file's bytes. */
export type ImageSource = string | Uint8Array;

/** Options of {@link loadImages}. */
export interface LoadImagesOptions {
  /** The resize kernel (antialiased). Default `'bilinear'`; a model's own is its config's `interpolation`. */
  interpolation?: 'bilinear' | 'bicubic';
  /** Images with more pixels are refused before decoding. Default 100 000 000. */
  maxPixels?: number;
}

/** Images decoded at a time: bounds the memory of full-size decodes. */
const DECODE_GROUP = 8;

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
  return isRawImage(image)
    ? `image ${index} (${image.width}×${image.height} pixels)`
    : `image ${index} (${image.byteLength} bytes)`;
}

function checkRaw(image: RawImage): RawImage {
  const { pixels, width, height } = image;
  if (pixels.length !== width * height * 3) {
    throw new RilsInputError(`Expected ${width}×${height}×3 RGB bytes but received ${pixels.length}`);
  }
  return image;
}

/**
 * One image through the eval transform of {@link loadImages}: `[size, size, 3]` uint8. Decoded
 * pixels of that size already are used as they are.
 */
export async function decodeImage(
  image: EvalImage,
  size: number,
  options: LoadImagesOptions = {},
): Promise<Uint8Array> {
  if (isRawImage(image) && image.width === size && image.height === size) return checkRaw(image).pixels;
  return loadImages([image], size, options);
}

/** An image as PNG bytes (for reports), its shorter side resized to `size` and centre-cropped. */
export async function imagePng(image: EvalImage, size: number): Promise<Buffer> {
  const pixels = await decodeImage(image, size);
  return sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * Decodes images with the eval transform (spec §3, and OpenAI's CLIP transform): RGB (alpha
 * dropped; EXIF orientation not applied, as PIL's and torchvision's loaders do), the shorter side
 * resized to `size` (antialiased bilinear or bicubic), a centre crop `size`×`size`. sharp decodes,
 * on its thread pool; LibTorch resizes with torchvision's geometry and rounding (within ~0.003 of
 * PIL's resize on normalised pixels). Returns `[n, size, size, 3]` uint8 (normalised natively).
 */
export async function loadImages(
  sources: readonly EvalImage[],
  size: number,
  options: LoadImagesOptions = {},
): Promise<Uint8Array> {
  if (!Array.isArray(sources) || sources.length === 0) {
    throw new RilsInputError(`Expected a non-empty array of image paths or buffers but received ${describe(sources)}`);
  }
  const interpolation = options.interpolation ?? 'bilinear';
  const out = new Uint8Array(sources.length * size * size * 3);
  for (let start = 0; start < sources.length; start += DECODE_GROUP) {
    const group = sources.slice(start, start + DECODE_GROUP);
    const images = await Promise.all(
      group.map((src, k) => decodeForEval(src, start + k, size, options.maxPixels ?? DEFAULT_MAX_PIXELS)),
    );
    try {
      out.set(new Uint8Array(await native.resizeImages({ images, size, interpolation })), start * size * size * 3);
    } catch (error) {
      throw fromNative(error);
    }
  }
  return out;
}

/**
 * One image as RGB pixels. One far larger than needed (shorter side over 4 × `size`) is first
 * shrunk by sharp to twice `size`, so a 4000×3000 photo does not become a 144 MB float tensor.
 */
async function decodeForEval(src: EvalImage, i: number, size: number, maxPixels: number) {
  if (isRawImage(src)) return { data: checkRaw(src).pixels, width: src.width, height: src.height };
  if (typeof src !== 'string' && !(src instanceof Uint8Array)) {
    throw new RilsInputError(
      `Expected a path, a Uint8Array or decoded pixels for image ${i} but received ${describe(src)}`,
    );
  }
  try {
    if (typeof src === 'string') await checkRegularFile(src, 'an image file');
    let image = sharp(src, { limitInputPixels: maxPixels });
    const { width = 0, height = 0, hasAlpha } = await image.metadata();
    if (Math.min(width, height) > 4 * size) {
      if (hasAlpha) {
        // sharp resizes premultiplied: the alpha goes first, as PIL's convert('RGB') does
        const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
        image = sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels } });
      }
      const scale = (2 * size) / Math.min(width, height);
      image.resize(Math.round(width * scale), Math.round(height * scale), {
        fit: 'fill',
        kernel: 'cubic',
        fastShrinkOnLoad: false,
      });
    }
    const { data, info } = await image.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
    };
  } catch (error) {
    throw new RilsInputError(`Cannot decode ${imageName(src, i)}: ${(error as Error).message}`);
  }
}

/** Images with more pixels than this (width × height) are not decoded by the training loaders, by default. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/** An image too large to decode, under its `maxPixels` option. @internal */
export class OversizedImageError extends RilsInputError {}

/**
 * Decodes an image for a training crop: RGB (EXIF orientation not applied, as in {@link loadImages}), shrunk while it loads so that its
 * shorter side is at most `side` (never enlarged): JPEG and WebP decode at 1/2 to 1/8 scale, other
 * formats stream through the resize, so a 15000 × 15000 PNG costs ~70 MB instead of 675. An image of
 * more than `maxPixels` pixels is refused from its header, before any decoding.
 */
export async function decodeShrunk(
  input: Buffer | string,
  side: number,
  maxPixels: number,
): Promise<{ data: Buffer; width: number; height: number }> {
  try {
    const { data, info } = await sharp(input, { limitInputPixels: maxPixels })
      .resize(side, side, { fit: 'outside', withoutEnlargement: true, kernel: 'linear' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height };
  } catch (error) {
    if (!/pixel limit/.test((error as Error).message)) throw error;
    const { width = 0, height = 0 } = await sharp(input, { limitInputPixels: false }).metadata();
    throw new OversizedImageError(
      `it has ${width}×${height} = ${width * height} pixels, more than maxPixels (${maxPixels})`,
    );
  }
}

/** Refuses an image of more than `maxPixels` pixels. */
export function checkPixels(width: number, height: number, maxPixels: number): { width: number; height: number } {
  if (width * height > maxPixels)
    throw new OversizedImageError(
      `it has ${width}×${height} = ${width * height} pixels, more than maxPixels (${maxPixels})`,
    );
  return { width, height };
}

/** Width and height from an image's header (nothing decoded); one of more than `maxPixels` pixels is refused. */
export async function imageSize(input: Buffer | string, maxPixels: number): Promise<{ width: number; height: number }> {
  const { width = 0, height = 0 } = await sharp(input, { limitInputPixels: false }).metadata();
  return checkPixels(width, height, maxPixels);
}

/**
 * Decodes the box of an image resized to `size` × `size` RGB (antialiased bilinear, as PIL's resize
 * that torchvision's RandomResizedCrop uses), in one sharp pipeline on libuv's thread pool.
 */
export async function decodeCrop(
  input: Buffer | string,
  box: { x: number; y: number; w: number; h: number },
  size: number,
): Promise<Buffer> {
  return sharp(input, { limitInputPixels: false, sequentialRead: true })
    .extract({ left: box.x, top: box.y, width: box.w, height: box.h })
    .resize(size, size, { fit: 'fill', kernel: 'linear' })
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer();
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
