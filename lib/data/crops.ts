/**
 * Training crops (spec §3's RandomResizedCrop) of a batch's encoded images, each with its own crop
 * generator, so the pixels do not depend on decode timing: the box is drawn on the image's full size
 * and only that box is resized to the input side. JPEGs decode natively (libjpeg-turbo, only the box's
 * rows and columns, at the smallest DCT scale that keeps it at least the input side, then an
 * antialiased bilinear resize as PIL's) on `decodeThreads` threads; other formats, and JPEGs libjpeg
 * refuses, in one sharp pipeline each on libuv's pool. An image whose shorter side is over 4 input
 * sides is shrunk while it loads and cropped from that (the same crop up to resampling).
 * @internal
 * @module
 */
import { availableParallelism } from 'node:os';

import { native } from '../addon/binding.js';
import { DEFAULT_MAX_PIXELS, checkPixels, decodeCrop, decodeShrunk, imageSize } from '../io/images.js';
import { RilsInputError } from '../errors.js';
import { checkRegularFile, readRegularFile } from '../io/regular-file.js';
import { Random, randomResizedCrop, randomResizedCropBox } from './augment.js';

/** One image to decode with its own crop generator and caption. */
export interface PlannedSample {
  load: () => Promise<Buffer | string>;
  name: string;
  caption: string;
  crop: Random;
}

/** What a crop needs besides the images: the input side, the scale range, the limits. */
export interface CropOptions {
  size: number;
  cropScale?: [number, number];
  maxPixels?: number;
  decodeThreads?: number;
}

/**
 * Decoded images are shrunk to a shorter side of at most this many model input sides (never enlarged):
 * a crop of half the image or more then still samples ~3 source pixels per output pixel, so the
 * RandomResizedCrop differs from one of the full-size image only by resampling.
 */
const DECODE_SIDES = 4;

type Box = { x: number; y: number; w: number; h: number };
/** An image read and measured: its box, unless it is shrunk first; `jpeg` when libjpeg can decode it. */
interface Plan {
  input: Buffer | string;
  box?: Box;
  jpeg: boolean;
}

const nativeJpeg = typeof native.decodeJpegCrops === 'function' && !!native.jpegAvailable?.();
/** Native decodes run one batch at a time, each on every decode thread. */
let decoding: Promise<unknown> = Promise.resolve();

async function plan(s: PlannedSample, o: CropOptions): Promise<Plan> {
  let input = await s.load();
  if (typeof input === 'string') {
    // only a regular file: a FIFO would block its reader forever
    if (nativeJpeg && /\.jpe?g$/i.test(input)) input = await readRegularFile(input, 'an image file');
    else await checkRegularFile(input, 'an image file');
  }
  const header = nativeJpeg && typeof input !== 'string' ? native.jpegSize!(input) : null;
  const maxPixels = o.maxPixels ?? DEFAULT_MAX_PIXELS;
  const { width, height } = header ? checkPixels(header[0], header[1], maxPixels) : await imageSize(input, maxPixels);
  if (Math.min(width, height) > DECODE_SIDES * o.size) return { input, jpeg: false };
  return { input, box: randomResizedCropBox(width, height, s.crop, o.cropScale ?? [0.5, 1]), jpeg: !!header };
}

/** One image with sharp into `images` at slot `k`. */
async function sharpCrop(p: Plan, s: PlannedSample, o: CropOptions, images: Uint8Array, k: number): Promise<void> {
  const { size } = o;
  if (!p.box) {
    const { data, width, height } = await decodeShrunk(p.input, DECODE_SIDES * size, o.maxPixels ?? DEFAULT_MAX_PIXELS);
    randomResizedCrop(data, width, height, 3, size, s.crop, images, k * size * size * 3, o.cropScale ?? [0.5, 1]);
    return;
  }
  const pixels = await decodeCrop(p.input, p.box, size);
  if (pixels.length !== size * size * 3)
    throw new RilsInputError(`Expected ${size}×${size} RGB pixels but the decoder gave ${pixels.length} bytes`);
  images.set(pixels, k * size * size * 3);
}

/** The JPEGs of `plans` natively, in one call; resolves with the slots libjpeg could not decode. */
async function nativeCrops(plans: (Plan | Error)[], o: CropOptions, images: Uint8Array): Promise<Set<number>> {
  const slots = plans.flatMap((p, k) => (!(p instanceof Error) && p.jpeg && p.box ? [k] : []));
  if (slots.length === 0) return new Set();
  const boxes = new Int32Array(
    slots.flatMap((k) => {
      const b = (plans[k] as Plan).box!;
      return [b.x, b.y, b.w, b.h];
    }),
  );
  const inputs = slots.map((k) => (plans[k] as Plan).input as Buffer);
  const threads = o.decodeThreads ?? availableParallelism();
  const run = decoding.then(() =>
    native.decodeJpegCrops!(inputs, boxes, images, Int32Array.from(slots), o.size, threads),
  );
  decoding = run.catch(() => undefined);
  const errors = await run;
  return new Set(slots.filter((_, i) => errors[i] !== ''));
}

/**
 * Crops every sample into `images` (slot k for sample k); resolves with each sample's error (null
 * when decoded), so that the caller applies its skip policy.
 */
export async function decodeCrops(
  samples: readonly PlannedSample[],
  o: CropOptions,
  images: Uint8Array,
): Promise<(Error | null)[]> {
  const plans = await Promise.all(samples.map((s) => plan(s, o).catch((e: Error) => e)));
  const refused = await nativeCrops(plans, o, images);
  return Promise.all(
    plans.map(async (p, k) => {
      if (p instanceof Error) return p;
      if (p.jpeg && p.box && !refused.has(k)) return null;
      try {
        await sharpCrop(p, samples[k]!, o, images, k);
        return null;
      } catch (error) {
        return error as Error;
      }
    }),
  );
}
