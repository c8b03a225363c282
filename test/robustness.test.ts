// Hostile and careless use of the native boundary: worker threads torn down mid-call, input
// buffers detached mid-step, huge prompt sets, checkpoints and weight files that lie, options
// that overflow. Each case crashed, hung, blew up memory or failed unclearly before.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import {
  ByteTokenizer,
  Rils,
  RilsInputError,
  RilsWeightsError,
  WordTokenizer,
  parseSafetensors,
  setNumThreads,
  writeSafetensors,
} from '../lib/index.js';
import { writeCheckpoint } from '../lib/train/checkpoint.js';
import type { SafetensorsDtype } from '../lib/io/safetensors.js';
import { randomBatch, sameWeights, snapshot } from './helpers/batches.js';

const here = (file: string) => JSON.stringify(new URL(file, import.meta.url).href);
const micro = (o = {}) => Rils.create({ preset: 'micro', vocabSize: 300, seed: 0, ...o });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-robust-'));

/** Runs an ES module script in a fresh Node process (with tsx); returns its status and output. */
function runScript(script: string, args: string[] = [], node: string[] = []) {
  return spawnSync(process.execPath, [...node, '--import', 'tsx', '--input-type=module', '-e', script, ...args], {
    encoding: 'utf8',
    timeout: 240_000,
  });
}

test('terminating a worker thread with a trainStep in flight: the process lives and the model is freed', (t) => {
  const script = `
    import { Worker } from 'node:worker_threads';
    import { runtimeInfo } from ${here('../lib/index.js')};
    for (let i = 0; i < 8; i++) {
      const worker = new Worker(new URL(${here('./helpers/step-worker.mjs')}), { execArgv: [] });
      await new Promise((resolve) => worker.once('message', resolve));
      await new Promise((resolve) => setTimeout(resolve, 5 + 37 * i));
      await worker.terminate();
    }
    for (let waited = 0; runtimeInfo().liveModels > 0 && waited < 20000; waited += 100) await new Promise((r) => setTimeout(r, 100));
    console.log(JSON.stringify({ live: runtimeInfo().liveModels }));`;
  const r = runScript(script);
  t.is(r.signal, null, r.stderr.slice(-500));
  t.is(r.status, 0, r.stderr.slice(-500));
  t.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), { live: 0 }, 'every worker model was freed');
});

test('detaching the image buffer while a step runs: the step trains on the images as they were', (t) => {
  const script = `
    import { Rils } from ${here('../lib/index.js')};
    import { randomBatch } from ${here('./helpers/batches.js')};
    const make = () => Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
    const [a, b] = [await make(), await make()];
    const losses = [[], []];
    const busy = randomBatch(a, 512, 99);  // queued first, so the step reads its images later
    for (let i = 0; i < 6; i++) {
      const batch = randomBatch(a, 64, i);
      losses[0].push((await a.trainStep({ ...batch, images: batch.images.slice() })).loss);
      void b.encodeImages({ images: busy.images, batchSize: 512 });
      const step = b.trainStep(batch);
      structuredClone(batch.images.buffer, { transfer: [batch.images.buffer] });  // detached, then freed
      globalThis.gc();
      const junk = Array.from({ length: 20 }, () => new Float32Array(batch.images.length).fill(NaN));
      losses[1].push((await step).loss + junk.length * 0);
    }
    console.log(JSON.stringify(losses));`;
  const r = runScript(script, [], ['--expose-gc']);
  t.is(r.signal, null, r.stderr.slice(-500));
  const [reference, detached] = JSON.parse(r.stdout.trim().split('\n').pop()!) as number[][];
  t.true(detached!.every(Number.isFinite), `losses ${detached!.join(', ')}`);
  t.deepEqual(detached, reference, 'the same losses as steps on untouched copies');
});

test('inputs in a SharedArrayBuffer are read in place and train like any other', async (t) => {
  const [a, b] = [await micro(), await micro()];
  const batch = randomBatch(a, 8);
  const shared = new Float32Array(new SharedArrayBuffer(batch.images.byteLength));
  shared.set(batch.images);
  const tokens = new Int32Array(new SharedArrayBuffer(batch.tokens.byteLength));
  tokens.set(batch.tokens);
  const s1 = await a.trainStep(batch),
    s2 = await b.trainStep({ images: shared, tokens, batchSize: 8 });
  t.is(s2.loss, s1.loss);
  const e = await b.encodeImages({ images: shared, batchSize: 8 });
  t.is(e.embeddings.length, 8 * b.config.embedDim);
  a.dispose();
  b.dispose();
});

test('zero-shot class embeddings for 400 classes × 80 templates: memory independent of the prompt count', (t) => {
  const script = `
    import { readFileSync } from 'node:fs';
    import { ByteTokenizer, CLIP80_TEMPLATES, Rils } from ${here('../lib/index.js')};
    const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    const tokenizer = new ByteTokenizer({ contextLength: 16 });
    const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, seed: 0, tokenizer });
    await model.zeroShotClassifier(['a', 'b'], { templates: CLIP80_TEMPLATES });  // warm-up
    const before = hwm();
    const names = Array.from({ length: 400 }, (_, i) => 'class ' + i);
    const c = await model.zeroShotClassifier(names, { templates: CLIP80_TEMPLATES });
    console.log(JSON.stringify({ grew: hwm() - before, rows: c.weights.length / model.config.embedDim }));`;
  const r = runScript(script);
  t.is(r.status, 0, r.stderr.slice(-500));
  const { grew, rows } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { grew: number; rows: number };
  t.is(rows, 400);
  t.log(`peak RSS grew ${grew.toFixed(0)} MB for 32 000 prompts`);
  t.true(grew < 300, `peak RSS grew ${grew.toFixed(0)} MB (4.3 GB when the prompts ran in one pass)`);
});

/** A copy of a safetensors file with its metadata (and optionally a tensor) changed. */
async function rewrite(
  file: string,
  out: string,
  meta: (m: Record<string, string>) => Record<string, string>,
  tensor?: (name: string, data: Uint8Array) => Uint8Array,
) {
  const f = parseSafetensors(readFileSync(file));
  const tensors = [...f.tensors].map(([name, e]) => ({
    name,
    dtype: e.dtype as SafetensorsDtype,
    shape: e.shape,
    data: tensor ? tensor(name, new Uint8Array(e.bytes)) : e.bytes,
  }));
  await writeSafetensors(out, tensors, meta(f.metadata));
}

test("fromWeights checks the metadata against the tensors before it builds the metadata's model", async (t) => {
  const dir = tmp();
  const tokenizer = new ByteTokenizer({ contextLength: 16 });
  const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, seed: 0, tokenizer });
  const file = path.join(dir, 'w.safetensors');
  await model.saveWeights(file);
  model.dispose();
  const withConfig = (patch: Record<string, number>) => (m: Record<string, string>) => ({
    ...m,
    config: JSON.stringify({ ...JSON.parse(m.config!), ...patch }),
  });
  const bad = path.join(dir, 'bad.safetensors');
  await rewrite(file, bad, withConfig({ context_length: 1e6 }));
  const rss = process.memoryUsage().rss;
  await t.throwsAsync(Rils.fromWeights(bad), {
    instanceOf: RilsWeightsError,
    message: /metadata says contextLength 1000000 but 'positional_embedding' has shape \[16, 128\]/,
  });
  t.true(process.memoryUsage().rss - rss < 200 * 2 ** 20, 'no 0.5 GB model was allocated');
  for (const [tok, why] of [
    ['{', /unreadable tokenizer/],
    ['null', /unreadable tokenizer/],
    ['5', /unreadable tokenizer/],
    [
      JSON.stringify({ type: 'word', contextLength: 16, words: Array.from({ length: 400 }, (_, i) => `w${i}`) }),
      /does not fit the model/,
    ],
    [JSON.stringify({ type: 'byte', contextLength: 32 }), /does not fit the model/],
  ] as const) {
    await rewrite(file, bad, (m) => ({ ...m, tokenizer: tok }));
    await t.throwsAsync(Rils.fromWeights(bad), { instanceOf: RilsWeightsError, message: why }, tok.slice(0, 30));
  }
  await rewrite(file, bad, (m) => ({ ...m, config: '{' }));
  await t.throwsAsync(Rils.fromWeights(bad), { instanceOf: RilsWeightsError, message: /unreadable config/ });
  rmSync(dir, { recursive: true });
});

test('loadCheckpoint is all or nothing: a bad moment or generator state changes nothing and names the file and tensor', async (t) => {
  const dir = tmp();
  const source = await micro();
  await source.trainStep(randomBatch(source, 4));
  const target = await micro({ seed: 1 });
  await target.trainStep(randomBatch(target, 4, 7));
  const before = await snapshot(target);
  const good = await checkpointContent(source);
  const weights = good.weights;
  const cases: [string, Parameters<typeof writeCheckpoint>[1], RegExp][] = [
    [
      'nan-moment',
      { ...good, weights, moments: good.moments.map((m, i) => (i === 3 ? { ...m, data: nanCopy(m.data) } : m)) },
      /nan-moment\.safetensors: Optimizer tensor 'exp_avg_sq?\.[^']+' contains NaN/,
    ],
    [
      'missing-moment',
      { ...good, weights, moments: good.moments.slice(1) },
      /missing-moment\.safetensors: Missing optimizer moments of '/,
    ],
    [
      'short-rng',
      { ...good, weights, rng: good.rng.slice(0, 100) },
      /short-rng\.safetensors: Expected the mask-noise generator state as \d+ bytes but received 100/,
    ],
    [
      'garbage-rng',
      { ...good, weights, rng: new Uint8Array(good.rng.byteLength).fill(7).buffer },
      /garbage-rng\.safetensors: Invalid mask-noise generator state/,
    ],
  ];
  for (const [name, content, message] of cases) {
    const file = path.join(dir, `${name}.safetensors`);
    await writeCheckpoint(file, content);
    await t.throwsAsync(target.loadCheckpoint(file), { instanceOf: RilsWeightsError, message }, name);
    t.true(sameWeights(await snapshot(target), before), `${name}: the weights are unchanged`);
  }
  t.is(target.step, 1, 'the step is unchanged');
  source.dispose();
  target.dispose();
  rmSync(dir, { recursive: true });
});

function nanCopy(data: ArrayBuffer): ArrayBuffer {
  const out = new Float32Array(data.slice(0));
  out[0] = NaN;
  return out.buffer;
}

/** A model's checkpoint content, read back from a saved checkpoint: weights, moments, generator state. */
async function checkpointContent(model: Rils) {
  const dir = tmp();
  const file = path.join(dir, 'c.safetensors');
  await model.saveCheckpoint(file);
  const f = parseSafetensors(readFileSync(file));
  rmSync(dir, { recursive: true });
  const entries = (keep: (name: string) => boolean) =>
    [...f.tensors]
      .filter(([n]) => keep(n))
      .map(([name, e]) => ({ name, shape: e.shape, data: new Uint8Array(e.bytes).slice().buffer }));
  return {
    weights: entries((n) => !n.startsWith('exp_avg') && !n.startsWith('rng.')),
    moments: entries((n) => n.startsWith('exp_avg')),
    rng: new Uint8Array(f.tensors.get('rng.mask_noise')!.bytes).slice().buffer,
    step: model.step,
    metadata: { ...f.metadata },
    extra: null,
  };
}

test('options that overflow or make every step NaN are refused, naming the option', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ logitScaleInit: 1e308 }, /Expected a number in \[-80, 80\] for logitScaleInit but received number 1e\+308/],
    [{ mlpRatio: 1e-300 }, /Expected mlpRatio \(1e-300\) to give MLPs of at least one unit/],
    [{ eps: 0 }, /Expected a number >= 1e-30 for eps but received number 0/],
    [{ tokenizer: 5 }, /Expected a tokenizer .* for tokenizer but received number 5/],
    [{ betas: [0.9, 1] }, /Expected a number in \[0, 1\) for betas\[1\] but received number 1/],
    [{ visionLnEps: 2 }, /Expected a number in \(0, 1\] for visionLnEps/],
  ];
  for (const [options, message] of cases) {
    await t.throwsAsync(micro(options), { instanceOf: RilsInputError, message }, JSON.stringify(options));
  }
});

test('patchSemantics with a tiny temperature tends to the argmax, never NaN', async (t) => {
  const tokenizer = new WordTokenizer(['cat', 'dog', 'bird'], { contextLength: 16 });
  const model = await micro({ tokenizer, vocabSize: tokenizer.vocabSize });
  const { images } = randomBatch(model, 2);
  const sem = await model.patchSemantics({ images, batchSize: 2 }, ['cat', 'dog', 'bird'], { temperature: 1e-300 });
  t.true(sem.probabilities.every((p) => Number.isFinite(p) && p >= 0 && p <= 1));
  for (let i = 0; i < sem.probabilities.length; i += 3) {
    t.is(Math.round(sem.probabilities[i]! + sem.probabilities[i + 1]! + sem.probabilities[i + 2]!), 1);
  }
  model.dispose();
});

test('setNumThreads: a clear error above 4 × the cores, at once', (t) => {
  const started = performance.now();
  t.throws(() => setNumThreads(1e6), {
    instanceOf: RilsInputError,
    message: /Expected an integer in \[1, \d+\] \(4 × the \d+ cores\) for threads/,
  });
  t.throws(() => setNumThreads(2000), { instanceOf: RilsInputError });
  t.true(performance.now() - started < 1000);
  setNumThreads(os.availableParallelism());
});
