/**
 * Captioned image datasets on disk: a folder (`x.jpg` + `x.txt`), a JSONL file
 * (`{"image": …, "caption": …}` per line) or a CSV file (`image,caption` header). Images decode with
 * sharp on libuv's thread pool while the previous step trains; corrupt images and empty captions
 * are skipped and counted (or fail, by option).
 * @module
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import sharp from 'sharp';

import type { Batch } from '../rils.js';
import type { Tokenizer } from '../tokenizer.js';
import { RilsInputError } from '../errors.js';
import { Random, randomResizedCrop } from './augment.js';
import type { BatchSource } from './source.js';

/** One example: an image file and its caption. */
export interface CaptionedFile {
  image: string;
  caption: string;
}

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

/** Splits one CSV line (RFC 4180 quoting). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') out.push(field), (field = '');
    else field += c;
  }
  out.push(field);
  return out;
}

/**
 * Reads a dataset index. Relative image paths are resolved against the index's folder. Rows
 * without an image or a caption are skipped and counted in `skipped`.
 */
export async function readCaptionIndex(location: string): Promise<{ items: CaptionedFile[]; skipped: number }> {
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
      add(name, names.has(txt) ? await readFile(path.join(location, txt), 'utf-8') : undefined, location);
    }
  } else if (location.endsWith('.jsonl')) {
    const base = path.dirname(location);
    for (const line of (await readFile(location, 'utf-8')).split('\n')) {
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
    const lines = (await readFile(location, 'utf-8')).split(/\r?\n/).filter((l) => l.trim() !== '');
    const header = csvFields(lines.shift() ?? '').map((h) => h.trim().toLowerCase());
    const [imageCol, captionCol] = [header.indexOf('image'), header.indexOf('caption')];
    if (imageCol < 0 || captionCol < 0) throw new RilsInputError(`${location}: expected a header with 'image' and 'caption' columns`);
    for (const line of lines) {
      const f = csvFields(line);
      add(f[imageCol], f[captionCol], base);
    }
  } else {
    throw new RilsInputError(`${location}: expected a folder, a .jsonl or a .csv file`);
  }
  if (items.length === 0) throw new RilsInputError(`${location} holds no usable (image, caption) pair (${skipped} skipped)`);
  return { items, skipped };
}

/** Options of {@link FileCaptionSource}. */
export interface FileCaptionSourceOptions {
  items: readonly CaptionedFile[];
  tokenizer: Tokenizer;
  batchSize: number;
  /** Model input side. */
  size: number;
  seed: number;
  /** RandomResizedCrop scale range (spec: [0.5, 1]). */
  cropScale?: [number, number];
  /** `'skip'` (default) counts unreadable images and takes the next one; `'throw'` stops. */
  onError?: 'skip' | 'throw';
}

/** Batches from image files, reshuffled each epoch, with a resumable position. */
export class FileCaptionSource implements BatchSource {
  readonly #o: FileCaptionSourceOptions;
  #rng: Random;
  #order: number[] = [];
  /** Images that could not be decoded (skipped). */
  skipped = 0;

  constructor(options: FileCaptionSourceOptions) {
    if (!Array.isArray(options.items) || options.items.length === 0) throw new RilsInputError('Expected a non-empty list of captioned files');
    this.#o = options;
    this.#rng = new Random(options.seed);
  }

  async next(): Promise<Batch> {
    const { items, batchSize, size: S, tokenizer } = this.#o;
    const images = new Uint8Array(batchSize * S * S * 3);
    const captions: string[] = [];
    let failures = 0;
    while (captions.length < batchSize) {
      if (this.#order.length === 0) this.#order = this.#rng.shuffle([...items.keys()]);
      const item = items[this.#order.pop()!]!;
      try {
        const { data, info } = await sharp(item.image).rotate().removeAlpha().toColourspace('srgb').raw()
          .toBuffer({ resolveWithObject: true });
        randomResizedCrop(data, info.width, info.height, 3, S, this.#rng, images, captions.length * S * S * 3, this.#o.cropScale ?? [0.5, 1]);
        captions.push(item.caption);
      } catch (error) {
        if (this.#o.onError === 'throw') throw new RilsInputError(`Cannot decode ${item.image}: ${(error as Error).message}`);
        this.skipped++;
        if (++failures > 10 * batchSize) throw new RilsInputError(`Too many unreadable images (last: ${item.image})`);
      }
    }
    return { images, tokens: tokenizer.encodeBatch(captions), batchSize };
  }

  state(): unknown {
    return { rng: this.#rng.state, order: [...this.#order], skipped: this.skipped };
  }

  restore(state: unknown): void {
    const s = state as { rng?: unknown; order?: unknown; skipped?: unknown } | null;
    if (!s || typeof s.rng !== 'number' || !Array.isArray(s.order) ||
        !s.order.every((i) => Number.isSafeInteger(i) && i >= 0 && i < this.#o.items.length)) {
      throw new RilsInputError('Expected a data position saved by this source');
    }
    this.#rng.state = s.rng;
    this.#order = [...(s.order as number[])];
    this.skipped = typeof s.skipped === 'number' ? s.skipped : 0;
  }
}
