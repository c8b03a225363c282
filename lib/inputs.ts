/**
 * Turning what users pass (typed arrays, image files, strings) into the addon's batch arguments,
 * with the size checks done before anything reaches native code.
 * @internal
 * @module
 */
import { loadImages } from './images.js';
import type { ImageSource } from './images.js';
import type { ModelConfig } from './options.js';
import type { Tokenizer } from './tokenizer.js';
import { RilsInputError } from './errors.js';
import { checkInteger, checkTypedArray, describe, invalid } from './validate.js';

/** Images already as tensors: NCHW float (normalised) or NHWC uint8 RGB, `batchSize` of them. */
export interface ImageTensor {
  /** Float32Array `[B, C, S, S]` (normalised) or Uint8Array `[B, S, S, C]` RGB. */
  images: Float32Array | Uint8Array;
  /** B. */
  batchSize: number;
}

/** Images as tensors, or as encoded files (paths or bytes) decoded with the eval transform. */
export type ImagesInput = ImageTensor | readonly ImageSource[];

/** Checks a tensor batch's type and length; `minBatch` 2 for training. */
export function checkImageTensor(config: ModelConfig, input: ImageTensor, minBatch: number, what = 'images'): ImageTensor {
  if (typeof input !== 'object' || input === null) throw invalid('an object with images and batchSize', what, input);
  const B = checkInteger(input.batchSize, 'batchSize', 1);
  if (B < minBatch) {
    throw new RilsInputError(`Expected batchSize >= ${minBatch} (the contrastive loss needs negatives) but received ${B}`);
  }
  const { imageSize: S, inChans: C } = config;
  const u8 = input.images instanceof Uint8Array;
  const images = checkTypedArray<Float32Array | Uint8Array>(
    input.images, u8 ? [Uint8Array] : [Float32Array], B * C * S * S,
    `${what} ([${u8 ? `${B}, ${S}, ${S}, ${C}` : `${B}, ${C}, ${S}, ${S}`}])`,
  );
  return { images, batchSize: B };
}

/** Tensors pass through (checked); files are decoded with sharp off the JS thread. */
export async function resolveImages(config: ModelConfig, input: ImagesInput): Promise<ImageTensor> {
  if (Array.isArray(input)) {
    return { images: await loadImages(input as readonly ImageSource[], config.imageSize), batchSize: input.length };
  }
  return checkImageTensor(config, input as ImageTensor, 1);
}

/** Checks that a tokenizer's ids and rows fit the model. */
export function checkTokenizer(config: ModelConfig, tokenizer: Tokenizer | undefined): Tokenizer {
  if (!tokenizer) {
    throw new RilsInputError('Texts need a tokenizer: pass { tokenizer } (ClipTokenizer or ByteTokenizer) to Rils.create or to this call');
  }
  if (tokenizer.vocabSize !== config.vocabSize || tokenizer.contextLength !== config.contextLength) {
    throw new RilsInputError(
      `The tokenizer (vocabulary ${tokenizer.vocabSize}, context ${tokenizer.contextLength}) does not fit this model ` +
        `(vocabSize ${config.vocabSize}, contextLength ${config.contextLength})`,
    );
  }
  return tokenizer;
}

/** Strings → one Int32Array of rows; a non-empty array of strings is required. */
export function tokenize(config: ModelConfig, tokenizer: Tokenizer | undefined, texts: readonly string[], what: string): Int32Array {
  if (!Array.isArray(texts) || texts.length === 0 || !texts.every((s) => typeof s === 'string')) {
    throw new RilsInputError(`Expected a non-empty array of strings for ${what} but received ${describe(texts)}`);
  }
  return checkTokenizer(config, tokenizer).encodeBatch(texts);
}

/** Checks an Int32Array of `rows` token rows. */
export function checkTokens(config: ModelConfig, tokens: unknown, rows: number, what = 'tokens'): Int32Array {
  return checkTypedArray(tokens, [Int32Array], rows * config.contextLength, `${what} ([${rows}, ${config.contextLength}])`);
}
