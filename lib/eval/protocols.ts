/**
 * Evaluation on frozen features (spec §4): k-nearest neighbours, few-shot nearest prototype, linear
 * probe, and image↔text retrieval recall.
 * @module
 */
import { native } from '../addon/binding.js';
import { RilsInputError, fromNative } from '../errors.js';
import { Random } from '../data/augment.js';
import { recallAt } from './scores.js';
import { checkInteger, checkTypedArray, invalid } from '../validate.js';

/** Features `[count, dim]` with their labels. */
export interface LabelledFeatures {
  /** `[count, dim]` row-major. */
  features: Float32Array;
  /** `[count]` class indices. */
  labels: Int32Array;
}

/** The linear probe's defaults: its L2 penalty and its L-BFGS iterations (full batch). */
export const LINEAR_PROBE = { weightDecay: 1e-4, iterations: 500 } as const;

async function classify(
  train: LabelledFeatures,
  query: Float32Array,
  numClasses: number,
  method: 'knn' | 'prototype' | 'linear',
  k = 1,
  weightDecay = 0,
  iterations = 0,
): Promise<Int32Array> {
  const trainCount = train.labels?.length;
  if (!trainCount) throw new RilsInputError('Expected at least one labelled training feature');
  checkTypedArray(train.labels, [Int32Array], trainCount, 'labels');
  const dim = train.features.length / trainCount;
  if (!Number.isInteger(dim) || dim < 1)
    throw new RilsInputError(`Expected features of [${trainCount}, dim] but received ${train.features.length} values`);
  checkTypedArray(train.features, [Float32Array], trainCount * dim, 'features');
  const queryCount = query.length / dim;
  if (!Number.isInteger(queryCount) || queryCount < 1)
    throw new RilsInputError(`Expected query features of [n, ${dim}]`);
  checkTypedArray(query, [Float32Array], queryCount * dim, 'query');
  try {
    const out = await native.classifyFeatures({
      train: train.features,
      trainLabels: train.labels,
      query,
      trainCount,
      queryCount,
      dim,
      numClasses: checkInteger(numClasses, 'numClasses', 1),
      method,
      k,
      weightDecay,
      iterations,
    });
    return new Int32Array(out);
  } catch (error) {
    throw fromNative(error);
  }
}

/** k-NN labels of `query` (cosine similarity, similarity-weighted vote). Default k = 20. */
export function knnClassify(
  train: LabelledFeatures,
  query: Float32Array,
  options: { numClasses: number; k?: number },
): Promise<Int32Array> {
  return classify(train, query, options.numClasses, 'knn', checkInteger(options.k ?? 20, 'k', 1));
}

/** Labels of `query` by the nearest class mean of the (normalised) training features. */
export function prototypeClassify(
  train: LabelledFeatures,
  query: Float32Array,
  options: { numClasses: number },
): Promise<Int32Array> {
  return classify(train, query, options.numClasses, 'prototype');
}

/** `shots` examples per class, drawn with a seeded generator (the few-shot protocol). */
export function sampleShots(data: LabelledFeatures, shots: number, numClasses: number, seed = 0): LabelledFeatures {
  const dim = data.features.length / data.labels.length;
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  data.labels.forEach((l, i) => byClass[l]?.push(i));
  const rng = new Random(seed);
  const picks = byClass.flatMap((idx) => rng.shuffle([...idx]).slice(0, shots));
  const features = new Float32Array(picks.length * dim);
  picks.forEach((i, k) => features.set(data.features.subarray(i * dim, (i + 1) * dim), k * dim));
  return { features, labels: Int32Array.from(picks, (i) => data.labels[i]!) };
}

/**
 * Linear probe: multinomial logistic regression on the standardised frozen features (full-batch
 * L-BFGS, `iterations` of them, default 500, L2 penalty `weightDecay`, default 1e-4), then labels of `query`.
 */
export function linearProbeClassify(
  train: LabelledFeatures,
  query: Float32Array,
  options: { numClasses: number; weightDecay?: number; iterations?: number },
): Promise<Int32Array> {
  const wd = options.weightDecay ?? LINEAR_PROBE.weightDecay;
  if (!(typeof wd === 'number' && wd >= 0))
    throw new RilsInputError(`Expected a weightDecay >= 0 but received ${String(wd)}`);
  const iterations = checkInteger(options.iterations ?? LINEAR_PROBE.iterations, 'iterations', 1);
  return classify(train, query, options.numClasses, 'linear', 1, wd, iterations);
}

/** Fraction of predictions equal to the labels. */
export function accuracy(predicted: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (predicted.length !== labels.length || labels.length === 0)
    throw new RilsInputError('Expected as many predictions as labels');
  let ok = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) ok++;
  return ok / labels.length;
}

/** Recall@k of image→text and text→image retrieval where pair i matches pair i. */
export interface RetrievalRecall {
  /** k → fraction of images whose caption ranks in the top k. */
  imageToText: Record<number, number>;
  /** k → fraction of captions whose image ranks in the top k. */
  textToImage: Record<number, number>;
}

/**
 * Where each true match ranks (0 = first) in cosine retrieval between image embeddings `[ni, dim]`
 * and text embeddings `[nt, dim]`, text t belonging to image `textImage[t]` (several texts may share
 * an image, as in COCO). Scored natively a block of rows at a time: never the ni × nt matrix.
 * @internal
 */
export async function retrievalRanks(
  imageEmbeddings: Float32Array,
  textEmbeddings: Float32Array,
  textImage: Int32Array,
  dim: number,
  options: { blockElements?: number } = {},
): Promise<{ imageToText: Int32Array; textToImage: Int32Array }> {
  const images = imageEmbeddings.length / dim,
    texts = textImage.length;
  checkTypedArray(imageEmbeddings, [Float32Array], images * dim, `imageEmbeddings ([n, ${dim}])`);
  checkTypedArray(textEmbeddings, [Float32Array], texts * dim, `textEmbeddings ([${texts}, ${dim}])`);
  try {
    const blockElements = checkInteger(options.blockElements ?? 2 ** 24, 'blockElements', 1); // 64 MB of scores at most
    const r = await native.retrievalRanks({
      imageEmbeddings,
      textEmbeddings,
      textImage,
      images,
      texts,
      dim,
      blockElements,
    });
    return { imageToText: new Int32Array(r.imageToText), textToImage: new Int32Array(r.textToImage) };
  } catch (error) {
    throw fromNative(error);
  }
}

/**
 * Per query row of `queries` `[nq, dim]`, the indices of the `k` rows of `keys` with the highest dot
 * product, best first, ties to the lower index: `[nq, min(k, nk)]` (zero-shot top-k over class
 * embeddings). Scored natively a block of rows at a time.
 * @internal
 */
export async function topKByDot(
  queries: Float32Array,
  keys: Float32Array,
  dim: number,
  k: number,
): Promise<Int32Array> {
  const queryCount = queries.length / dim,
    keyCount = keys.length / dim;
  checkTypedArray(queries, [Float32Array], queryCount * dim, `queries ([n, ${dim}])`);
  checkTypedArray(keys, [Float32Array], keyCount * dim, `keys ([n, ${dim}])`);
  try {
    const top = await native.topKByDot({
      queries,
      keys,
      queryCount,
      keyCount,
      dim,
      k: checkInteger(k, 'k', 1),
      blockElements: 2 ** 24,
    });
    return new Int32Array(top);
  } catch (error) {
    throw fromNative(error);
  }
}

/**
 * Image↔text retrieval recall@k over paired embeddings `[n, dim]` (e.g. from
 * {@link Rils.encodeImages} and {@link Rils.encodeTexts}), pair i matching pair i.
 */
export async function retrievalRecall(
  imageEmbeddings: Float32Array,
  textEmbeddings: Float32Array,
  options: { count: number; ks?: number[] },
): Promise<RetrievalRecall> {
  const count = checkInteger(options?.count, 'count', 1);
  if (imageEmbeddings?.length % count !== 0)
    throw invalid(`a length divisible by count ${count}`, 'imageEmbeddings', imageEmbeddings);
  const dim = imageEmbeddings.length / count;
  checkTypedArray(imageEmbeddings, [Float32Array], count * dim, 'imageEmbeddings');
  checkTypedArray(textEmbeddings, [Float32Array], count * dim, `textEmbeddings ([${count}, ${dim}])`);
  const ks = options.ks ?? [1, 5, 10];
  ks.forEach((k) => checkInteger(k, 'ks', 1));
  const ranks = await retrievalRanks(
    imageEmbeddings,
    textEmbeddings,
    Int32Array.from({ length: count }, (_, i) => i),
    dim,
  );
  return { imageToText: recallAt(ranks.imageToText, ks), textToImage: recallAt(ranks.textToImage, ks) };
}
