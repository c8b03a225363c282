// The training loop: exact resume, checkpoint durability and integrity, data sources.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Rils, RilsInputError, RilsStateError, RilsWeightsError, WordTokenizer } from '../lib/index.js';
import { CaptionedImageSource, fit } from '../lib/index.js';
import type { BatchSource } from '../lib/index.js';
import { Random } from '../lib/data/augment.js';
import { randomBatch, sameWeights, snapshot } from './helpers/batches.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-train-'));

function source(seed: number, tokenizer: WordTokenizer): CaptionedImageSource {
  const r = new Random(7);
  const count = 40,
    size = 32;
  const images = Uint8Array.from({ length: count * size * size * 3 }, () => r.int(256));
  const labels = Int32Array.from({ length: count }, (_, i) => i % 5);
  const names = ['red', 'green', 'blue', 'cyan', 'pink'];
  return new CaptionedImageSource({
    images,
    labels,
    size,
    tokenizer,
    batchSize: 8,
    seed,
    cropScale: [0.5, 1],
    caption: (label, rng) => (rng.next() < 0.5 ? `a ${names[label]} thing` : `the colour ${names[label]}`),
  });
}

const tokenizer = WordTokenizer.fromTexts(['a red green blue cyan pink thing', 'the colour'], { contextLength: 8 });
const create = () =>
  Rils.create({
    preset: 'micro',
    vocabSize: tokenizer.vocabSize,
    contextLength: 8,
    seed: 4,
    tokenizer,
    lr: 3e-4,
    warmupSteps: 5,
    totalSteps: 20,
  });

test('resume is exact: 20 steps = 10 steps, stop, resume, 10 steps (bitwise on CPU)', async (t) => {
  const straight = await create();
  await fit(straight, source(1, tokenizer), { steps: 20, handleSigint: false });
  const file = path.join(tmp(), 'ckpt.safetensors');
  const first = await create();
  const r1 = await fit(first, source(1, tokenizer), {
    steps: 10,
    checkpoint: file,
    checkpointEvery: 4,
    handleSigint: false,
  });
  t.is(r1.stepsDone, 10);
  first.dispose();
  const second = await create(); // a fresh process would do the same
  const metrics = path.join(tmp(), 'metrics.jsonl');
  const r2 = await fit(second, source(1, tokenizer), { steps: 20, checkpoint: file, metrics, handleSigint: false });
  t.is(r2.resumedFrom, 10);
  t.is(second.step, 20);
  t.true(sameWeights(await snapshot(straight), await snapshot(second)), 'identical weights');
  const lines = readFileSync(metrics, 'utf-8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.is(lines.length, 10);
  t.like(lines[9], { step: 20 });
  t.true(lines[9].dataWaitFraction >= 0 && lines[9].dataWaitFraction < 1 && lines[9].imagesPerSecond > 0);
});

test('a metrics file that cannot be written is reported once and the run goes on, or saves and stops by option', async (t) => {
  const dir = tmp();
  const missing = path.join(dir, 'no-such-folder', 'metrics.jsonl');
  const warnings: string[] = [];
  const model = await create();
  const r = await fit(model, source(3, tokenizer), {
    steps: 4,
    metrics: missing,
    handleSigint: false,
    onWarning: (m) => warnings.push(m),
  });
  t.like(r, { stepsDone: 4, interrupted: false });
  t.is(warnings.length, 1, 'reported once, not at every step');
  t.is(
    warnings[0],
    `Cannot write metrics to ${missing} (ENOENT: no such file or directory); training goes on without metrics`,
  );
  t.regex(r.metricsError!, /ENOENT/);
  // A folder where the file should be (EISDIR): with onMetricsError 'stop', the run saves and stops.
  const file = path.join(dir, 'ckpt.safetensors');
  const stopping = await create();
  const s = await fit(stopping, source(3, tokenizer), {
    steps: 10,
    metrics: dir,
    checkpoint: file,
    onMetricsError: 'stop',
    handleSigint: false,
    onWarning: (m) => warnings.push(m),
  });
  t.like(s, { stepsDone: 1, interrupted: true });
  t.regex(warnings[1]!, /^Cannot write metrics to .* \(EISDIR: .*\); saving a checkpoint and stopping$/);
  const again = await create();
  await again.loadCheckpoint(file);
  t.is(again.step, 1, 'the step trained before the failure is saved');
  await t.throwsAsync(fit(again, source(3, tokenizer), { steps: 2, onMetricsError: 'never' as 'stop' }), {
    instanceOf: RilsInputError,
    message: /Expected 'continue' or 'stop' for onMetricsError/,
  });
});

test('after a resume, the metrics file holds each step once: lines past the checkpoint are dropped', async (t) => {
  const dir = tmp();
  const [file, older, metrics] = ['ckpt.safetensors', 'step4.safetensors', 'metrics.jsonl'].map((f) =>
    path.join(dir, f),
  ) as [string, string, string];
  const run = async (steps: number) =>
    fit(await create(), source(1, tokenizer), { steps, checkpoint: file, metrics, handleSigint: false });
  await run(4);
  copyFileSync(file, older);
  const firstLines = readFileSync(metrics, 'utf-8');
  await run(6); // steps 5 and 6 are logged, then the job dies and only the step-4 checkpoint is left
  copyFileSync(older, file);
  const again = await run(8);
  t.is(again.resumedFrom, 4);
  const text = readFileSync(metrics, 'utf-8');
  t.deepEqual(
    text
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  t.true(text.startsWith(firstLines), 'the lines up to the checkpoint are kept as they were');
  t.deepEqual(
    readdirSync(dir).sort(),
    ['ckpt.safetensors', 'metrics.jsonl', 'step4.safetensors'],
    'no temporary file left',
  );
});

test('a prefetched batch that fails while a step runs rejects fit(); it does not crash the process', async (t) => {
  const model = await create();
  const good = source(5, tokenizer);
  let drawn = 0;
  const failing: BatchSource = {
    next: () => (++drawn === 2 ? Promise.reject(new RilsInputError('Cannot decode bad.png')) : good.next()),
    restore: (position) => good.restore(position),
  };
  // Without a listener, Node ends the process on an unhandled rejection (what the CLI did).
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await t.throwsAsync(fit(model, failing, { steps: 5, handleSigint: false }), {
      instanceOf: RilsInputError,
      message: 'Cannot decode bad.png',
    });
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  t.deepEqual(unhandled, [], 'no rejection was left unhandled while the step ran');
  t.is(model.step, 1, 'the step before the failing batch was trained');
});

test('stopping with an AbortSignal checkpoints and reports an interrupted run', async (t) => {
  const file = path.join(tmp(), 'ckpt.safetensors');
  const model = await create();
  const controller = new AbortController();
  const r = await fit(model, source(2, tokenizer), {
    steps: 50,
    checkpoint: file,
    handleSigint: false,
    signal: controller.signal,
    onStep: (p) => p.step === 3 && controller.abort(),
  });
  t.true(r.interrupted);
  t.is(r.stepsDone, 3);
  const again = await create();
  await again.loadCheckpoint(file);
  t.is(again.step, 3);
});

test('a checkpoint killed mid-write never leaves an unloadable latest checkpoint', async (t) => {
  const dir = tmp();
  const file = path.join(dir, 'ckpt.safetensors');
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  const r = new Random(99);
  for (let round = 0; round < 6; round++) {
    const child = spawn(process.execPath, ['--import=tsx', path.join(here, 'helpers/checkpoint-writer.ts'), file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 50 + r.int(400)));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const extra = await model.loadCheckpoint(file); // verified against its checksum
    t.true(
      extra === null ||
        typeof (extra as { data: unknown }).data === 'number' ||
        (extra as { data: unknown }).data === null,
    );
  }
});

test('a corrupt or foreign checkpoint is refused and the model is unchanged', async (t) => {
  const dir = tmp();
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  await model.trainStep(randomBatch(model, 4));
  const file = path.join(dir, 'c.safetensors');
  await model.saveCheckpoint(file, { data: 1 });
  const bytes = readFileSync(file);
  bytes[bytes.length - 1000] = bytes[bytes.length - 1000]! ^ 0x40;
  const bad = path.join(dir, 'bad.safetensors');
  writeFileSync(bad, bytes);
  const before = await snapshot(model);
  await t.throwsAsync(model.loadCheckpoint(bad), { instanceOf: RilsWeightsError, message: /checksum/ });
  const weights = path.join(dir, 'w.safetensors');
  await model.saveWeights(weights);
  await t.throwsAsync(model.loadCheckpoint(weights), {
    instanceOf: RilsWeightsError,
    message: /not a rils checkpoint/,
  });
  const other = await Rils.create({ preset: 'micro', vocabSize: 1000, seed: 0 });
  await t.throwsAsync(other.loadCheckpoint(file), { instanceOf: RilsWeightsError, message: /shape/ });
  t.true(sameWeights(before, await snapshot(model)));
  t.is(model.step, 1);
});

test('no checkpoint in the middle of gradient accumulation', async (t) => {
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0, accumulationSteps: 2 });
  await model.trainStep(randomBatch(model, 4));
  await t.throwsAsync(model.saveCheckpoint(path.join(tmp(), 'x.safetensors')), {
    instanceOf: RilsStateError,
    message: /between optimizer steps/,
  });
});
