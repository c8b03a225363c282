/**
 * Captioned image datasets on disk: a folder (`x.jpg` + `x.txt`), a JSONL file
 * (`{"image": …, "caption": …}` per line) or a CSV file (`image,caption` header). Images decode off
 * the JS thread while the previous step trains (lib/data/crops.ts); corrupt images and empty captions
 * are skipped and counted (or fail, by option).
 * @module
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import type { Batch } from '../types.js';
import { checkTokenizerOption } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { RilsInputError } from '../errors.js';
import { readRegularFile } from '../io/regular-file.js';
import { OversizedImageError } from '../io/images.js';
import { checkInteger } from '../validate.js';
import { Random } from './augment.js';
import { decodeCrops } from './crops.js';
import type { PlannedSample } from './crops.js';

export type { PlannedSample } from './crops.js';
import type { BatchSource, SourcedBatch } from './source.js';
import { imageSourceOptions, makeTokenizer, shareOf } from './dataset.js';
import type { CaptionedImage, CaptionedPairs, Dataset, OpenDatasetOptions, Share } from './dataset.js';
import type { DatasetFormat } from './formats.js';

/** One example: an image file and its caption. */
export interface CaptionedFile {
  /** Absolute image path. */
  image: string;
  /** Its caption. */
  caption: string;
}

/** File extensions read as images (lower case, with the dot). @internal */
export const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

/** Splits one CSV line (RFC 4180 quoting). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}

const readText = async (file: string, what: string) => (await readRegularFile(file, what)).toString('utf-8');

/** A dataset index. */
export interface CaptionIndex {
  /** Usable examples. */
  items: CaptionedFile[];
  /** Rows without an image or a caption. */
  skipped: number;
}

/**
 * Reads a dataset index. Relative image paths are resolved against the index's folder. Rows
 * without an image or a caption are skipped and counted in `skipped`.
 */
export async function readCaptionIndex(location: string): Promise<CaptionIndex> {
  let info;
  try {
    info = await stat(location);
  } catch {
    throw new RilsInputError(`Dataset not found: ${location} (expected a folder, a .jsonl or a .csv file)`);
  }
  const items: CaptionedFile[] = [];
  let skipped = 0;
  const add = (image: unknown, caption: unknown, base: string) => {
    if (typeof image === 'string' && image !== '' && typeof caption === 'string' && caption.trim() !== '') {
      items.push({ image: path.resolve(base, image), caption: caption.trim() });
    } else skipped++;
  };
  if (info.isDirectory()) {
    const names = new Set(await readdir(location));
    for (const name of [...names].sort()) {
      if (!IMAGE_EXT.has(path.extname(name).toLowerCase())) continue;
      const txt = `${name.slice(0, -path.extname(name).length)}.txt`;
      add(name, names.has(txt) ? await readText(path.join(location, txt), 'a caption file') : undefined, location);
    }
  } else if (location.endsWith('.jsonl')) {
    const base = path.dirname(location);
    for (const line of (await readText(location, 'a JSONL dataset index')).split('\n')) {
      if (line.trim() === '') continue;
      try {
        const row = JSON.parse(line) as { image?: unknown; caption?: unknown };
        add(row.image, row.caption, base);
      } catch {
        skipped++;
      }
    }
  } else if (location.endsWith('.csv')) {
    const base = path.dirname(location);
    const lines = (await readText(location, 'a CSV dataset index')).split(/\r?\n/).filter((l) => l.trim() !== '');
    const header = csvFields(lines.shift() ?? '').map((h) => h.trim().toLowerCase());
    const [imageCol, captionCol] = [header.indexOf('image'), header.indexOf('caption')];
    if (imageCol < 0 || captionCol < 0)
      throw new RilsInputError(`${location}: expected a header with 'image' and 'caption' columns`);
    for (const line of lines) {
      const f = csvFields(line);
      add(f[imageCol], f[captionCol], base);
    }
  } else {
    throw new RilsInputError(`${location}: expected a folder, a .jsonl or a .csv file`);
  }
  if (items.length === 0)
    throw new RilsInputError(`${location} holds no usable (image, caption) pair (${skipped} skipped)`);
  return { items, skipped };
}

/** What every source of encoded images takes besides where the images are. */
export interface ImageBatchOptions {
  /** Turns captions into token rows. */
  tokenizer: Tokenizer;
  /** Images per batch. */
  batchSize: number;
  /** Model input side. */
  size: number;
  /** Seeds the order and the crops. */
  seed: number;
  /** RandomResizedCrop scale range (spec: [0.5, 1]). */
  cropScale?: [number, number];
  /** `'skip'` (default) counts unreadable images and fills their slot with another image of the batch; `'throw'` stops. */
  onError?: 'skip' | 'throw';
  /** Threads decoding JPEG crops natively (libjpeg-turbo), one batch at a time. Default: every core. */
  decodeThreads?: number;
  /**
   * Images with more pixels (width × height) are not decoded: they are skipped like unreadable ones
   * (and counted in `oversized` too), or fail with `onError: 'throw'`. Default 100 000 000.
   */
  maxPixels?: number;
}

/** Checks the options both image sources share. @internal */
export function checkImageBatchOptions(options: ImageBatchOptions): void {
  checkTokenizerOption(options.tokenizer, 'the tokenizer of a data source');
  if (options.maxPixels !== undefined) checkInteger(options.maxPixels, 'maxPixels', 1);
  if (options.decodeThreads !== undefined) checkInteger(options.decodeThreads, 'decodeThreads', 1);
}

/** What an image source counts of the images it skips. */
export interface SkipCounts {
  /** Images that could not be decoded, or were over `maxPixels`. */
  skipped: number;
  /** Of those, the ones over `maxPixels`. */
  oversized: number;
}

/** Options of {@link FileCaptionSource}. */
export interface FileCaptionSourceOptions extends ImageBatchOptions {
  /** The examples, e.g. from {@link readCaptionIndex}. */
  items: readonly CaptionedFile[];
}

/**
 * Decodes planned samples in parallel with their training crops (lib/data/crops.ts). Unreadable and
 * oversized images are counted in `counts` and their slots filled with another image of the batch, or
 * fail with `onError: 'throw'`.
 * @internal
 */
export async function decodeBatch(
  samples: readonly PlannedSample[],
  o: ImageBatchOptions,
  counts: SkipCounts,
): Promise<Batch> {
  const { size, tokenizer } = o;
  const images = new Uint8Array(samples.length * size * size * 3);
  const errors = await decodeCrops(samples, o, images);
  const ok = errors.map((error, k) => {
    if (!error) return true;
    if (o.onError === 'throw') throw new RilsInputError(`Cannot decode ${samples[k]!.name}: ${error.message}`);
    counts.skipped++;
    if (error instanceof OversizedImageError) counts.oversized++;
    return false;
  });
  const good = ok.flatMap((v, k) => (v ? [k] : []));
  if (good.length === 0) throw new RilsInputError(`No image of a batch could be decoded (first: ${samples[0]?.name})`);
  const captions = samples.map((s) => s.caption);
  ok.forEach((v, k) => {
    if (v) return;
    const donor = good[k % good.length]!; // a deterministic stand-in from the same batch
    images.copyWithin(k * size * size * 3, donor * size * size * 3, (donor + 1) * size * size * 3);
    captions[k] = samples[donor]!.caption;
  });
  return { images, tokens: tokenizer.encodeBatch(captions), batchSize: samples.length };
}

/** Batches from image files, reshuffled each epoch, with a resumable position. */
export class FileCaptionSource implements BatchSource, SkipCounts {
  readonly #o: FileCaptionSourceOptions;
  #rng: Random;
  #order: number[] = [];
  /** Images that could not be decoded, or were over `maxPixels` (skipped). */
  skipped = 0;
  /** Of the skipped images, those over `maxPixels`. */
  oversized = 0;

  constructor(options: FileCaptionSourceOptions) {
    if (!Array.isArray(options.items) || options.items.length === 0)
      throw new RilsInputError('Expected a non-empty list of captioned files');
    checkImageBatchOptions(options);
    this.#o = options;
    this.#rng = new Random(options.seed);
  }

  /** Picks the batch synchronously (so prefetched calls stay deterministic), then decodes it. */
  next(): Promise<SourcedBatch> {
    const { items, batchSize } = this.#o;
    const samples: PlannedSample[] = [];
    for (let b = 0; b < batchSize; b++) {
      if (this.#order.length === 0) this.#order = this.#rng.shuffle([...items.keys()]);
      const item = items[this.#order.pop()!]!;
      samples.push({
        load: async () => item.image,
        name: item.image,
        caption: item.caption,
        crop: new Random(this.#rng.int(2 ** 32)),
      });
    }
    const position = { rng: this.#rng.state, order: [...this.#order] };
    return decodeBatch(samples, this.#o, this).then((batch) => ({ ...batch, position }));
  }

  restore(position: unknown): void {
    const s = position as { rng?: unknown; order?: unknown } | null;
    if (
      !s ||
      typeof s.rng !== 'number' ||
      !Array.isArray(s.order) ||
      !s.order.every((i) => Number.isSafeInteger(i) && i >= 0 && i < this.#o.items.length)
    ) {
      throw new RilsInputError('Expected a data position saved by this source');
    }
    this.#rng.state = s.rng;
    this.#order = [...(s.order as number[])];
  }
}

async function openTraining(spec: string, o: OpenDatasetOptions, share: Share): Promise<Dataset> {
  const { items, skipped: skippedRows } = await readCaptionIndex(spec);
  const tokenizer = await makeTokenizer(o.tokenizer, () => items.map((i) => i.caption));
  const source = new FileCaptionSource({
    items: shareOf(items, share, 'examples'),
    tokenizer,
    ...imageSourceOptions(o),
  });
  const skips = () => ({ samples: source.skipped, oversized: source.oversized, shards: 0 });
  return { kind: 'files', source, tokenizer, skippedRows, skips, examples: items.slice(0, 3) };
}

async function openPairs(spec: string): Promise<CaptionedPairs> {
  const { items, skipped } = await readCaptionIndex(spec);
  async function* pairs(): AsyncGenerator<CaptionedImage> {
    for (const item of items) yield { image: item.image, caption: item.caption, key: item.image };
  }
  return { pairs: pairs(), images: new Set(items.map((i) => i.image)).size, skipped: () => skipped };
}

/** A caption index: a folder of `x.jpg` + `x.txt`, a JSONL or a CSV file (any path no other format claims). */
export const CAPTION_INDEX_FORMAT: DatasetFormat = {
  name: 'files',
  title: 'a caption index (a folder of x.jpg + x.txt, a .jsonl or a .csv file)',
  matches: () => true,
  fallback: true,
  training: openTraining,
  pairs: openPairs,
};
