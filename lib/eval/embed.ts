/**
 * Embeddings of many images with bounded memory: images are decoded a chunk at a time with sharp
 * (on libuv's pool) while the previous chunk encodes natively, and only the embeddings are kept.
 * Unreadable images are skipped and counted (or stop the run, by option).
 * @module
 */
import { RilsInputError } from '../errors.js';
import { decodeImage, imageName } from '../io/images.js';
import type { EvalImage } from '../io/images.js';
import type { Rils } from '../rils.js';
import { checkInteger } from '../validate.js';

/** How far {@link embedImages} has come. */
export interface EmbedProgress {
  /** Images done (embedded or skipped). */
  done: number;
  /** Images in all, when known. */
  total: number | undefined;
  /** Images that could not be decoded so far. */
  skipped: number;
  /** Images per second since the start. */
  imagesPerSecond: number;
}

/** Options of {@link embedImages}. */
export interface EmbedImagesOptions {
  /** Images decoded and encoded together; two chunks are in memory at a time. Default 64. */
  chunkSize?: number;
  /** Unreadable images: `'skip'` (default) leaves them out and counts them, `'throw'` stops with the first. */
  onError?: 'skip' | 'throw';
  /** The number of images, for progress, when `images` is an async iterable. */
  total?: number;
  /** Called after each chunk. */
  onProgress?: (progress: EmbedProgress) => void;
}

/** An image left out because it could not be decoded. */
export interface SkippedImage {
  /** Its position in the input. */
  index: number;
  /** Its path, or a description. */
  name: string;
  /** What the decoder said. */
  reason: string;
}

/** What {@link embedImages} returns. */
export interface EmbeddedImages {
  /** `[count, embedDim]` unit-norm pooled embeddings, in input order. */
  embeddings: Float32Array;
  /** Images embedded. */
  count: number;
  /** Per row of `embeddings`, the image's position in the input. */
  kept: Int32Array;
  /** Images left out. */
  skipped: SkippedImage[];
}

/** A chunk of images decoded with the eval transform. @internal */
export interface DecodedChunk {
  /** `[ok.length, S, S, 3]`. */
  pixels: Uint8Array;
  /** Input positions of the decoded images, in order. */
  ok: number[];
  failed: SkippedImage[];
}

/** Decodes a chunk in parallel; failures are collected (or thrown, with `throwOnError`). @internal */
export async function decodeChunk(
  chunk: readonly EvalImage[],
  start: number,
  size: number,
  throwOnError: boolean,
  interpolation: 'bilinear' | 'bicubic',
): Promise<DecodedChunk> {
  const results = await Promise.all(
    chunk.map((image) => decodeImage(image, size, { interpolation }).catch((error: Error) => error)),
  );
  const px = size * size * 3;
  const pixels = new Uint8Array(results.filter((r) => !(r instanceof Error)).length * px);
  const ok: number[] = [],
    failed: SkippedImage[] = [];
  results.forEach((r, k) => {
    if (r instanceof Error) {
      const name = imageName(chunk[k]!, start + k);
      if (throwOnError) throw new RilsInputError(`Cannot decode ${name}: ${r.message}`);
      failed.push({ index: start + k, name, reason: r.message });
    } else {
      pixels.set(r, ok.length * px);
      ok.push(start + k);
    }
  });
  return { pixels, ok, failed };
}

async function* chunksOf(
  images: Iterable<EvalImage> | AsyncIterable<EvalImage>,
  size: number,
): AsyncGenerator<EvalImage[]> {
  let chunk: EvalImage[] = [];
  for await (const image of images) {
    chunk.push(image);
    if (chunk.length === size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

/** A Float32Array that grows by doubling (for inputs of unknown length). */
class Rows {
  data: Float32Array;
  count = 0;
  constructor(
    private readonly dim: number,
    capacity: number,
  ) {
    this.data = new Float32Array(Math.max(1, capacity) * dim);
  }
  push(rows: Float32Array, n: number): void {
    if ((this.count + n) * this.dim > this.data.length) {
      const grown = new Float32Array(Math.max(2 * this.data.length, (this.count + n) * this.dim));
      grown.set(this.data.subarray(0, this.count * this.dim));
      this.data = grown;
    }
    this.data.set(rows.subarray(0, n * this.dim), this.count * this.dim);
    this.count += n;
  }
}

/**
 * Pooled, L2-normalised image embeddings of every image (files, bytes or pixels; an array or a
 * stream), in order. Memory holds the embeddings and two chunks of decoded images, whatever the
 * number of images: the next chunk decodes (sharp, libuv's pool) while this one encodes.
 *
 * @example
 * ```ts
 * const { embeddings, kept, skipped } = await embedImages(model, paths, { onProgress: (p) => console.log(p.done) });
 * ```
 */
export async function embedImages(
  model: Rils,
  images: Iterable<EvalImage> | AsyncIterable<EvalImage>,
  options: EmbedImagesOptions = {},
): Promise<EmbeddedImages> {
  const chunkSize = checkInteger(options.chunkSize ?? 64, 'chunkSize', 1);
  const total = Array.isArray(images) ? images.length : options.total;
  const { imageSize: S, embedDim } = model.config;
  const rows = new Rows(embedDim, total ?? 1024);
  const kept: number[] = [],
    skipped: SkippedImage[] = [];
  const chunks = chunksOf(images, chunkSize);
  let start = 0;
  const decodeNext = async (): Promise<DecodedChunk | null> => {
    const next = await chunks.next();
    if (next.done) return null;
    const from = start;
    start += next.value.length;
    return decodeChunk(next.value, from, S, options.onError === 'throw', model.config.interpolation);
  };
  const started = performance.now();
  for (let pending = decodeNext(); ;) {
    const chunk = await pending;
    if (!chunk) break;
    pending = decodeNext(); // decodes while this chunk encodes
    pending.catch(() => undefined); // a failure surfaces when it is awaited, after this chunk
    if (chunk.ok.length) {
      const { embeddings } = await model.encodeImages({ images: chunk.pixels, batchSize: chunk.ok.length });
      rows.push(embeddings, chunk.ok.length);
      kept.push(...chunk.ok);
    }
    skipped.push(...chunk.failed);
    const done = kept.length + skipped.length;
    options.onProgress?.({
      done,
      total,
      skipped: skipped.length,
      imagesPerSecond: done / ((performance.now() - started) / 1000),
    });
  }
  return {
    embeddings: rows.data.subarray(0, rows.count * embedDim),
    count: rows.count,
    kept: Int32Array.from(kept),
    skipped,
  };
}
