// Rils.profile(): LibTorch's operator profiler around a model's calls, written as a Chrome trace.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import test from 'ava';

import { Rils, RilsInputError, RilsStateError } from '../lib/index.js';
import { randomBatch } from './helpers/batches.js';

/** The operator names of a trace's complete ('X') events. */
const operators = (file: string): string[] =>
  (JSON.parse(readFileSync(file, 'utf-8')) as { name: string; ph: string }[])
    .filter((e) => e.ph === 'X')
    .map((e) => e.name);
const isBackward = (name: string) => /Backward|CppNode/.test(name);

test('profile() writes a Chrome trace of the calls made inside it, and only those', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-profile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  const batch = randomBatch(model, 4);
  const stats = await model.profile(path.join(dir, 'step.json'), () => model.trainStep(batch));
  t.is(stats.step, 1, "fn's result comes back");
  const step = operators(path.join(dir, 'step.json'));
  t.true(
    step.some((n) => n.includes('layer_norm')),
    'forward operators',
  );
  t.true(step.some(isBackward), 'backward nodes');
  await model.trainStep(batch); // outside any profile
  await model.profile(path.join(dir, 'encode.json'), () => model.encodeImages({ images: batch.images, batchSize: 4 }));
  const encode = operators(path.join(dir, 'encode.json'));
  t.true(encode.some((n) => n.includes('layer_norm')));
  t.false(encode.some(isBackward), 'the step before the profile is not in it');
  model.dispose();
});

test('profile(): one at a time, fn throwing, a file that cannot be written, dispose inside', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-profile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  const batch = randomBatch(model, 2);
  const encode = () => model.encodeImages({ images: batch.images, batchSize: 2 });
  await model.profile(path.join(dir, 'outer.json'), async () => {
    await t.throwsAsync(model.profile(path.join(dir, 'inner.json'), encode), {
      instanceOf: RilsStateError,
      message: /already being profiled/,
    });
    await encode();
  });
  t.true(operators(path.join(dir, 'outer.json')).length > 0, 'the outer profile is unaffected');
  await t.throwsAsync(
    model.profile(path.join(dir, 'threw.json'), async () => {
      await encode();
      throw new Error('fn failed');
    }),
    { message: 'fn failed' },
  );
  t.true(
    operators(path.join(dir, 'threw.json')).some((n) => n.includes('layer_norm')),
    'written when fn throws',
  );
  await model.profile(path.join(dir, 'again.json'), encode); // and the profiler was stopped
  let called = false;
  await t.throwsAsync(
    model.profile(path.join(dir, 'no-such-dir', 'x.json'), async () => (called = true)),
    { instanceOf: RilsInputError, message: /Cannot write the profile/ },
  );
  t.false(called);
  await t.throwsAsync(model.profile('', encode), { instanceOf: RilsInputError });
  // Disposed while profiling: the trace is still written, on the model's thread, as it shuts down.
  const file = path.join(dir, 'disposed.json');
  await model.profile(file, async () => {
    await encode();
    model.dispose();
  });
  let names: string[] = [];
  for (let i = 0; i < 100 && names.length === 0; i++) {
    try {
      names = operators(file);
    } catch {
      await sleep(50); // not written yet
    }
  }
  t.true(names.some((n) => n.includes('layer_norm')));
});
