/**
 * Batch sources for the training loop: they produce batches in a seeded order and can save and
 * restore their position, so a resumed run sees exactly the batches an uninterrupted one would.
 * @module
 */
import type { Batch } from '../types.js';
import { checkTokenizerOption } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { RilsInputError } from '../errors.js';
import { Random, randomResizedCrop } from './augment.js';

/** A batch with the source's position right after it, for checkpoints. */
export interface SourcedBatch extends Batch {
  /** JSON: pass it to {@link BatchSource.restore} to continue after this batch. */
  position: unknown;
}

/**
 * Anything the training loop can draw batches from. Several `next()` calls may be in flight at
 * once (prefetching); the batches and positions must not depend on how they interleave.
 */
export interface BatchSource {
  /** The next batch and the position after it. */
  next(): SourcedBatch | Promise<SourcedBatch>;
  /** Goes back to a position carried by a batch, so the following batch is the one after it. */
  restore(position: unknown): void;
  /** What reading has skipped or retried so far, by name (written into each metrics line, summed over ranks). */
  counts?(): Record<string, number>;
  /** Ends what the source holds open (streams, commands), once no batch is in flight. */
  dispose?(): void;
}

/** Options of {@link CaptionedImageSource}. */
export interface CaptionedImageSourceOptions {
  /** `[count, size, size, 3]` uint8 RGB. */
  images: Uint8Array;
  /** Per image, the label passed to `caption`. */
  labels: Int32Array;
  /** Image side of `images`. */
  size: number;
  /** Model input side (crops are resized to it). Default `size`. */
  outputSize?: number;
  /** Makes a caption for a label, e.g. from templates; use `rng` for any random choice. */
  caption: (label: number, rng: Random) => string;
  /** Turns captions into token rows. */
  tokenizer: Tokenizer;
  /** Images per batch. */
  batchSize: number;
  /** Seeds the order, the crops and the captions. */
  seed: number;
  /** RandomResizedCrop scale range (spec: [0.5, 1]); `false` for no augmentation. */
  cropScale?: [number, number] | false;
}

/** In-memory labelled images with captions made per sample, reshuffled every epoch. */
export class CaptionedImageSource implements BatchSource {
  readonly #o: CaptionedImageSourceOptions;
  readonly #count: number;
  #rng: Random;
  #order: number[] = [];
  #drawn = 0;

  constructor(options: CaptionedImageSourceOptions) {
    const { images, labels, size, batchSize } = options;
    if (
      !(images instanceof Uint8Array) ||
      !(labels instanceof Int32Array) ||
      images.length !== labels.length * size * size * 3
    ) {
      throw new RilsInputError(
        `Expected ${labels?.length ?? 0} RGB images of ${size}×${size} (uint8) with their labels`,
      );
    }
    if (!Number.isSafeInteger(batchSize) || batchSize < 2)
      throw new RilsInputError(`Expected batchSize >= 2 but received ${batchSize}`);
    checkTokenizerOption(options.tokenizer, 'the tokenizer of a data source');
    this.#o = options;
    this.#count = labels.length;
    this.#rng = new Random(options.seed);
  }

  /** Completed passes over the data. */
  get epoch(): number {
    return Math.floor(this.#drawn / this.#count);
  }

  next(): SourcedBatch {
    const { images, labels, size, batchSize, tokenizer } = this.#o;
    const S = this.#o.outputSize ?? size;
    const px = size * size * 3;
    const out = new Uint8Array(batchSize * S * S * 3);
    const captions: string[] = [];
    for (let b = 0; b < batchSize; b++) {
      if (this.#order.length === 0) this.#order = this.#rng.shuffle([...Array(this.#count).keys()]);
      const i = this.#order.pop()!;
      this.#drawn++;
      const src = images.subarray(i * px, (i + 1) * px);
      if (this.#o.cropScale === false && S === size) out.set(src, b * S * S * 3);
      else randomResizedCrop(src, size, size, 3, S, this.#rng, out, b * S * S * 3, this.#o.cropScale || [1, 1]);
      captions.push(this.#o.caption(labels[i]!, this.#rng));
    }
    const position = { rng: this.#rng.state, order: [...this.#order], drawn: this.#drawn };
    return { images: out, tokens: tokenizer.encodeBatch(captions), batchSize, position };
  }

  restore(state: unknown): void {
    const s = state as { rng?: unknown; order?: unknown; drawn?: unknown } | null;
    if (
      !s ||
      typeof s.rng !== 'number' ||
      !Array.isArray(s.order) ||
      typeof s.drawn !== 'number' ||
      !s.order.every((i) => Number.isSafeInteger(i) && i >= 0 && i < this.#count)
    ) {
      throw new RilsInputError('Expected a data position saved by this source');
    }
    this.#rng.state = s.rng;
    this.#order = [...(s.order as number[])];
    this.#drawn = s.drawn;
  }
}
