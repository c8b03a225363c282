/**
 * Datasets by name: one spec string opens the matching source, with this process's share of the
 * examples in a job across processes. `mnist` is the bundled demo set; a folder (`x.jpg` + `x.txt`),
 * a `.jsonl` or a `.csv` file is an index of image files; WebDataset shards (local `.tar` paths,
 * `http(s)://` URLs, `pipe:COMMAND`, with braces and `::` lists: lib/data/shard-spec.ts) stream.
 * @module
 */
import { RilsInputError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { checkInteger, invalid } from '../validate.js';
import { FileCaptionSource, readCaptionIndex } from './files.js';
import { DIGIT_NAMES, MNIST_TRAIN_TEMPLATES, captionFor, loadMnist } from './mnist.js';
import type { LabelledImages } from './mnist.js';
import { CaptionedImageSource } from './source.js';
import type { BatchSource } from './source.js';
import type { CaptionedImage } from './pairs.js';
import { Random } from './augment.js';
import { shardUrls } from './shard-spec.js';
import { readOptions } from './shard-stream.js';
import type { ShardReadOptions } from './shard-stream.js';
import { WebDatasetSource, shardSamples } from './webdataset.js';
import type { WebDatasetSourceOptions } from './webdataset.js';

/**
 * Makes the tokenizer once the dataset is open. `captions()` lists the dataset's captions, e.g. for
 * a word vocabulary; it throws for datasets that cannot list them up front (streamed shards).
 */
export type TokenizerFactory = (captions: () => readonly string[]) => Tokenizer | Promise<Tokenizer>;

/** Options of {@link openDataset}. */
export interface OpenDatasetOptions {
  /** The tokenizer, or a function that makes it from the dataset's captions. */
  tokenizer: Tokenizer | TokenizerFactory;
  /** Images per batch of this process. */
  batchSize: number;
  /** Seeds the order, the crops and the captions. */
  seed: number;
  /** Model input side: images are cropped and resized to it. */
  size: number;
  /** This process's rank: it reads every `worldSize`-th example (or shard) from this one. Default 0. */
  rank?: number;
  /** Processes reading the dataset together. Default 1. */
  worldSize?: number;
  /** Unreadable images and shards: `'skip'` (default) counts them, `'throw'` stops. */
  onError?: 'skip' | 'throw';
  /** Images with more pixels are skipped (counted as oversized). Default 100 000 000. */
  maxPixels?: number;
  /** WebDataset: how shards are read (timeouts, retries), the shuffle buffer, workers, resampling, decode threads; see {@link WebDatasetSourceOptions}. */
  shards?: Pick<WebDatasetSourceOptions, 'shuffle' | 'workers' | 'resampled' | 'timeoutSeconds' | 'retries' | 'backoffSeconds' | 'decodeThreads'>;
}

/** What reading has skipped so far. */
export interface Skips {
  /** Samples skipped: unreadable images (oversized ones included), shard samples without a caption. */
  samples: number;
  /** Of those, images over `maxPixels`. */
  oversized: number;
  /** WebDataset shards that could not be read to their end (their samples before the damage are used). */
  shards: number;
  /** Why the last of those failed. */
  lastShardError?: string | undefined;
  /** Failed shard reads that were retried (resets, HTTP 5xx, stalls, failed commands). */
  retries?: number;
}

/** An open dataset. */
export interface Dataset {
  /** What the spec named. */
  kind: 'mnist' | 'files' | 'webdataset';
  /** Batches of this process's share. */
  source: BatchSource;
  /** The tokenizer the batches are encoded with. */
  tokenizer: Tokenizer;
  /** Index rows without an image or a caption (folder, JSONL, CSV), left out when opening. */
  skippedRows: number;
  /** What reading has skipped so far. */
  skips(): Skips;
  /** Three examples with captions as the run makes them (for the report's patch maps). */
  examples: CaptionedImage[];
}

interface Share {
  rank: number;
  worldSize: number;
}

/** Every `worldSize`-th item from `rank` on, refusing a share that would be empty. */
function shareOf<T>(items: readonly T[], { rank, worldSize }: Share, what: string): T[] {
  if (items.length < worldSize) {
    throw new RilsInputError(`Expected at least ${worldSize} ${what} for ${worldSize} processes (each reads its own) but received ${items.length}`);
  }
  return items.filter((_, i) => i % worldSize === rank);
}

async function makeTokenizer(tokenizer: OpenDatasetOptions['tokenizer'], captions: () => readonly string[]): Promise<Tokenizer> {
  return typeof tokenizer === 'function' ? tokenizer(captions) : tokenizer;
}

/** Rows `keep` of labelled images (a copy). */
function selectImages(all: LabelledImages, keep: readonly number[]): LabelledImages {
  const px = all.size * all.size * 3;
  const images = new Uint8Array(keep.length * px);
  keep.forEach((i, k) => images.set(all.images.subarray(i * px, (i + 1) * px), k * px));
  return { images, labels: Int32Array.from(keep, (i) => all.labels[i]!), size: all.size, count: keep.length };
}

/** Digits of three classes with captions drawn as training draws them. */
function mnistExamples(data: LabelledImages, seed: number): CaptionedImage[] {
  const rng = new Random(seed), px = data.size * data.size * 3;
  return [1, 4, 7].flatMap((digit) => {
    const i = data.labels.indexOf(digit);
    if (i < 0) return [];
    const pixels = data.images.subarray(i * px, (i + 1) * px);
    return [{ image: { pixels, width: data.size, height: data.size }, caption: captionFor(digit, MNIST_TRAIN_TEMPLATES, rng) }];
  });
}

/** The first `count` samples of a shard that have an image and a caption (none if it cannot be read). */
async function shardExamples(shard: string, count: number, read: ShardReadOptions | undefined): Promise<CaptionedImage[]> {
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

async function openMnist(o: OpenDatasetOptions, share: Share): Promise<Dataset> {
  const all = loadMnist('train');
  const data = share.worldSize === 1 ? all : selectImages(all, shareOf([...all.labels.keys()], share, 'digits'));
  const tokenizer = await makeTokenizer(o.tokenizer, () => MNIST_TRAIN_TEMPLATES.flatMap((t) => DIGIT_NAMES.map((d) => t.replaceAll('{}', d))));
  const source = new CaptionedImageSource({
    ...data, outputSize: o.size, tokenizer, batchSize: o.batchSize, seed: o.seed,
    caption: (label, rng) => captionFor(label, MNIST_TRAIN_TEMPLATES, rng),
  });
  const skips = () => ({ samples: 0, oversized: 0, shards: 0 });
  return { kind: 'mnist', source, tokenizer, skippedRows: 0, skips, examples: mnistExamples(data, o.seed) };
}

const maxPixels = (o: OpenDatasetOptions) => (o.maxPixels === undefined ? {} : { maxPixels: o.maxPixels });

async function openShards(all: readonly string[], o: OpenDatasetOptions, share: Share): Promise<Dataset> {
  // Resampled, every rank draws from every shard with its own seed; else each reads its own.
  const shards = o.shards?.resampled ? [...all] : shareOf(all, share, 'shard(s)');
  const tokenizer = await makeTokenizer(o.tokenizer, () => {
    throw new RilsInputError('WebDataset shards cannot list their captions up front: use a tokenizer with its own vocabulary (byte or CLIP)');
  });
  const source = new WebDatasetSource({
    ...o.shards, shards, tokenizer, batchSize: o.batchSize, seed: o.seed, size: o.size, onError: o.onError ?? 'skip', ...maxPixels(o),
  });
  const skips = () => ({
    samples: source.skipped, oversized: source.oversized, shards: source.skippedShards, lastShardError: source.lastShardError, retries: source.retries,
  });
  return { kind: 'webdataset', source, tokenizer, skippedRows: 0, skips, examples: await shardExamples(shards[0]!, 3, o.shards) };
}

async function openFiles(spec: string, o: OpenDatasetOptions, share: Share): Promise<Dataset> {
  const { items, skipped: skippedRows } = await readCaptionIndex(spec);
  const tokenizer = await makeTokenizer(o.tokenizer, () => items.map((i) => i.caption));
  const source = new FileCaptionSource({
    items: shareOf(items, share, 'examples'), tokenizer, batchSize: o.batchSize, seed: o.seed, size: o.size, onError: o.onError ?? 'skip',
    ...maxPixels(o),
  });
  const skips = () => ({ samples: source.skipped, oversized: source.oversized, shards: 0 });
  return { kind: 'files', source, tokenizer, skippedRows, skips, examples: items.slice(0, 3) };
}

/**
 * Opens the dataset `spec` names: `'mnist'`, a folder, a `.jsonl` or `.csv` index, or WebDataset
 * shards (`data/{00000..00127}.tar`, `https://host/cc12m-{00000..01242}.tar`,
 * `pipe:aws s3 cp s3://bucket/{0000..0099}.tar -`, several joined with `::`). With `worldSize` > 1,
 * this rank reads every `worldSize`-th example (shards for WebDataset, unless resampled) starting at its rank.
 *
 * @example
 * ```ts
 * const { source, tokenizer } = await openDataset('captions.jsonl', {
 *   tokenizer: (captions) => WordTokenizer.fromTexts(captions(), { contextLength: 16 }), batchSize: 64, seed: 0, size: 32,
 * });
 * ```
 */
export async function openDataset(spec: string, options: OpenDatasetOptions): Promise<Dataset> {
  if (typeof spec !== 'string' || spec.trim() === '') throw invalid('mnist, a folder, or a .jsonl, .csv or .tar file', 'the dataset', spec);
  const worldSize = checkInteger(options.worldSize ?? 1, 'worldSize', 1);
  const rank = checkInteger(options.rank ?? 0, 'rank', 0);
  if (rank >= worldSize) throw invalid(`an integer < worldSize (${worldSize})`, 'rank', rank);
  const share = { rank, worldSize };
  if (spec === 'mnist') return openMnist(options, share);
  const shards = shardUrls(spec);
  if (shards) return openShards(shards, options, share);
  return openFiles(spec, options, share);
}
