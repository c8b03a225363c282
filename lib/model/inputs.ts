/**
 * Turning what users pass (typed arrays, image files, strings) into the addon's batch arguments,
 * with the size checks done before anything reaches native code.
 * @internal
 * @module
 */
import type { NativeBatch } from '../addon/binding.js';
import { loadImages } from '../io/images.js';
import type { ImageSource } from '../io/images.js';
import type { ModelConfig } from './options.js';
import { resolveTemplates } from '../eval/templates.js';
import type { Templates } from '../eval/templates.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { Batch } from '../types.js';
import { RilsInputError } from '../errors.js';
import { checkInteger, checkTypedArray, describe, invalid } from '../validate.js';

/** Images already as tensors: NCHW float (normalised) or NHWC uint8 RGB, `batchSize` of them. */
export interface ImageTensor {
  /** Float32Array `[B, C, S, S]` (normalised) or Uint8Array `[B, S, S, C]` RGB. */
  images: Float32Array | Uint8Array;
  /** B. */
  batchSize: number;
}

/** Images as tensors, or as encoded files (paths or bytes) decoded with the eval transform. */
export type ImagesInput = ImageTensor | readonly ImageSource[];

/**
 * A copy of a caller's typed array, made when the call is made. Calls on a model run in turn, so
 * the addon may read an input only later, and the caller may change or detach (transfer) it
 * meanwhile: a call works on its inputs as they were when it was made. The copy lives in a
 * SharedArrayBuffer, which the addon reads in place (an ordinary ArrayBuffer it copies again, as it
 * could be detached under the native work): one copy in all.
 */
export function snapshot<T extends Float32Array | Uint8Array | Int32Array>(array: T): T {
  // The base class: a Buffer (a Uint8Array) must not be rebuilt with Buffer's own deprecated constructor.
  const Ctor = (array instanceof Float32Array
    ? Float32Array
    : array instanceof Int32Array
      ? Int32Array
      : Uint8Array) as unknown as new (buffer: SharedArrayBuffer) => T;
  const copy = new Ctor(new SharedArrayBuffer(array.byteLength));
  copy.set(array as never);
  return copy;
}

/** Checks a tensor batch's type and length (`minBatch` 2 for training); the images are {@link snapshot}ted. */
export function checkImageTensor(
  config: ModelConfig,
  input: ImageTensor,
  minBatch: number,
  what = 'images',
): ImageTensor {
  if (typeof input !== 'object' || input === null) throw invalid('an object with images and batchSize', what, input);
  const B = checkInteger(input.batchSize, 'batchSize', 1);
  if (B < minBatch) {
    throw new RilsInputError(
      `Expected batchSize >= ${minBatch} (the contrastive loss needs negatives) but received ${B}`,
    );
  }
  const { imageSize: S, inChans: C } = config;
  const u8 = input.images instanceof Uint8Array;
  const images = checkTypedArray<Float32Array | Uint8Array>(
    input.images,
    u8 ? [Uint8Array] : [Float32Array],
    B * C * S * S,
    `${what} ([${u8 ? `${B}, ${S}, ${S}, ${C}` : `${B}, ${C}, ${S}, ${S}`}])`,
  );
  return { images: snapshot(images), batchSize: B };
}

/** Tensors pass through (checked); files are decoded with sharp off the JS thread. */
export async function resolveImages(config: ModelConfig, input: ImagesInput): Promise<ImageTensor> {
  if (Array.isArray(input)) {
    const images = await loadImages(input as readonly ImageSource[], config.imageSize, {
      interpolation: config.interpolation,
    });
    return { images, batchSize: input.length };
  }
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    throw new RilsInputError(
      `Expected an array of images (paths or encoded bytes) or { images, batchSize } but received ` +
        `${typeof input === 'string' ? JSON.stringify(input) : 'one Buffer'}: pass [image] for a single image`,
    );
  }
  return checkImageTensor(config, input as ImageTensor, 1);
}

/** Checks that a tokenizer's ids and rows fit the model. */
export function checkTokenizer(config: ModelConfig, tokenizer: Tokenizer | undefined): Tokenizer {
  if (!tokenizer) {
    throw new RilsInputError(
      'Texts need a tokenizer: pass { tokenizer } (ClipTokenizer or ByteTokenizer) to Rils.create or to this call',
    );
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
export function tokenize(
  config: ModelConfig,
  tokenizer: Tokenizer | undefined,
  texts: readonly string[],
  what: string,
): Int32Array {
  if (!Array.isArray(texts) || texts.length === 0 || !texts.every((s) => typeof s === 'string')) {
    throw new RilsInputError(`Expected a non-empty array of strings for ${what} but received ${describe(texts)}`);
  }
  return checkTokenizer(config, tokenizer).encodeBatch(texts);
}

/** Checks an Int32Array of `rows` token rows. */
export function checkTokens(config: ModelConfig, tokens: unknown, rows: number, what = 'tokens'): Int32Array {
  return checkTypedArray(
    tokens,
    [Int32Array],
    rows * config.contextLength,
    `${what} ([${rows}, ${config.contextLength}])`,
  );
}

/** Texts as strings (through the tokenizer) or as token rows already, checked against the model. */
export function textRows(
  config: ModelConfig,
  tokenizer: Tokenizer | undefined,
  texts: readonly string[] | { tokens: Int32Array; batchSize: number },
): { tokens: Int32Array; batchSize: number } {
  if (Array.isArray(texts)) return { tokens: tokenize(config, tokenizer, texts, 'texts'), batchSize: texts.length };
  const t = texts as { tokens?: unknown; batchSize?: unknown } | null;
  const batchSize = checkInteger(t?.batchSize, 'batchSize', 1);
  return { tokens: snapshot(checkTokens(config, t?.tokens, batchSize)), batchSize };
}

/** A training batch checked against the model: images, token rows, and the optional mask noise. */
export function checkBatch(config: ModelConfig, batch: Batch): NativeBatch {
  if (typeof batch !== 'object' || batch === null) throw invalid('a batch object', 'the batch', batch);
  const { images, batchSize: B } = checkImageTensor(config, batch, 2);
  const tokens = snapshot(checkTokens(config, batch.tokens, B));
  const N = (config.imageSize / config.patchSize) ** 2;
  const maskNoise =
    batch.maskNoise === undefined
      ? undefined
      : snapshot(checkTypedArray(batch.maskNoise, [Float32Array], B * N, `maskNoise ([${B}, ${N}])`));
  return { images, tokens, batchSize: B, maskNoise };
}

/** Every class name filled into every template (class-major), as token rows. */
export function classPrompts(
  config: ModelConfig,
  tokenizer: Tokenizer | undefined,
  classNames: readonly string[],
  templates: Templates = 'slip7',
): { tokens: Int32Array; numClasses: number; templatesPerClass: number } {
  const list = resolveTemplates(templates);
  if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string' && t.includes('{}'))) {
    throw new RilsInputError(
      `Expected 'slip7', 'clip80' or strings containing {} for templates but received ${String(templates)}`,
    );
  }
  const names = Array.isArray(classNames) ? classNames : [];
  const tokens = tokenize(
    config,
    tokenizer,
    names.flatMap((c: string) => list.map((t) => t.replaceAll('{}', c))),
    'classNames',
  );
  return { tokens, numClasses: names.length, templatesPerClass: list.length };
}
