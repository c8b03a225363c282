/**
 * WebDataset shards: `.tar` files whose entries `KEY.jpg|png|webp` + `KEY.txt|json` form one sample,
 * streamed with tar-stream (no shard is held in memory). Shard order is reshuffled every epoch;
 * the position (shard, sample) is resumable. A shard that cannot be read to its end (truncated,
 * corrupt, missing) gives the samples before the damage and is skipped with a count, or stops the run
 * with `onError: 'throw'`.
 * @module
 */
import path from 'node:path';

import tar from 'tar-stream';

import { RilsInputError } from '../errors.js';
import { openRegularFile } from '../regular-file.js';
import { Random } from './augment.js';
import { checkImageBatchOptions, decodeBatch } from './files.js';
import type { ImageBatchOptions, PlannedSample, SkipCounts } from './files.js';
import type { BatchSource, SourcedBatch } from './source.js';

const IMAGE_EXT = new Set(['jpg', 'jpeg', 'png', 'webp']);

/**
 * The shards a dataset spec names: one `.tar` file, or comma-separated files; undefined for any other
 * spec (a folder, an index file). @internal
 */
export function shardPaths(spec: string): string[] | undefined {
  if (!spec.endsWith('.tar') && !spec.includes(',')) return undefined;
  return spec.split(',').map((s) => s.trim()).filter(Boolean);
}

/** One sample of a shard: its key and the parts found. @internal */
export interface RawSample {
  key: string;
  image?: Buffer;
  caption?: string;
}

/** Streams the samples of one shard, in file order. @internal */
export async function* shardSamples(shard: string): AsyncGenerator<RawSample> {
  const extract = tar.extract();
  const { file } = await openRegularFile(shard, 'a WebDataset shard (.tar)');  // a FIFO would block open() forever
  const input = file.createReadStream();
  input.on('error', (error) => extract.destroy(error));
  input.pipe(extract);
  let current: RawSample | undefined;
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      if (entry.header.type !== 'file') continue;
      const base = path.posix.basename(entry.header.name);
      const dot = base.indexOf('.');
      if (dot <= 0) continue;
      const key = `${path.posix.dirname(entry.header.name)}/${base.slice(0, dot)}`;
      const ext = base.slice(dot + 1).toLowerCase();
      if (current && current.key !== key) yield current;
      if (!current || current.key !== key) current = { key };
      const data = Buffer.concat(chunks);
      if (IMAGE_EXT.has(ext)) current.image = data;
      else if (ext === 'txt') current.caption = data.toString('utf-8').trim();
      else if (ext === 'json') {
        try {
          const j = JSON.parse(data.toString('utf-8')) as { caption?: unknown; text?: unknown };
          const c = j.caption ?? j.text;
          if (typeof c === 'string') current.caption = c.trim();
        } catch {
          // an unreadable caption file leaves the sample without a caption: it is skipped
        }
      }
    }
    if (current) yield current;
  } catch (error) {
    throw new RilsInputError(`${shard} is not a readable tar shard: ${(error as Error).message}`);
  } finally {
    input.destroy();  // closes the file, also when the reader stops early
  }
}

/** Options of {@link WebDatasetSource}. */
export interface WebDatasetSourceOptions extends ImageBatchOptions {
  /** Shard files (`.tar`). */
  shards: readonly string[];
}

interface Position {
  rng: number;
  order: number[];
  shard: number;
  sample: number;
}

/** Batches streamed from WebDataset shards. */
export class WebDatasetSource implements BatchSource, SkipCounts {
  readonly #o: WebDatasetSourceOptions;
  #pos: Position;
  #rng: Random;
  #samples: AsyncGenerator<RawSample> | null = null;
  #reading: Promise<unknown> = Promise.resolve();
  /** Samples without an image or a caption, and images that could not be decoded or were over `maxPixels`. */
  skipped = 0;
  /** Of the skipped images, those over `maxPixels`. */
  oversized = 0;
  /** Shards that could not be read to their end (truncated, corrupt or missing), each time one was met. */
  skippedShards = 0;
  /** Why the last skipped shard could not be read. */
  lastShardError: string | undefined;

  constructor(options: WebDatasetSourceOptions) {
    if (!Array.isArray(options.shards) || options.shards.length === 0) throw new RilsInputError('Expected at least one .tar shard');
    checkImageBatchOptions(options);
    this.#o = options;
    this.#rng = new Random(options.seed);
    this.#pos = { rng: this.#rng.state, order: [], shard: 0, sample: 0 };
  }

  async #nextSample(): Promise<RawSample> {
    for (let emptyShards = 0; ; ) {
      const r = await this.#read();
      if (!r.done) {
        this.#pos.sample++;
        return r.value;
      }
      this.#samples = null;
      this.#pos.shard++;
      this.#pos.sample = 0;
      if (++emptyShards > 2 * this.#o.shards.length) {
        const why = this.lastShardError === undefined ? '' : ` (${this.skippedShards} unreadable; the last: ${this.lastShardError})`;
        throw new RilsInputError(`The shards hold no usable sample${why}`);
      }
    }
  }

  /** The next sample of the current shard (opened at the saved position first); done at its end, or at damage that is skipped. */
  async #read(): Promise<IteratorResult<RawSample>> {
    try {
      if (!this.#samples) {
        if (this.#pos.order.length === 0 || this.#pos.shard >= this.#pos.order.length) {
          this.#pos.order = this.#rng.shuffle([...this.#o.shards.keys()]);
          this.#pos.shard = 0;
          this.#pos.sample = 0;
        }
        this.#samples = shardSamples(this.#o.shards[this.#pos.order[this.#pos.shard]!]!);
        for (let i = 0; i < this.#pos.sample; i++) if ((await this.#samples.next()).done) break; // resume inside a shard
      }
      return await this.#samples.next();
    } catch (error) {
      if (this.#o.onError === 'throw') throw error;
      this.skippedShards++;
      this.lastShardError = (error as Error).message;
      return { done: true, value: undefined };
    }
  }

  /** Reads the batch's samples in order (one reader), then decodes them in parallel. */
  next(): Promise<SourcedBatch> {
    const read = this.#reading.then(async () => {
      const samples: PlannedSample[] = [];
      while (samples.length < this.#o.batchSize) {
        const s = await this.#nextSample();
        if (!s.image || !s.caption) {
          this.skipped++;
          continue;
        }
        const image = s.image;
        samples.push({ load: async () => image, name: s.key, caption: s.caption, crop: new Random(this.#rng.int(2 ** 32)) });
      }
      this.#pos.rng = this.#rng.state;
      return { samples, position: { ...this.#pos, order: [...this.#pos.order] } };
    });
    this.#reading = read.catch(() => undefined);
    return read.then(async ({ samples, position }) => ({ ...(await decodeBatch(samples, this.#o, this)), position }));
  }

  restore(position: unknown): void {
    const p = position as Partial<Position> | null;
    const n = this.#o.shards.length;
    if (!p || typeof p.rng !== 'number' || !Array.isArray(p.order) || !p.order.every((i) => Number.isSafeInteger(i) && i >= 0 && i < n) ||
        !Number.isSafeInteger(p.shard) || !Number.isSafeInteger(p.sample)) {
      throw new RilsInputError('Expected a data position saved by this source');
    }
    void this.#samples?.return(undefined);
    this.#samples = null;
    this.#rng.state = p.rng;
    this.#pos = { rng: p.rng, order: [...p.order], shard: p.shard!, sample: p.sample! };
  }
}
