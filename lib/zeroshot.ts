/**
 * Zero-shot classification and image↔text retrieval (spec §4).
 * @module
 */
import { native } from './binding.js';
import { fromNative } from './errors.js';
import type { ImagesInput } from './inputs.js';
import type { Rils } from './rils.js';
import { checkInteger, checkTypedArray, invalid } from './validate.js';

/** The best classes of one image, best first. */
export interface TopK {
  /** Class names, best first. */
  labels: string[];
  /** Their class indices. */
  indices: number[];
  /** Their probabilities. */
  probabilities: number[];
}

/** What {@link ZeroShotClassifier.classify} returns. */
export interface Classification {
  /** Images classified. */
  batchSize: number;
  /** `[batchSize, numClasses]` softmax over classes. */
  probabilities: Float32Array;
  /** `[batchSize, numClasses]` exp(logit_scale) × cosine. */
  logits: Float32Array;
  /** Per image, the `topK` best classes. */
  top: TopK[];
}

/** Class embeddings built from names and prompt templates; made by {@link Rils.zeroShotClassifier}. */
export class ZeroShotClassifier {
  /** @internal */
  constructor(
    private readonly model: Rils,
    /** The class names, in index order. */
    readonly classNames: readonly string[],
    /** `[numClasses, embedDim]` unit-norm class embeddings. */
    readonly weights: Float32Array,
  ) {}

  /** Classifies images (tensors or files); `topK` defaults to min(5, numClasses). */
  async classify(images: ImagesInput, options: { topK?: number } = {}): Promise<Classification> {
    const C = this.classNames.length;
    const k = Math.min(checkInteger(options.topK ?? 5, 'topK', 1), C);
    const { logits, probabilities, batchSize } = await this.model.classLogits(images, this.weights, C);
    const top: TopK[] = [];
    for (let b = 0; b < batchSize; b++) {
      const row = probabilities.subarray(b * C, (b + 1) * C);
      const indices = [...row.keys()].sort((i, j) => row[j]! - row[i]! || i - j).slice(0, k);
      top.push({ indices, labels: indices.map((i) => this.classNames[i]!), probabilities: indices.map((i) => row[i]!) });
    }
    return { batchSize, logits, probabilities, top };
  }
}

/** Recall@k of image→text and text→image retrieval where pair i matches pair i. */
export interface RetrievalRecall {
  /** k → fraction of images whose caption ranks in the top k. */
  imageToText: Record<number, number>;
  /** k → fraction of captions whose image ranks in the top k. */
  textToImage: Record<number, number>;
}

/**
 * Image↔text retrieval recall@k over paired embeddings `[n, dim]` (e.g. from
 * {@link Rils.encodeImages} and {@link Rils.encodeTexts}).
 */
export async function retrievalRecall(
  imageEmbeddings: Float32Array,
  textEmbeddings: Float32Array,
  options: { count: number; ks?: number[] },
): Promise<RetrievalRecall> {
  const count = checkInteger(options?.count, 'count', 1);
  if (imageEmbeddings?.length % count !== 0) throw invalid(`a length divisible by count ${count}`, 'imageEmbeddings', imageEmbeddings);
  const dim = imageEmbeddings.length / count;
  checkTypedArray(imageEmbeddings, [Float32Array], count * dim, 'imageEmbeddings');
  checkTypedArray(textEmbeddings, [Float32Array], count * dim, `textEmbeddings ([${count}, ${dim}])`);
  const ks = options.ks ?? [1, 5, 10];
  ks.forEach((k) => checkInteger(k, 'ks', 1));
  try {
    const r = await native.retrievalRecall({ imageEmbeddings, textEmbeddings, count, dim, ks });
    return {
      imageToText: Object.fromEntries(ks.map((k, i) => [k, r.i2t[i]!])),
      textToImage: Object.fromEntries(ks.map((k, i) => [k, r.t2i[i]!])),
    };
  } catch (error) {
    throw fromNative(error);
  }
}
