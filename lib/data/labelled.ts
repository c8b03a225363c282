/**
 * Labelled image sets for evaluation: the images (files or decoded pixels), their class indices and
 * the class names; seeded stratified splits, and lining up a training set's classes with a test
 * set's. lib/data/formats.ts opens them (`openLabelledImages`).
 * @module
 */
import type { EvalImage } from '../io/images.js';
import { checkInteger, invalid } from '../validate.js';
import { Random } from './augment.js';
import type { ClassNameSource } from './image-folder.js';

/** Images with a class each, e.g. from {@link readImageFolder}. */
export interface LabelledImageSet {
  /** Class names in index order: what zero-shot prompts are made of. */
  classNames: readonly string[];
  /** The images: file paths, encoded bytes or decoded RGB pixels. */
  images: readonly EvalImage[];
  /** Per image, its index into `classNames`. */
  labels: Int32Array;
  /** Per image, a short name for messages and reports (e.g. its path in the folder). */
  names?: readonly string[];
  /** Zero-shot templates that belong to the data (a built-in set's), used when none are given. */
  templates?: readonly string[];
}

/** Checks a set's shape: as many labels as images, each a valid class index. */
export function checkImageSet(set: LabelledImageSet, what: string): LabelledImageSet {
  if (typeof set !== 'object' || set === null || !Array.isArray(set.images))
    throw invalid('a labelled image set', what, set);
  if (
    !Array.isArray(set.classNames) ||
    set.classNames.length === 0 ||
    !set.classNames.every((c) => typeof c === 'string')
  ) {
    throw invalid('a non-empty array of class names', `${what}.classNames`, set.classNames);
  }
  if (!(set.labels instanceof Int32Array) || set.labels.length !== set.images.length) {
    throw invalid(`an Int32Array of ${set.images.length} labels (one per image)`, `${what}.labels`, set.labels);
  }
  const bad = set.labels.findIndex((l) => l < 0 || l >= set.classNames.length);
  if (bad >= 0)
    throw invalid(`class indices in [0, ${set.classNames.length})`, `${what}.labels[${bad}]`, set.labels[bad]);
  return set;
}

/** The images at `keep`, in that order, with their labels and names. */
export function selectImages(set: LabelledImageSet, keep: ArrayLike<number>): LabelledImageSet {
  const pick = Array.from(keep);
  return {
    ...set,
    images: pick.map((i) => set.images[i]!),
    labels: Int32Array.from(pick, (i) => set.labels[i]!),
    ...(set.names ? { names: pick.map((i) => set.names![i]!) } : {}),
  };
}

/**
 * A seeded stratified split of positions by label: in each class, `round(fraction × n)` of them
 * (at least one of a class of two or more, never all of them) go to `held`, the rest to `rest`.
 * Both come back sorted. @internal
 */
export function stratifiedSplit(
  labels: ArrayLike<number>,
  fraction: number,
  seed: number,
): { held: number[]; rest: number[] } {
  if (!(typeof fraction === 'number' && fraction > 0 && fraction < 1))
    throw invalid('a fraction between 0 and 1 (exclusive)', 'the split', fraction);
  const rng = new Random(checkInteger(seed, 'seed', 0));
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const members = byClass.get(labels[i]!);
    if (members) members.push(i);
    else byClass.set(labels[i]!, [i]);
  }
  const held: number[] = [],
    rest: number[] = [];
  for (const members of [...byClass.entries()].sort((a, b) => a[0] - b[0]).map(([, m]) => m)) {
    rng.shuffle(members);
    const n = members.length;
    const nHeld = n < 2 ? n : Math.min(n - 1, Math.max(1, Math.round(fraction * n)));
    held.push(...members.slice(0, nHeld));
    rest.push(...members.slice(nHeld));
  }
  const sorted = (a: number[]) => a.sort((x, y) => x - y);
  return { held: sorted(held), rest: sorted(rest) };
}

/**
 * A seeded stratified split: in each class, `round(testFraction × n)` images (at least one of a
 * class of two or more, and never all of them) go to `test`, the rest to `train`.
 */
export function splitImageSet(
  set: LabelledImageSet,
  testFraction: number,
  seed: number,
): {
  /** The images not held out. */
  train: LabelledImageSet;
  /** The held-out images. */
  test: LabelledImageSet;
} {
  const { held, rest } = stratifiedSplit(set.labels, testFraction, seed);
  return { train: selectImages(set, rest), test: selectImages(set, held) };
}

/** A training set relabelled with the test set's class indices, and what could not be matched. */
export interface AlignedTrainSet {
  /** The training images of classes the test set has, labelled with its indices. */
  train: LabelledImageSet;
  /** Training images left out: their class is not among the test set's. */
  skipped: number;
  /** Training classes the test set lacks. */
  extraClasses: string[];
  /** Test classes without any training image (k-NN, n-shot and the probe cannot predict them). */
  missingClasses: string[];
}

/** Matches a training set's classes to the test set's by name. */
export function alignTrainSet(test: LabelledImageSet, train: LabelledImageSet): AlignedTrainSet {
  const index = new Map(test.classNames.map((c, i) => [c, i]));
  const keep: number[] = [];
  train.labels.forEach((l, i) => {
    if (index.has(train.classNames[l]!)) keep.push(i);
  });
  const kept = selectImages(train, keep);
  const labels = Int32Array.from(kept.labels, (l) => index.get(train.classNames[l]!)!);
  const present = new Set(labels);
  return {
    train: { ...kept, classNames: test.classNames, labels },
    skipped: train.images.length - keep.length,
    extraClasses: train.classNames.filter((c) => !index.has(c)),
    missingClasses: test.classNames.filter((_, i) => !present.has(i)),
  };
}

/** Options of {@link openLabelledImages}. */
export interface OpenLabelledImagesOptions {
  /** A separate training folder; without it the data is split ({@link testFraction}). */
  train?: string;
  /** Class names for the folders: see {@link ClassNameSource}. Default: `classes.txt`/`classes.json` in the folder, or the folder names. */
  classNames?: ClassNameSource;
  /** Share of each class held out for testing when there is no separate training folder. Default 0.5. */
  testFraction?: number;
  /** Seeds the split. Default 0. */
  seed?: number;
}

/** An evaluation's images: the test set, the training set the frozen-feature protocols learn from, and notes. */
export interface LabelledData {
  /** What is evaluated. */
  test: LabelledImageSet;
  /** What k-NN, n-shot and the linear probe learn from. */
  train: LabelledImageSet;
  /** Files that are not images, and training images of classes the test set lacks. */
  skipped: number;
  /** What a user should know: empty class folders, classes missing on one side, the split. */
  notes: string[];
}
