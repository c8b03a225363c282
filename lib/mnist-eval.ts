/**
 * The MNIST evaluation shared by the demo and `rils eval`: zero-shot with unseen templates,
 * frozen-feature protocols, and patch-semantics maps of a few test digits.
 * @module
 */
import sharp from 'sharp';

import { DIGIT_NAMES, MNIST_EVAL_TEMPLATES } from './data/mnist.js';
import type { LabelledImages } from './data/mnist.js';
import { accuracy, knnClassify, linearProbeClassify, prototypeClassify, sampleShots } from './evaluate.js';
import { renderHeatmap } from './images.js';
import type { ReportImage } from './report.js';
import type { Rils } from './rils.js';

/** Zero-shot accuracy (fractions 0..1). */
export interface ZeroShotAccuracy {
  /** The true class ranks first. */
  top1: number;
  /** The true class is among the five best. */
  top5: number;
}

/** Frozen-feature accuracies (fractions 0..1). */
export interface FrozenFeatureAccuracy {
  /** k-NN with k = 20 over the training features. */
  knn: number;
  /** Nearest class mean of 10 training examples per class. */
  fewShot10: number;
  /** Logistic regression on all training features. */
  linearProbe: number;
}

/** Zero-shot top-1 and top-5 accuracy on `test` with {@link MNIST_EVAL_TEMPLATES}. */
export async function mnistZeroShot(model: Rils, test: LabelledImages): Promise<ZeroShotAccuracy> {
  const classifier = await model.zeroShotClassifier(DIGIT_NAMES, { templates: MNIST_EVAL_TEMPLATES });
  const { top } = await classifier.classify({ images: test.images, batchSize: test.count }, { topK: 5 });
  return {
    top1: accuracy(top.map((t) => t.indices[0]!), test.labels),
    top5: top.filter((t, i) => t.indices.includes(test.labels[i]!)).length / test.count,
  };
}

/** k-NN (k = 20), 10-shot nearest prototype and linear-probe accuracy on frozen pooled features. */
export async function mnistFrozenFeatures(
  model: Rils, train: LabelledImages, test: LabelledImages,
): Promise<FrozenFeatureAccuracy> {
  const embed = async (d: LabelledImages) => (await model.encodeImages({ images: d.images, batchSize: d.count })).embeddings;
  const trainFeatures = { features: await embed(train), labels: train.labels };
  const testFeatures = await embed(test);
  const options = { numClasses: 10 };
  return {
    knn: accuracy(await knnClassify(trainFeatures, testFeatures, { ...options, k: 20 }), test.labels),
    fewShot10: accuracy(await prototypeClassify(sampleShots(trainFeatures, 10, 10), testFeatures, options), test.labels),
    linearProbe: accuracy(await linearProbeClassify(trainFeatures, testFeatures, options), test.labels),
  };
}

/** Heat maps of each digit's own class over its patches, for the test digits at `indices`. */
export async function mnistPatchMaps(model: Rils, test: LabelledImages, indices: readonly number[]): Promise<ReportImage[]> {
  const px = test.size * test.size * 3;
  const grid = model.config.imageSize / model.config.patchSize;
  const maps: ReportImage[] = [];
  for (const i of indices) {
    const image = test.images.subarray(i * px, (i + 1) * px);
    const sem = await model.patchSemantics({ images: image, batchSize: 1 }, DIGIT_NAMES, { templates: MNIST_EVAL_TEMPLATES });
    const label = test.labels[i]!;
    const map = Float32Array.from({ length: grid * grid }, (_, p) => sem.probabilities[p * 10 + label]!);
    const png = await sharp(Buffer.from(image), { raw: { width: test.size, height: test.size, channels: 3 } }).png().toBuffer();
    maps.push({ caption: `test digit ${i}: ${DIGIT_NAMES[label]}`, png: await renderHeatmap(png, map, grid, { size: 128 }) });
  }
  return maps;
}
