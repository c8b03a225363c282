// Bad input: each a typed error with a clear message, the process alive, the weights unchanged.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import {
  FileCaptionSource,
  Rils,
  RilsDeviceError,
  RilsError,
  RilsInputError,
  RilsStateError,
  RilsWeightsError,
  WordTokenizer,
  runtimeInfo,
  setNumThreads,
} from '../lib/index.js';
import type { Batch } from '../lib/index.js';
import { randomBatch, sameWeights, snapshot } from './helpers/batches.js';
import { fixture } from './helpers/parity.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-err-'));
const micro = () => Rils.create({ preset: 'micro', vocabSize: 1000, seed: 5 });

/** A bad batch must reject with `cls` matching `message`, and leave every weight as it was. */
async function rejectsUnchanged(t: any, model: Rils, batch: Batch, cls: any, message: RegExp) {
  const before = await snapshot(model);
  const error = await t.throwsAsync(async () => model.trainStep(batch), { instanceOf: cls, message });
  t.true(error instanceof RilsError);
  t.false(/\.cpp|\.h:|frame #|Exception raised from/.test(error.message), 'no C++ backtrace in the message');
  t.true(sameWeights(before, await snapshot(model)), 'weights unchanged');
}

test('wrong lengths', async (t) => {
  const model = await micro();
  const good = randomBatch(model, 4);
  await rejectsUnchanged(
    t,
    model,
    { ...good, images: good.images.subarray(1) as Float32Array },
    RilsInputError,
    /Expected a Float32Array of 12288 elements for images \(\[4, 3, 32, 32\]\) but received Float32Array\(12287\)/,
  );
  await rejectsUnchanged(
    t,
    model,
    { ...good, tokens: good.tokens.subarray(0, 10) },
    RilsInputError,
    /tokens \(\[4, 16\]\)/,
  );
  await rejectsUnchanged(
    t,
    model,
    { ...good, maskNoise: new Float32Array(5) },
    RilsInputError,
    /maskNoise \(\[4, 64\]\)/,
  );
  await rejectsUnchanged(t, model, { ...good, batchSize: 5 }, RilsInputError, /of 15360 elements/);
});

test('wrong dtypes', async (t) => {
  const model = await micro();
  const good = randomBatch(model, 4);
  await rejectsUnchanged(
    t,
    model,
    { ...good, images: new Float64Array(good.images) as any },
    RilsInputError,
    /Expected a Float32Array/,
  );
  await rejectsUnchanged(
    t,
    model,
    { ...good, tokens: new Float32Array(good.tokens) as any },
    RilsInputError,
    /Expected a Int32Array/,
  );
  await rejectsUnchanged(
    t,
    model,
    { ...good, tokens: [...good.tokens] as any },
    RilsInputError,
    /but received an array of 64/,
  );
  await rejectsUnchanged(t, model, { ...good, maskNoise: new Int32Array(256) as any }, RilsInputError, /Float32Array/);
  await rejectsUnchanged(t, model, { ...good, batchSize: 2.5 }, RilsInputError, /integer/);
  await rejectsUnchanged(t, model, null as any, RilsInputError, /batch object/);
});

test('a batch of 1 is refused (the contrastive loss needs negatives)', async (t) => {
  const model = await micro();
  await rejectsUnchanged(t, model, randomBatch(model, 1), RilsInputError, /batchSize >= 2/);
  await t.throwsAsync(model.evaluateLoss(randomBatch(model, 1)), { instanceOf: RilsInputError });
});

test('NaN or infinite values', async (t) => {
  const model = await micro();
  const good = randomBatch(model, 4);
  // The check runs in blocks of 4096 elements over threads: the first, a middle one, the last element.
  const size = good.images.length;
  for (const [at, value] of [
    [17, Number.NaN],
    [5000, Infinity],
    [size - 1, -Infinity],
  ] as const) {
    const images = good.images.slice() as Float32Array;
    images[at] = value;
    await rejectsUnchanged(t, model, { ...good, images }, RilsInputError, /images contain NaN or infinite values/);
  }
  const noise = new Float32Array(4 * 64).fill(0.5);
  noise[3] = Infinity;
  await rejectsUnchanged(t, model, { ...good, maskNoise: noise }, RilsInputError, /maskNoise contains NaN/);
});

test('token ids out of range', async (t) => {
  const model = await micro();
  const good = randomBatch(model, 4);
  const high = good.tokens.slice();
  high[5] = 1000;
  await rejectsUnchanged(
    t,
    model,
    { ...good, tokens: high },
    RilsInputError,
    /token ids in \[0, 1000\) but received ids in \[0, 1000\]/,
  );
  const negative = good.tokens.slice();
  negative[0] = -1;
  await rejectsUnchanged(t, model, { ...good, tokens: negative }, RilsInputError, /received ids in \[-1,/);
});

test('a detached buffer is refused', async (t) => {
  const model = await micro();
  const good = randomBatch(model, 4);
  const images = good.images.slice() as Float32Array;
  structuredClone(images.buffer, { transfer: [images.buffer as ArrayBuffer] }); // detaches `images`
  await rejectsUnchanged(
    t,
    model,
    { ...good, images },
    RilsInputError,
    /received Float32Array\(0\) \(its ArrayBuffer is detached/,
  );
});

test('a resizable or resized buffer is refused', async (t) => {
  const model = await micro();
  const good = randomBatch(model, 4);
  type Resizable = ArrayBuffer & { resize(n: number): void };
  const Ctor = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable;
  const buffer = new Ctor(good.images.byteLength, { maxByteLength: good.images.byteLength * 2 });
  const images = new Float32Array(buffer);
  images.set(good.images);
  await rejectsUnchanged(t, model, { ...good, images }, RilsInputError, /resizable or growable; pass a copy/);
  // A fixed view over a buffer that was then shrunk is out of bounds: length 0.
  const fixed = new Float32Array(buffer, 0, good.images.length);
  buffer.resize(16);
  await rejectsUnchanged(t, model, { ...good, images: fixed }, RilsInputError, /resizable/);
  await t.throwsAsync(model.encodeImages({ images: fixed, batchSize: 4 }), {
    instanceOf: RilsInputError,
    message: /resizable/,
  });
  const tokens = new Int32Array(new Ctor(good.tokens.byteLength, { maxByteLength: good.tokens.byteLength }));
  tokens.set(good.tokens);
  await rejectsUnchanged(t, model, { ...good, tokens }, RilsInputError, /tokens.*resizable/);
});

test('use after dispose', async (t) => {
  const model = await micro();
  const batch = randomBatch(model, 4);
  model.dispose();
  t.true(model.disposed);
  await t.throwsAsync(model.trainStep(batch), { instanceOf: RilsStateError, message: /disposed/ });
  await t.throwsAsync(model.evaluateLoss(batch), { instanceOf: RilsStateError, message: /disposed/ });
  t.throws(() => model.parameters(), { instanceOf: RilsStateError });
  await t.throwsAsync(model.saveWeights(path.join(tmp(), 'w.safetensors')), { instanceOf: RilsStateError });
  await t.throwsAsync(model.loadWeights(fixture('init.safetensors')), { instanceOf: RilsStateError });
  model.dispose(); // idempotent
});

test('invalid options', async (t) => {
  await t.throwsAsync(Rils.create({ preset: 'vit_x' as any }), { instanceOf: RilsInputError, message: /preset/ });
  await t.throwsAsync(Rils.create({ preset: 'micro', visionHeads: 3 }), {
    instanceOf: RilsInputError,
    message: /divisible by visionHeads/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', patchSize: 5 }), {
    instanceOf: RilsInputError,
    message: /multiple of patchSize/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', lr: -1 }), { instanceOf: RilsInputError, message: /lr/ });
  await t.throwsAsync(Rils.create({ preset: 'micro', maskRatio: 1 }), {
    instanceOf: RilsInputError,
    message: /maskRatio/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', vocabSize: 1.5 }), {
    instanceOf: RilsInputError,
    message: /integer/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', retrievalGate: 'yes' as any }), {
    instanceOf: RilsInputError,
    message: /boolean/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', lR: 1 } as any), {
    instanceOf: RilsInputError,
    message: /Unknown option 'lR'/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', device: 'tpu' as any }), {
    instanceOf: RilsInputError,
    message: /device/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', betas: [0.9] as any }), {
    instanceOf: RilsInputError,
    message: /betas/,
  });
  t.throws(() => setNumThreads(0), { instanceOf: RilsInputError });
});

test('CUDA on a build or machine without it is a device error', async (t) => {
  if (runtimeInfo().cudaAvailable) return t.pass('CUDA is available here');
  await t.throwsAsync(Rils.create({ preset: 'micro', device: 'cuda' }), {
    instanceOf: RilsDeviceError,
    message: /CUDA/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', device: 'cuda:3' }), { instanceOf: RilsDeviceError });
});

test('weights of another preset or config are refused, the model unchanged', async (t) => {
  const model = await micro();
  const before = await snapshot(model);
  await t.throwsAsync(model.loadWeights(fixture('init.safetensors')), {
    instanceOf: RilsWeightsError,
    message: /shape \[32, 32\] but this model needs \[128, 128\]|weights of another/,
  });
  const other = await Rils.create({ preset: 'micro', vocabSize: 1000, visionDepth: 2, seed: 1 });
  const file = path.join(tmp(), 'other.safetensors');
  await other.saveWeights(file);
  await t.throwsAsync(model.loadWeights(file), {
    instanceOf: RilsWeightsError,
    message: /Missing tensors: visual\.blocks\.2/,
  });
  t.true(sameWeights(before, await snapshot(model)));
});

test('truncated, corrupt, missing or non-finite weight files are refused, the model unchanged', async (t) => {
  const model = await micro();
  const dir = tmp();
  const good = path.join(dir, 'good.safetensors');
  await model.saveWeights(good);
  const bytes = readFileSync(good);
  const before = await snapshot(model);
  const cases: [string, Uint8Array, RegExp][] = [
    ['truncated', bytes.subarray(0, bytes.length - 100), /outside the file \(truncated\?\)/],
    ['tiny', bytes.subarray(0, 5), /too short/],
    ['huge header', Buffer.concat([Buffer.from([255, 255, 255, 255, 0, 0, 0, 0]), bytes.subarray(8)]), /header length/],
    ['not json', Buffer.concat([bytes.subarray(0, 8), Buffer.from('x'.repeat(16)), bytes.subarray(24)]), /not JSON/],
  ];
  for (const [name, data, message] of cases) {
    const file = path.join(dir, `${name}.safetensors`);
    writeFileSync(file, data);
    await t.throwsAsync(model.loadWeights(file), { instanceOf: RilsWeightsError, message }, name);
  }
  await t.throwsAsync(model.loadWeights(path.join(dir, 'missing.safetensors')), {
    instanceOf: RilsWeightsError,
    message: /Cannot read/,
  });
  // A NaN inside an otherwise valid file.
  const nan = Buffer.from(bytes);
  const n = Number(nan.readBigUInt64LE(0));
  nan.writeFloatLE(Number.NaN, 8 + n + 4);
  const nanFile = path.join(dir, 'nan.safetensors');
  writeFileSync(nanFile, nan);
  await t.throwsAsync(model.loadWeights(nanFile), { instanceOf: RilsWeightsError, message: /NaN or infinite/ });
  t.true(sameWeights(before, await snapshot(model)));
  await model.loadWeights(good); // and a good file still loads
});

test('errors that send the user the right way', async (t) => {
  const clip = fixture('../clip/openai.safetensors');
  await t.throwsAsync(Rils.fromWeights(clip), {
    instanceOf: RilsWeightsError,
    message: /is not a rils weight file .*it holds a CLIP checkpoint; load it with Rils\.fromPretrained\(path\)/,
  });
  const model = await micro();
  await t.throwsAsync(model.encodeImages('x.png' as never), {
    instanceOf: RilsInputError,
    message: /Expected an array of images .* but received "x\.png": pass \[image\] for a single image/,
  });
  t.throws(
    () =>
      new FileCaptionSource({
        items: [{ image: 'a.png', caption: 'a' }],
        tokenizer: model.tokenizer!,
        batchSize: 2,
        seed: 0,
        size: 32,
      }),
    {
      instanceOf: RilsInputError,
      message:
        /Expected a tokenizer for the tokenizer of a data source but received undefined: a model made without \{ tokenizer \} has none/,
    },
  );
  const words = WordTokenizer.fromTexts(['a photo of a seven', 'a photo of an eight'], { contextLength: 16 });
  const small = await Rils.create({
    preset: 'micro',
    vocabSize: words.vocabSize,
    contextLength: 16,
    tokenizer: words,
    seed: 1,
  });
  const warnings: string[] = [];
  const listen = (w: Error) => warnings.push(w.message);
  process.on('warning', listen);
  await small.zeroShotClassifier(['seven', 'zebra', 'giraffe'], { templates: ['a photo of a {}'] });
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', listen);
  t.deepEqual(warnings, [
    "Classes 'zebra' = 'giraffe' tokenize identically and will get identical scores (words the tokenizer's vocabulary lacks, read as unknown: zebra, giraffe)",
  ]);
  model.dispose();
  small.dispose();
});
