/**
 * WebDataset shards: `.tar` files whose entries `KEY.jpg|png|webp` + `KEY.txt|json` form one sample,
 * streamed with tar-stream as the bytes arrive (no shard is held in memory or on disk), from local
 * files, http(s) URLs or `pipe:` commands (lib/data/shard-stream.ts). `workers` lanes each read their
 * own share of the shards per epoch through a seeded shuffle buffer (lib/data/shard-lane.ts); batch
 * k comes from lane k mod workers, so batches do not depend on timing, and the position (every lane's
 * state) resumes exactly. A shard that cannot be read to its end (truncated, corrupt, missing, a
 * server or command failing past the retries) gives the samples before the damage and is skipped
 * with a count, or stops the run with `onError: 'throw'`.
 * @module
 */
import path from 'node:path';
import { Readable } from 'node:stream';

import tar from 'tar-stream';

import { RilsInputError } from '../errors.js';
import { Random } from './augment.js';
import { checkImageBatchOptions, decodeBatch } from './files.js';
import type { ImageBatchOptions, PlannedSample, SkipCounts } from './files.js';
import { ShardLane, isLaneState } from './shard-lane.js';
import type { LaneState } from './shard-lane.js';
import { ShardReadError, readOptions, shardBytes } from './shard-stream.js';
import type { ShardReadCounts, ShardReadOptions } from './shard-stream.js';
import type { BatchSource, SourcedBatch } from './source.js';
import { imageSourceOptions, makeTokenizer, shareOf } from './dataset.js';
import type { CaptionedImage, CaptionedPairs, Dataset, OpenDatasetOptions, Share } from './dataset.js';
import type { DatasetFormat } from './formats.js';
import { shardUrls } from './shard-spec.js';
import { checkInteger, invalid } from '../validate.js';

const IMAGE_EXT = new Set(['jpg', 'jpeg', 'png', 'webp']);

/** One sample of a shard: its key and the parts found. @internal */
export interface RawSample {
  key: string;
  image?: Buffer;
  caption?: string;
}

/**
 * Streams the samples of one shard, in file order, as its bytes arrive (local, http(s) or pipe:,
 * retried per `read`). @internal
 */
export async function* shardSamples(
  shard: string,
  read: Required<ShardReadOptions> = readOptions(),
  counts: ShardReadCounts = { retries: 0 },
): AsyncGenerator<RawSample> {
  const extract = tar.extract();
  const stop = new AbortController(); // ends the request or the command at once when reading stops early
  const input = Readable.from(shardBytes(shard, read, counts, stop.signal), { objectMode: false });
  input.on('error', (error) => extract.destroy(error));
  extract.on('close', () => (stop.abort(), input.destroy()));
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
    if (error instanceof ShardReadError) throw new RilsInputError(`${shard} could not be read: ${error.message}`);
    throw new RilsInputError(`${shard} is not a readable tar shard: ${(error as Error).message}`);
  } finally {
    stop.abort();
    extract.destroy();
  }
}

/** Options of {@link WebDatasetSource}. */
export interface WebDatasetSourceOptions extends ImageBatchOptions, ShardReadOptions {
  /** Shard URLs: local `.tar` paths, `http(s)://` URLs, `pipe:COMMAND` (see {@link shardUrls} for specs with braces). */
  shards: readonly string[];
  /**
   * Samples in each worker's shuffle buffer (filled before the first sample leaves it; held encoded,
   * e.g. ~50 kB a photo); 0 reads samples in shard order. Default 1000.
   */
  shuffle?: number;
  /**
   * Readers, each with its own share of the shards every epoch (disjoint), its own shuffle buffer and
   * its own batches (batch k from worker k mod workers); needs at least this many shards unless
   * resampled. Images decode on sharp's (libuv's) thread pool: `UV_THREADPOOL_SIZE`, set before Node
   * starts (default 4), is how many decode at once. Default 1.
   */
  workers?: number;
  /**
   * Draw each next shard at random with replacement (webdataset's resampled) instead of epochs of
   * disjoint shares; across processes every rank draws from every shard, so give each its own `seed`
   * (`rils train` seeds rank r with seed + r). Its position resumes exactly too. Default false.
   */
  resampled?: boolean;
}

/** A position of {@link WebDatasetSource}: batches drawn, and every lane's state after its last one. */
interface Position {
  batch: number;
  lanes: LaneState[];
}

/** Batches streamed from WebDataset shards. */
export class WebDatasetSource implements BatchSource, SkipCounts {
  readonly #o: WebDatasetSourceOptions;
  readonly #lanes: ShardLane[];
  #requested = 0;
  /** Per lane: its reading chain (one batch read at a time), and its state after its last requested batch. */
  #reading: Promise<unknown>[];
  #after: Promise<LaneState>[];
  /** Samples without an image or a caption, and images that could not be decoded or were over `maxPixels`. */
  skipped = 0;
  /** Of the skipped images, those over `maxPixels`. */
  oversized = 0;
  /** Shards that could not be read to their end (truncated, corrupt, missing, failing past the retries), each time one was met. */
  skippedShards = 0;
  /** Why the last skipped shard could not be read. */
  lastShardError: string | undefined;
  /** Failed reads that were retried (resets, HTTP 5xx, stalls, failed commands). */
  retries = 0;

  constructor(options: WebDatasetSourceOptions) {
    if (!Array.isArray(options.shards) || options.shards.length === 0)
      throw new RilsInputError('Expected at least one shard');
    checkImageBatchOptions(options);
    const workers = checkInteger(options.workers ?? 1, 'workers', 1);
    const shuffle = checkInteger(options.shuffle ?? 1000, 'shuffle', 0);
    const resampled = options.resampled ?? false;
    if (typeof resampled !== 'boolean') throw invalid('a boolean', 'resampled', resampled);
    if (!resampled && options.shards.length < workers) {
      throw new RilsInputError(
        `Expected at least ${workers} shards for ${workers} workers (each reads its own) but received ${options.shards.length}`,
      );
    }
    this.#o = options;
    const read = readOptions(options);
    this.#lanes = Array.from(
      { length: workers },
      (_, lane) =>
        new ShardLane(
          {
            shards: options.shards,
            lane,
            lanes: workers,
            seed: options.seed,
            shuffle,
            resampled,
            read,
            onError: options.onError ?? 'skip',
          },
          this,
        ),
    );
    this.#reading = this.#lanes.map(() => Promise.resolve());
    this.#after = this.#lanes.map((l) => Promise.resolve(l.state()));
  }

  /** What reading has met so far. */
  counts(): Record<string, number> {
    return {
      skippedSamples: this.skipped,
      oversized: this.oversized,
      skippedShards: this.skippedShards,
      shardRetries: this.retries,
    };
  }

  /** Reads batch k's samples from lane k mod workers (its reads in order), then decodes them in parallel. */
  next(): Promise<SourcedBatch> {
    const k = this.#requested++;
    const i = k % this.#lanes.length;
    const lane = this.#lanes[i]!;
    const read = this.#reading[i]!.then(async () => {
      const samples: PlannedSample[] = [];
      while (samples.length < this.#o.batchSize) {
        const s = await lane.next();
        samples.push({
          load: async () => s.image,
          name: s.key,
          caption: s.caption,
          crop: new Random(lane.rng.int(2 ** 32)),
        });
      }
      return { samples, state: lane.state() };
    });
    this.#reading[i] = read.catch(() => undefined);
    this.#after[i] = read.then((r) => r.state);
    this.#after[i]!.catch(() => undefined); // the batch itself rejects with the error
    const after = [...this.#after]; // every lane's state after its last batch up to k
    return read.then(async ({ samples }) => {
      const batch = await decodeBatch(samples, this.#o, this);
      return { ...batch, position: { batch: k + 1, lanes: await Promise.all(after) } satisfies Position };
    });
  }

  /**
   * Ends the shards being read: their HTTP requests are aborted and their `pipe:` commands killed (a
   * command left running would keep Node from exiting). Call it once no batch is in flight; a later
   * batch opens them again.
   */
  dispose(): void {
    for (const lane of this.#lanes) lane.close();
  }

  /** Goes back to a position; the buffered samples are read again before the next batch. */
  restore(position: unknown): void {
    const p = position as Partial<Position> | null;
    const n = this.#o.shards.length;
    if (
      !p ||
      !Number.isSafeInteger(p.batch) ||
      p.batch! < 0 ||
      !Array.isArray(p.lanes) ||
      !p.lanes.every((l) => isLaneState(l, n))
    ) {
      throw new RilsInputError('Expected a data position saved by this source');
    }
    if (p.lanes.length !== this.#lanes.length) {
      throw new RilsInputError(
        `Expected ${p.lanes.length} workers, as the position was saved with, but this source has ${this.#lanes.length}`,
      );
    }
    this.#requested = p.batch!;
    this.#lanes.forEach((lane, i) => {
      const state = p.lanes![i]!;
      const restored = this.#reading[i]!.then(() => lane.restore(state));
      restored.catch(() => undefined); // the next batch rejects with the error
      this.#reading[i] = restored;
      this.#after[i] = Promise.resolve(state);
    });
  }
}

/** The first `count` samples of a shard that have an image and a caption (none if it cannot be read). */
async function shardExamples(
  shard: string,
  count: number,
  read: ShardReadOptions | undefined,
): Promise<CaptionedImage[]> {
  const examples: CaptionedImage[] = [];
  try {
    for await (const s of shardSamples(shard, readOptions(read))) {
      if (s.image && s.caption) examples.push({ image: s.image, caption: s.caption });
      if (examples.length === count) break;
    }
  } catch {
    // an unreadable shard fails the run when its batches are read, with its own message
  }
  return examples;
}

async function openTraining(spec: string, o: OpenDatasetOptions, share: Share): Promise<Dataset> {
  const all = shardUrls(spec)!;
  // Resampled, every rank draws from every shard with its own seed; else each reads its own.
  const shards = o.shards?.resampled ? [...all] : shareOf(all, share, 'shard(s)');
  const tokenizer = await makeTokenizer(o.tokenizer, () => {
    throw new RilsInputError(
      'WebDataset shards cannot list their captions up front: use a tokenizer with its own vocabulary (byte or CLIP)',
    );
  });
  const source = new WebDatasetSource({
    ...o.shards,
    shards,
    tokenizer,
    ...imageSourceOptions(o),
  });
  const skips = () => ({
    samples: source.skipped,
    oversized: source.oversized,
    shards: source.skippedShards,
    lastShardError: source.lastShardError,
    retries: source.retries,
  });
  return {
    kind: 'webdataset',
    source,
    tokenizer,
    skippedRows: 0,
    skips,
    examples: await shardExamples(shards[0]!, 3, o.shards),
  };
}

/** Every sample with an image and a caption, shard after shard, as it streams in. */
async function openPairs(spec: string): Promise<CaptionedPairs> {
  const shards = shardUrls(spec)!;
  let skipped = 0;
  async function* pairs(): AsyncGenerator<CaptionedImage> {
    for (const shard of shards) {
      for await (const s of shardSamples(shard)) {
        if (s.image && s.caption) yield { image: s.image, caption: s.caption, key: `${shard}:${s.key}` };
        else skipped++;
      }
    }
  }
  return { pairs: pairs(), images: undefined, skipped: () => skipped };
}

/** WebDataset shards: local `.tar` paths, `http(s)://` URLs, `pipe:COMMAND`, with braces and `::` lists. */
export const WEBDATASET_FORMAT: DatasetFormat = {
  name: 'webdataset',
  title: 'WebDataset shards (.tar paths, http(s):// URLs or pipe:COMMAND)',
  matches: (spec) => shardUrls(spec) !== undefined,
  training: openTraining,
  pairs: openPairs,
};
