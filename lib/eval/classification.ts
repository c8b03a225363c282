/**
 * Image classification on labelled images (spec §4): zero-shot top-1/top-5 with prompt templates,
 * and on frozen pooled embeddings k-NN, n-shot (nearest class mean and linear probe) and the full
 * linear probe; per-class accuracy and confusion matrices. Every image is encoded once.
 * @module
 */
import { checkImageSet } from '../data/labelled.js';
import type { LabelledImageSet } from '../data/labelled.js';
import { RilsInputError } from '../errors.js';
import type { Rils } from '../rils.js';
import { resolveTemplates } from './templates.js';
import type { Templates } from './templates.js';
import { checkInteger, invalid } from '../validate.js';
import { embedImages } from './embed.js';
import type { EmbedProgress, SkippedImage } from './embed.js';
import { fewShot, frozenPredict, sweptLinearProbe } from './probe.js';
import type { FewShotResult, SweepPoint } from './probe.js';
import { topKByDot } from './protocols.js';
import { confusionMatrix, perClassAccuracy, topKAccuracy } from './scores.js';

/** Options of {@link evaluateClassification}. */
export interface EvaluateClassificationOptions {
  /** Zero-shot prompt templates (`{}` = the class name). Default: the test set's own `templates`, else `'slip7'`. */
  templates?: Templates;
  /** Neighbours of k-NN (cosine, similarity-weighted vote). Default 20. */
  k?: number;
  /** Examples per class of the n-shot protocols. Default `[1, 5, 10]`; `[]` for none. */
  shots?: readonly number[];
  /** Seeded draws of the n examples, averaged. Default 3. */
  shotDraws?: number;
  /** L2 penalty of the n-shot linear probes (too few examples to hold some out to choose one). Default 0.1. */
  fewShotWeightDecay?: number;
  /** Penalties the full linear probe chooses from on the validation split. Default 1e-6, 1e-5, …, 1. */
  weightDecays?: readonly number[];
  /** Share of each class of the training set held out to choose the penalty. Default 0.2. */
  validationFraction?: number;
  /** Seeds the n-shot draws and the validation split. Default 0. */
  seed?: number;
  /** Images decoded and encoded together. Default 64. */
  chunkSize?: number;
  /** Unreadable images: `'skip'` (default) leaves them out and counts them, `'throw'` stops. */
  onError?: 'skip' | 'throw';
  /** Progress of the encoding of each set. */
  onProgress?: (set: 'test' | 'train', progress: EmbedProgress) => void;
}

/** The images of one set that were evaluated. */
export interface EvaluatedSet {
  /** Images embedded. */
  images: number;
  /** Images that could not be decoded (left out). */
  skipped: SkippedImage[];
  /** Seconds spent decoding and encoding. */
  seconds: number;
  /** Images per second. */
  imagesPerSecond: number;
}

/** Accuracy of one classifier (fractions 0..1). */
export interface ProtocolAccuracy {
  /** The true class ranks first. */
  top1: number;
  /** Per class (index order), the share of its images classified right; NaN for a class without test images. */
  perClass: number[];
  /** `[class][class]` counts: row = true class, column = predicted class. */
  confusion: number[][];
  /** Per evaluated test image, the predicted class. */
  predictions: Int32Array;
}

/** Zero-shot accuracy. */
export interface ZeroShotAccuracy extends ProtocolAccuracy {
  /** The true class is among the five best (all of them with five classes or fewer). */
  top5: number;
  /** Per evaluated test image, the best classes, best first: `[images, min(5, classes)]`. */
  top: Int32Array;
}

/** The linear probe on all training features. */
export interface LinearProbeAccuracy extends ProtocolAccuracy {
  /** The L2 penalty chosen on the validation split. */
  weightDecay: number;
  /** Validation accuracy of every penalty tried. */
  sweep: SweepPoint[];
}

/** What {@link evaluateClassification} measured. */
export interface ClassificationResults {
  /** The classes, in index order. */
  classNames: string[];
  /** The zero-shot prompt templates used. */
  templates: string[];
  /** The test set. */
  test: EvaluatedSet;
  /** Per evaluated test image (the order of `predictions`), its position in the test set. */
  testImages: Int32Array;
  /** Per evaluated test image, its label. */
  testLabels: Int32Array;
  /** The training set, when given. */
  train?: EvaluatedSet;
  /** Zero-shot classification from the class names and the templates. */
  zeroShot: ZeroShotAccuracy;
  /** k-NN on the training features (with a training set). */
  knn?: ProtocolAccuracy & {
    /** The neighbours that vote. */
    k: number;
  };
  /** n-shot accuracy per n (with a training set). */
  fewShot?: FewShotResult[];
  /** The full linear probe (with a training set). */
  linearProbe?: LinearProbeAccuracy;
  /** Things that qualify the numbers: classes without training images, n above a class's size. */
  notes: string[];
}

const DEFAULT_WEIGHT_DECAYS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];

function checkOptions(o: EvaluateClassificationOptions) {
  const shots = o.shots ?? [1, 5, 10];
  if (!Array.isArray(shots)) throw invalid('an array of integers >= 1', 'shots', shots);
  shots.forEach((n) => checkInteger(n, 'shots', 1));
  const weightDecays = o.weightDecays ?? DEFAULT_WEIGHT_DECAYS;
  if (
    !Array.isArray(weightDecays) ||
    weightDecays.length === 0 ||
    !weightDecays.every((w) => typeof w === 'number' && w >= 0 && Number.isFinite(w))
  ) {
    throw invalid('a non-empty array of numbers >= 0', 'weightDecays', weightDecays);
  }
  const validationFraction = o.validationFraction ?? 0.2;
  if (!(validationFraction > 0 && validationFraction < 1))
    throw invalid('a fraction between 0 and 1 (exclusive)', 'validationFraction', validationFraction);
  const fewShotWeightDecay = o.fewShotWeightDecay ?? 0.1;
  if (!(typeof fewShotWeightDecay === 'number' && fewShotWeightDecay >= 0))
    throw invalid('a number >= 0', 'fewShotWeightDecay', fewShotWeightDecay);
  return {
    k: checkInteger(o.k ?? 20, 'k', 1),
    shots,
    shotDraws: checkInteger(o.shotDraws ?? 3, 'shotDraws', 1),
    weightDecays,
    validationFraction,
    fewShotWeightDecay,
    seed: checkInteger(o.seed ?? 0, 'seed', 0),
  };
}

function protocol(predictions: Int32Array, labels: Int32Array, numClasses: number): ProtocolAccuracy {
  const confusion = confusionMatrix(predictions, labels, numClasses);
  return {
    top1: topKAccuracy(predictions, 1, labels, 1),
    perClass: perClassAccuracy(confusion),
    confusion,
    predictions,
  };
}

async function embedSet(model: Rils, set: LabelledImageSet, which: 'test' | 'train', o: EvaluateClassificationOptions) {
  if (set.images.length === 0) throw new RilsInputError(`Expected images in the ${which} set but it has none`);
  const started = performance.now();
  const embedded = await embedImages(model, set.images, {
    ...(o.chunkSize !== undefined ? { chunkSize: o.chunkSize } : {}),
    onError: o.onError ?? 'skip',
    ...(o.onProgress ? { onProgress: (p: EmbedProgress) => o.onProgress!(which, p) } : {}),
  });
  if (embedded.count === 0)
    throw new RilsInputError(
      `No image of the ${which} set could be decoded (${embedded.skipped[0]?.name}: ${embedded.skipped[0]?.reason})`,
    );
  const seconds = (performance.now() - started) / 1000;
  const summary: EvaluatedSet = {
    images: embedded.count,
    skipped: embedded.skipped,
    seconds,
    imagesPerSecond: embedded.count / seconds,
  };
  return {
    summary,
    features: embedded.embeddings,
    labels: Int32Array.from(embedded.kept, (i) => set.labels[i]!),
    kept: embedded.kept,
  };
}

/** Notes on classes the training features cannot teach, and on n larger than a class. */
function trainNotes(classNames: readonly string[], labels: Int32Array, shots: readonly number[]): string[] {
  const counts = classNames.map(() => 0);
  labels.forEach((l) => counts[l]!++);
  const missing = classNames.filter((_, c) => counts[c] === 0);
  const notes = missing.length
    ? [`no training image of ${missing.join(', ')}: k-NN, n-shot and the linear probe never predict them`]
    : [];
  const smallest = Math.min(...counts.filter((n) => n > 0));
  const over = shots.filter((n) => n > smallest);
  if (over.length)
    notes.push(`${over.join(', ')}-shot: some classes have only ${smallest} training images, so they use fewer`);
  return notes;
}

async function frozenProtocols(
  test: { features: Float32Array; labels: Int32Array },
  train: { features: Float32Array; labels: Int32Array },
  C: number,
  o: ReturnType<typeof checkOptions>,
): Promise<Pick<ClassificationResults, 'knn' | 'fewShot' | 'linearProbe'>> {
  const knn = { k: o.k, ...protocol(await frozenPredict('knn', train, test.features, { k: o.k }), test.labels, C) };
  const few = await fewShot(train, test.features, test.labels, {
    shots: o.shots,
    draws: o.shotDraws,
    seed: o.seed,
    numClasses: C,
    weightDecay: o.fewShotWeightDecay,
  });
  const probe = await sweptLinearProbe(train, test.features, {
    weightDecays: o.weightDecays,
    validationFraction: o.validationFraction,
    seed: o.seed,
  });
  return {
    knn,
    fewShot: few,
    linearProbe: { ...protocol(probe.predictions, test.labels, C), weightDecay: probe.weightDecay, sweep: probe.sweep },
  };
}

/**
 * Classifies the test images zero-shot from the class names and, with a training set of the same
 * classes, with k-NN, n-shot and linear probes on frozen pooled embeddings. Images are decoded and
 * encoded in chunks (memory holds the embeddings, not the images); unreadable ones are skipped and
 * listed. Use {@link openLabelledImages} to read a folder of class folders.
 *
 * @example
 * ```ts
 * const { test, train } = await openLabelledImages('flowers/test', { train: 'flowers/train' });
 * const r = await evaluateClassification(model, { test, train }, { templates: 'clip80' });
 * console.log(r.zeroShot.top1, r.knn?.top1, r.linearProbe?.top1);
 * ```
 */
export async function evaluateClassification(
  model: Rils,
  data: { test: LabelledImageSet; train?: LabelledImageSet },
  options: EvaluateClassificationOptions = {},
): Promise<ClassificationResults> {
  const test = checkImageSet(data?.test, 'test');
  if (data.train) checkImageSet(data.train, 'train');
  if (data.train && data.train.classNames.join('\n') !== test.classNames.join('\n')) {
    throw new RilsInputError(
      "Expected the training set to use the test set's class list (alignTrainSet lines them up)",
    );
  }
  const o = checkOptions(options);
  const C = test.classNames.length;
  const templates = [...resolveTemplates(options.templates ?? test.templates ?? 'slip7')];
  const classifier = await model.zeroShotClassifier(test.classNames, { templates });
  const t = await embedSet(model, test, 'test', options);
  const width = Math.min(5, C);
  const top = await topKByDot(t.features, classifier.weights, model.config.embedDim, width);
  const top1 = Int32Array.from({ length: t.labels.length }, (_, i) => top[i * width]!);
  const results: ClassificationResults = {
    classNames: [...test.classNames],
    templates,
    test: t.summary,
    testImages: t.kept,
    testLabels: t.labels,
    zeroShot: { ...protocol(top1, t.labels, C), top5: topKAccuracy(top, width, t.labels, 5), top },
    notes: [],
  };
  if (C <= 5) results.notes.push(`${C} classes: top-5 accuracy is 1 by construction`);
  if (!data.train) return results;
  if (data.train.images.length === 0) {
    results.notes.push("no training image of the test set's classes: k-NN, n-shot and the linear probe are left out");
    return results;
  }
  const tr = await embedSet(model, data.train, 'train', options);
  results.train = tr.summary;
  results.notes.push(...trainNotes(test.classNames, tr.labels, o.shots));
  return { ...results, ...(await frozenProtocols(t, tr, C, o)) };
}
