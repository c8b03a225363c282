/**
 * Frozen-feature protocols of spec §4 on precomputed embeddings: the linear probe with its
 * regularisation chosen on a validation split of the training features (as CLIP's paper does), and
 * n-shot classification (nearest class mean and linear probe) averaged over seeded draws.
 * @internal
 * @module
 */
import { stratifiedSplit } from '../data/labelled.js';
import { accuracy, knnClassify, linearProbeClassify, prototypeClassify, sampleShots } from './protocols.js';
import type { LabelledFeatures } from './protocols.js';

/** The frozen-feature classifiers. */
export type FrozenMethod = 'knn' | 'prototype' | 'linear';

/** Rows `keep` of features. */
export function selectFeatures(data: LabelledFeatures, keep: readonly number[]): LabelledFeatures {
  const dim = data.features.length / data.labels.length;
  const features = new Float32Array(keep.length * dim);
  keep.forEach((i, k) => features.set(data.features.subarray(i * dim, (i + 1) * dim), k * dim));
  return { features, labels: Int32Array.from(keep, (i) => data.labels[i]!) };
}

/**
 * Predictions of `method` for `query`, learning only the classes the training features have: a
 * class without examples must not get a prototype of zeros (cosine 0 beats every negative one).
 */
export async function frozenPredict(
  method: FrozenMethod,
  train: LabelledFeatures,
  query: Float32Array,
  options: { k?: number; weightDecay?: number } = {},
): Promise<Int32Array> {
  const present = [...new Set(train.labels)].sort((a, b) => a - b);
  const local = new Map(present.map((c, i) => [c, i]));
  const compact = { features: train.features, labels: Int32Array.from(train.labels, (l) => local.get(l)!) };
  const numClasses = present.length;
  const predicted =
    method === 'knn'
      ? await knnClassify(compact, query, { numClasses, k: options.k ?? 20 })
      : method === 'prototype'
        ? await prototypeClassify(compact, query, { numClasses })
        : await linearProbeClassify(compact, query, {
            numClasses,
            ...(options.weightDecay === undefined ? {} : { weightDecay: options.weightDecay }),
          });
  return Int32Array.from(predicted, (p) => present[p]!);
}

/** One point of the regularisation sweep. */
export interface SweepPoint {
  /** The L2 penalty on the weights. */
  weightDecay: number;
  /** Accuracy on the validation split of the training features. */
  validationAccuracy: number;
}

/** A linear probe fitted on all training features with the penalty the sweep chose. */
export interface LinearProbeFit {
  /** Labels of the query features. */
  predictions: Int32Array;
  /** The chosen penalty. */
  weightDecay: number;
  /** Every penalty tried (empty when there was one candidate, or too few features to hold some out). */
  sweep: SweepPoint[];
}

/**
 * Tries each penalty on a seeded stratified split (`validationFraction` held out), keeps the best
 * (the strongest among equals), and refits on all training features with it.
 */
export async function sweptLinearProbe(
  train: LabelledFeatures,
  query: Float32Array,
  o: { weightDecays: readonly number[]; validationFraction: number; seed: number },
): Promise<LinearProbeFit> {
  const { held, rest } = stratifiedSplit(train.labels, o.validationFraction, o.seed);
  const sweep: SweepPoint[] = [];
  let weightDecay = o.weightDecays[Math.floor(o.weightDecays.length / 2)]!;
  if (o.weightDecays.length > 1 && rest.length > 0 && held.length > 0) {
    const fit = selectFeatures(train, rest),
      validation = selectFeatures(train, held);
    for (const wd of o.weightDecays) {
      const predicted = await frozenPredict('linear', fit, validation.features, { weightDecay: wd });
      sweep.push({ weightDecay: wd, validationAccuracy: accuracy(predicted, validation.labels) });
    }
    const best = Math.max(...sweep.map((p) => p.validationAccuracy));
    weightDecay = Math.max(...sweep.filter((p) => p.validationAccuracy === best).map((p) => p.weightDecay));
  }
  return { predictions: await frozenPredict('linear', train, query, { weightDecay }), weightDecay, sweep };
}

/** n-shot accuracy of one classifier: the mean over the draws, and each draw's. */
export interface ShotAccuracy {
  /** Mean over the seeded draws. */
  mean: number;
  /** Per draw (seed, seed + 1, …). */
  perSeed: number[];
}

/** n-shot results for one n. */
export interface FewShotResult {
  /** Training examples per class. */
  shots: number;
  /** Nearest class mean of the n examples (cosine). */
  nearestMean: ShotAccuracy;
  /** Logistic regression on the n examples. */
  linearProbe: ShotAccuracy;
}

/** n-shot accuracy for each n in `shots`, each averaged over `draws` seeded draws of the examples. */
export async function fewShot(
  train: LabelledFeatures,
  query: Float32Array,
  labels: Int32Array,
  o: { shots: readonly number[]; draws: number; seed: number; numClasses: number; weightDecay: number },
): Promise<FewShotResult[]> {
  const results: FewShotResult[] = [];
  for (const n of o.shots) {
    const mean: number[] = [],
      linear: number[] = [];
    for (let d = 0; d < o.draws; d++) {
      const picked = sampleShots(train, n, o.numClasses, o.seed + d);
      mean.push(accuracy(await frozenPredict('prototype', picked, query), labels));
      linear.push(accuracy(await frozenPredict('linear', picked, query, { weightDecay: o.weightDecay }), labels));
    }
    const avg = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
    results.push({
      shots: n,
      nearestMean: { mean: avg(mean), perSeed: mean },
      linearProbe: { mean: avg(linear), perSeed: linear },
    });
  }
  return results;
}
