// Exercises every native entry point, including the failure paths, then exits normally so that
// LeakSanitizer can report (ava kills its workers, so leaks are only visible from a plain run).
// Run by scripts/asan.sh against the sanitized addon; also runs (fast) against the normal build.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ByteTokenizer, Rils, RilsError, retrievalRecall, knnClassify, linearProbeClassify } from '../../lib/index.js';
import { randomBatch } from '../helpers/batches.js';

async function expectError(what: string, call: () => Promise<unknown>): Promise<void> {
  try {
    await call();
  } catch (error) {
    if (error instanceof RilsError) return;
    throw error;
  }
  throw new Error(`${what}: expected a RilsError`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-leak-'));
  const tokenizer = new ByteTokenizer({ contextLength: 16 });
  const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, contextLength: 16, seed: 0 });
  const batch = randomBatch(model, 8);
  for (let i = 0; i < 5; i++) await model.trainStep(batch);
  await model.evaluateLoss(batch);
  const enc = await model.encodeImages(
    { images: batch.images, batchSize: 8 },
    { patchTokens: true, clsToken: true, patchEmbeddings: true },
  );
  const txt = await model.encodeTexts(['a red square', 'a blue circle'], { tokenizer });
  const classifier = await model.zeroShotClassifier(['square', 'circle'], { tokenizer, templates: ['a {}.'] });
  await classifier.classify({ images: batch.images, batchSize: 8 }, { topK: 2 });
  await model.patchSemantics({ images: batch.images, batchSize: 8 }, ['square', 'circle'], { tokenizer });
  await retrievalRecall(enc.embeddings, enc.embeddings, { count: 8, ks: [1, 5] });
  const labelled = { features: enc.embeddings, labels: Int32Array.from({ length: 8 }, (_, i) => i % 2) };
  await knnClassify(labelled, enc.embeddings, { numClasses: 2, k: 3 });
  await linearProbeClassify(labelled, enc.embeddings, { numClasses: 2 });
  await model.saveWeights(path.join(dir, 'w.safetensors'));
  await model.saveCheckpoint(path.join(dir, 'c.ckpt'));
  await model.loadCheckpoint(path.join(dir, 'c.ckpt'));
  await model.loadWeights(path.join(dir, 'w.safetensors'));
  await model.profile(path.join(dir, 'trace.json'), () => model.trainStep(batch));
  if (txt.embeddings.length === 0) throw new Error('no text embeddings');

  // Failure paths: each must throw a RilsError and free what it allocated.
  await expectError('short images', () => model.trainStep({ ...batch, images: batch.images.subarray(1) }));
  await expectError('token out of range', () => model.trainStep({ ...batch, tokens: batch.tokens.map(() => 10_000) }));
  await expectError('NaN image', () => model.encodeImages({ images: batch.images.map(() => NaN), batchSize: 8 }));
  writeFileSync(path.join(dir, 'bad.safetensors'), Buffer.from('not a file'));
  await expectError('corrupt weights', () => model.loadWeights(path.join(dir, 'bad.safetensors')));
  await expectError('bad config', () => Rils.create({ preset: 'micro', embedDim: -1 }));
  await expectError('unwritable profile', () => model.profile(path.join(dir, 'no', 'x.json'), async () => 0));

  // Queued work rejected by dispose, then use after dispose.
  const queued = [model.trainStep(batch), model.encodeImages({ images: batch.images, batchSize: 8 })];
  model.dispose();
  await Promise.allSettled(queued);
  await expectError('after dispose', () => model.trainStep(batch));
  rmSync(dir, { recursive: true, force: true });
  console.log('leak probe: done');
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
