/**
 * Labelled image sets for evaluation: the images (files or decoded pixels), their class indices and
 * the class names; seeded stratified splits, and lining up a training set's classes with a test
 * set's. `mnist` is the built-in set of the demo.
 * @module
 */
import { RilsInputError } from '../errors.js';
import type { EvalImage } from '../io/images.js';
import { checkInteger, invalid } from '../validate.js';
import { Random } from './augment.js';
import { newWalk, walkImageFolder } from './image-folder.js';
import type { ClassNameSource, ImageFolder } from './image-folder.js';
import { DIGIT_NAMES, MNIST_EVAL_TEMPLATES, loadMnist } from './mnist.js';
import type { LabelledImages } from './mnist.js';

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
  if (typeof set !== 'object' || set === null || !Array.isArray(set.images)) throw invalid('a labelled image set', what, set);
  if (!Array.isArray(set.classNames) || set.classNames.length === 0 || !set.classNames.every((c) => typeof c === 'string')) {
    throw invalid('a non-empty array of class names', `${what}.classNames`, set.classNames);
  }
  if (!(set.labels instanceof Int32Array) || set.labels.length !== set.images.length) {
    throw invalid(`an Int32Array of ${set.images.length} labels (one per image)`, `${what}.labels`, set.labels);
  }
  const bad = set.labels.findIndex((l) => l < 0 || l >= set.classNames.length);
  if (bad >= 0) throw invalid(`class indices in [0, ${set.classNames.length})`, `${what}.labels[${bad}]`, set.labels[bad]);
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
export function stratifiedSplit(labels: ArrayLike<number>, fraction: number, seed: number): { held: number[]; rest: number[] } {
  if (!(typeof fraction === 'number' && fraction > 0 && fraction < 1)) throw invalid('a fraction between 0 and 1 (exclusive)', 'the split', fraction);
  const rng = new Random(checkInteger(seed, 'seed', 0));
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const members = byClass.get(labels[i]!);
    if (members) members.push(i);
    else byClass.set(labels[i]!, [i]);
  }
  const held: number[] = [], rest: number[] = [];
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
export function splitImageSet(set: LabelledImageSet, testFraction: number, seed: number): {
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

function mnistSet(digits: LabelledImages): LabelledImageSet {
  const px = digits.size * digits.size * 3;
  return {
    classNames: DIGIT_NAMES,
    images: Array.from({ length: digits.count }, (_, i) => ({
      pixels: digits.images.subarray(i * px, (i + 1) * px), width: digits.size, height: digits.size,
    })),
    labels: digits.labels,
    names: Array.from({ length: digits.count }, (_, i) => `digit ${i}`),
    templates: MNIST_EVAL_TEMPLATES,
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

/** What a user should know of a folder's walk: empty class folders, links not followed, files read once. */
function walkNotes(folder: ImageFolder, dir: string, train: boolean): string[] {
  const notes = folder.emptyClasses.map((c) => `class folder ${JSON.stringify(c)} in ${dir} holds no image: left out`);
  if (folder.linkedFolders.length) {
    notes.push(`${folder.linkedFolders.length} symbolic link(s) to folders inside the class folders of ${dir} not followed (the first: ${folder.linkedFolders[0]})`);
  }
  if (folder.duplicates) {
    notes.push(`${folder.duplicates} image file(s) in ${dir} reached again through another link${train ? ', or test images too,' : ''} left out: each file counts once`);
  }
  return notes;
}

async function openFolders(spec: string, o: OpenLabelledImagesOptions): Promise<LabelledData> {
  const named = o.classNames === undefined ? {} : { classNames: o.classNames };
  const walk = newWalk();  // shared: a training image that is a test image too is left out of the training set
  const data = await walkImageFolder(spec, named, walk);
  const notes = walkNotes(data, spec, false);
  if (o.train === undefined) {
    const fraction = o.testFraction ?? 0.5, seed = o.seed ?? 0;
    notes.push(`no training folder: ${spec} is split, ${fraction} of each class for testing (seed ${seed})`);
    const split = splitImageSet(data.images, fraction, seed);
    if (split.train.images.length === 0) notes.push(`every class of ${spec} has a single image, which is kept for testing: no training images`);
    return { ...split, skipped: data.skipped, notes };
  }
  const trainFolder = await walkImageFolder(o.train, { ...named, minClasses: 1 }, walk);
  notes.push(...walkNotes(trainFolder, o.train, true));
  const aligned = alignTrainSet(data.images, trainFolder.images);
  if (aligned.extraClasses.length) {
    const [images, classes] = aligned.skipped === 1 ? ['image', 'a class the test set lacks was'] : ['images', 'classes the test set lacks were'];
    notes.push(`${aligned.skipped} training ${images} of ${classes} left out: ${aligned.extraClasses.join(', ')}`);
  }
  return { test: data.images, train: aligned.train, skipped: data.skipped + trainFolder.skipped + aligned.skipped, notes };
}

/**
 * Opens labelled images for evaluation: `'mnist'` (the built-in digits: 8 000 training, 2 000 test)
 * or a folder with one subfolder per class, with a separate training folder or a seeded split.
 *
 * @example
 * ```ts
 * const { test, train, notes } = await openLabelledImages('pets/val', { train: 'pets/train' });
 * ```
 */
export async function openLabelledImages(spec: string, options: OpenLabelledImagesOptions = {}): Promise<LabelledData> {
  if (typeof spec !== 'string' || spec.trim() === '') throw invalid("'mnist' or a folder of class folders", 'the data', spec);
  if (spec !== 'mnist') return openFolders(spec, options);
  if (options.train !== undefined) throw new RilsInputError("The built-in 'mnist' set has its own training digits: leave out the training folder");
  return { test: mnistSet(loadMnist('test')), train: mnistSet(loadMnist('train')), skipped: 0, notes: [] };
}
