/**
 * What every dataset format gives and takes (lib/data/formats.ts lists the formats): training
 * batches with this process's share of the examples, image–caption pairs for retrieval, labelled
 * images for classification, and the options and counts they share.
 * @module
 */
import { RilsInputError } from '../errors.js';
import type { EvalImage } from '../io/images.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { BatchSource } from './source.js';
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
  shards?: Pick<
    WebDatasetSourceOptions,
    'shuffle' | 'workers' | 'resampled' | 'timeoutSeconds' | 'retries' | 'backoffSeconds' | 'decodeThreads'
  >;
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

/** One image with one of its captions. */
export interface CaptionedImage {
  /** The image: a path, encoded bytes or pixels. */
  image: EvalImage;
  /** A caption of it. */
  caption: string;
  /** Identifies the image: pairs with the same key are one image with several captions (as in COCO). Default: the path, when `image` is one. */
  key?: string;
}

/** An open dataset. */
export interface Dataset {
  /** The format the spec named (its name in lib/data/formats.ts: `'mnist'`, `'files'`, `'webdataset'`). */
  kind: string;
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

/** What {@link openCaptionedPairs} opened. */
export interface CaptionedPairs {
  /** The pairs, in the set's order (read as they are consumed, for shards). */
  pairs: AsyncIterable<CaptionedImage>;
  /** The number of distinct images, when known up front (not for shards). */
  images: number | undefined;
  /** Rows or samples without an image or a caption so far (left out). */
  skipped(): number;
}

/** This process's place among those reading a dataset together. @internal */
export interface Share {
  rank: number;
  worldSize: number;
}

/** Every `worldSize`-th item from `rank` on, refusing a share that would be empty. @internal */
export function shareOf<T>(items: readonly T[], { rank, worldSize }: Share, what: string): T[] {
  if (items.length < worldSize) {
    throw new RilsInputError(
      `Expected at least ${worldSize} ${what} for ${worldSize} processes (each reads its own) but received ${items.length}`,
    );
  }
  return items.filter((_, i) => i % worldSize === rank);
}

/** The tokenizer given, or the one its factory makes from the dataset's captions. @internal */
export async function makeTokenizer(
  tokenizer: OpenDatasetOptions['tokenizer'],
  captions: () => readonly string[],
): Promise<Tokenizer> {
  return typeof tokenizer === 'function' ? tokenizer(captions) : tokenizer;
}

/**
 * What a file or shard source takes of {@link OpenDatasetOptions} besides its examples: the batch,
 * seed and input side, the error policy (default `'skip'`) and `maxPixels` when given. @internal
 */
export function imageSourceOptions(o: OpenDatasetOptions) {
  return {
    batchSize: o.batchSize,
    seed: o.seed,
    size: o.size,
    onError: o.onError ?? ('skip' as const),
    ...(o.maxPixels === undefined ? {} : { maxPixels: o.maxPixels }),
  };
}
