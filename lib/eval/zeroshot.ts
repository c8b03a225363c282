/**
 * Zero-shot classification (spec §4).
 * @module
 */
import type { ImagesInput } from '../model/inputs.js';
import { WordTokenizer } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { ClassLogits } from '../types.js';
import { checkInteger } from '../validate.js';

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

/**
 * What scores images against class embeddings: {@link Rils.classLogits}. The classifier needs only
 * this, so it does not depend on the model class (which makes classifiers).
 */
export interface ClassLogitsScorer {
  classLogits(images: ImagesInput, classWeights: Float32Array, numClasses: number): Promise<ClassLogits>;
}

/** Class embeddings built from names and prompt templates; made by {@link Rils.zeroShotClassifier}. */
export class ZeroShotClassifier {
  /** @internal */
  constructor(
    private readonly model: ClassLogitsScorer,
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
      top.push({
        indices,
        labels: indices.map((i) => this.classNames[i]!),
        probabilities: indices.map((i) => row[i]!),
      });
    }
    return { batchSize, logits, probabilities, top };
  }
}

/**
 * A warning when classes cannot be told apart: classes whose prompts give the same token rows under
 * every template get the same embedding, and so the same score (e.g. names made only of words a
 * {@link WordTokenizer} never saw, which all read as UNK). Undefined when every class is distinct.
 * @internal
 */
export function indistinctClasses(
  classNames: readonly string[],
  prompts: { tokens: Int32Array; templatesPerClass: number },
  tokenizer: Tokenizer,
): string | undefined {
  const width = prompts.tokens.length / classNames.length;
  const groups = new Map<string, string[]>();
  classNames.forEach((name, c) => {
    const key = prompts.tokens.subarray(c * width, (c + 1) * width).join(',');
    groups.set(key, [...(groups.get(key) ?? []), name]);
  });
  const same = [...groups.values()].filter((g) => g.length > 1);
  if (same.length === 0) return undefined;
  const unknown =
    tokenizer instanceof WordTokenizer ? [...new Set(classNames.flatMap((n) => tokenizer.unknownWords(n)))] : [];
  return (
    `Classes ${same.map((g) => g.map((n) => `'${n}'`).join(' = ')).join('; ')} tokenize identically and will get identical scores` +
    (unknown.length
      ? ` (words the tokenizer's vocabulary lacks, read as unknown: ${unknown.slice(0, 10).join(', ')})`
      : '')
  );
}
