// Calls on one model run one at a time, in submission order, off the JS thread.
import test from 'ava';

import { Rils, RilsStateError } from '../lib/index.js';
import { randomBatch } from './helpers/batches.js';

test('concurrent calls on one model finish in submission order', async (t) => {
  const model = await Rils.create({ preset: 'micro', vocabSize: 1000, seed: 0 });
  const batch = randomBatch(model, 4);
  const order: number[] = [];
  const calls = Array.from({ length: 12 }, (_, i) =>
    (i % 3 === 2 ? model.evaluateLoss(batch) : model.trainStep(batch)).then((s) => {
      order.push(i);
      return s.step;
    }),
  );
  const steps = await Promise.all(calls);
  t.deepEqual(order, [...Array(12).keys()]);
  // evaluateLoss reports the steps done before it; trainStep the steps after its update.
  t.deepEqual(steps, [1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8]);
  model.dispose();
});

test('the event loop keeps running during a step', async (t) => {
  const model = await Rils.create({ preset: 'vit_ti16', vocabSize: 1000, seed: 0 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  await model.trainStep(randomBatch(model, 2));
  clearInterval(timer);
  t.true(ticks > 3, `${ticks} timer ticks during the step`);
  model.dispose();
});

test('dispose() rejects queued calls cleanly; the running one finishes', async (t) => {
  const model = await Rils.create({ preset: 'micro', vocabSize: 1000, seed: 0 });
  const batch = randomBatch(model, 4);
  const first = model.trainStep(batch);
  const queued = [model.trainStep(batch), model.evaluateLoss(batch)];
  model.dispose();
  t.true(Number.isFinite((await first).loss));
  for (const q of queued) await t.throwsAsync(q, { instanceOf: RilsStateError, message: /disposed/ });
});

test('several models in one process work side by side', async (t) => {
  const models = await Promise.all([1, 2, 3].map((seed) => Rils.create({ preset: 'micro', vocabSize: 1000, seed })));
  const stats = await Promise.all(models.map((m) => m.trainStep(randomBatch(m, 4))));
  t.true(stats.every((s) => s.updated && Number.isFinite(s.loss)));
  t.is(new Set(stats.map((s) => s.loss)).size, 3);
  models.forEach((m) => m.dispose());
});

test('300 concurrent mixed calls finish in submission order, with the results of a sequential run', async (t) => {
  const make = () => Rils.create({ preset: 'micro', vocabSize: 1000, contextLength: 16, seed: 3 });
  const [concurrent, sequential] = await Promise.all([make(), make()]);
  const batch = randomBatch(concurrent, 4);
  const images = { images: batch.images, batchSize: 4 };
  const rows = { tokens: batch.tokens, batchSize: 4 };
  const classWeights = new Float32Array(4 * concurrent.config.embedDim).map((_, i) => Math.sin(i));
  // Each call reduced to numbers that depend on every step before it.
  const calls: ((m: Rils) => Promise<number[]>)[] = [
    async (m) => {
      const s = await m.trainStep(batch);
      return [s.loss, s.step];
    },
    async (m) => {
      const s = await m.evaluateLoss(batch);
      return [s.loss, s.step];
    },
    async (m) => [...(await m.encodeImages(images)).embeddings.subarray(0, 4)],
    async (m) => [...(await m.encodeTexts(rows)).embeddings.subarray(0, 4)],
    async (m) => [...(await m.classLogits(images, classWeights, 4)).logits.subarray(0, 4)],
  ];
  const plan = Array.from({ length: 300 }, (_, i) => (i * 7 + (i >> 3)) % calls.length);
  const finished: number[] = [];
  const results = await Promise.all(
    plan.map((c, i) =>
      calls[c]!(concurrent).then((r) => {
        finished.push(i);
        return r;
      }),
    ),
  );
  const expected: number[][] = [];
  for (const c of plan) expected.push(await calls[c]!(sequential));
  t.deepEqual(finished, [...plan.keys()]);
  t.deepEqual(results, expected);
  concurrent.dispose();
  sequential.dispose();
});
