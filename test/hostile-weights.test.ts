// Weight files that lie (issue 23, items 2, 3, 4, 9, 10, 11): a FIFO for a file, absurd shapes in a
// few kilobytes, a TorchScript view that repeats one value, config.json fields of the wrong type,
// finite weights that overflow, TorchScript code that does not compile. Each is a RilsWeightsError
// (or a typed error) naming the file, at once, before anything large is allocated.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Rils, RilsNativeError, RilsWeightsError, parseSafetensors, writeSafetensors } from '../lib/index.js';
import type { SafetensorsDtype } from '../lib/index.js';
import { native } from '../lib/addon/binding.js';
import { toNativeOptions } from '../lib/model/native-options.js';
import { loadOverflowingWeights, randomBatch } from './helpers/batches.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const openai = path.join(fixtures, 'clip', 'openai.safetensors');
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-hostile-'));
const rssMb = () => process.memoryUsage().rss / 2 ** 20;

/** The OpenAI fixture with some tensors given other shapes (and no bytes when they have no elements) or other values. */
async function rewritten(out: string, change: Record<string, number[] | ((data: Float32Array) => void)>) {
  const f = parseSafetensors(readFileSync(openai));
  await writeSafetensors(
    out,
    [...f.tensors].map(([name, t]) => {
      const c = change[name];
      if (Array.isArray(c))
        return {
          name,
          dtype: t.dtype as SafetensorsDtype,
          shape: c,
          data: new Uint8Array(c.reduce((a, b) => a * b, 1) * 4),
        };
      const data = new Float32Array(new Uint8Array(t.bytes).slice().buffer);
      c?.(data);
      return { name, dtype: t.dtype as SafetensorsDtype, shape: t.shape, data };
    }),
  );
  return out;
}

test("a FIFO as the weights, or as a Hugging Face folder's config.json, is refused at once", async (t) => {
  const dir = tmp();
  const fifo = path.join(dir, 'weights.safetensors');
  execFileSync('mkfifo', [fifo]);
  const started = performance.now();
  await t.throwsAsync(Rils.fromPretrained(fifo), {
    instanceOf: RilsWeightsError,
    message: new RegExp(`for ${fifo} but it is a named pipe \\(FIFO\\)`),
  });
  await t.throwsAsync(Rils.fromWeights(fifo), { instanceOf: RilsWeightsError, message: /named pipe/ });
  const hf = path.join(dir, 'hf');
  mkdirSync(hf);
  copyFileSync(path.join(fixtures, 'clip', 'hf', 'model.safetensors'), path.join(hf, 'model.safetensors'));
  execFileSync('mkfifo', [path.join(hf, 'config.json')]);
  await t.throwsAsync(Rils.fromPretrained(hf), {
    instanceOf: RilsWeightsError,
    message: /config\.json but it is a named pipe/,
  });
  t.true(performance.now() - started < 5000, 'nothing waited for a writer');
  rmSync(dir, { recursive: true });
});

// Serial: ava runs a file's other tests concurrently, and their models would count in the RSS.
test.serial(
  'zero-element tensors with absurd shapes: refused from the header, naming the file and tensor, nothing allocated',
  async (t) => {
    const dir = tmp();
    const f = parseSafetensors(readFileSync(openai));
    const headerOnly = Object.fromEntries(
      [...f.tensors].map(([name, e]) => [name, e.shape.length ? [...e.shape.slice(0, -1), 0] : [0]]),
    );
    const cases: [Record<string, number[]>, RegExp][] = [
      [
        { 'visual.conv1.weight': [8192, 3, 8, 0] },
        /'visual\.conv1\.weight' has shape \[8192, 3, 8, 0\]: no weight of CLIP has a dimension of 0/,
      ],
      [{ 'visual.conv1.weight': [1e9, 3, 8, 0] }, /'visual\.conv1\.weight' has shape \[1000000000, 3, 8, 0\]/],
      [{ 'token_embedding.weight': [1e8, 0] }, /'token_embedding\.weight' has shape \[100000000, 0\]/],
      [
        { ...headerOnly, 'visual.conv1.weight': [8192, 3, 8, 0], 'token_embedding.weight': [1e8, 0] },
        /absurd\.safetensors \(read as .*\): '[^']+' has shape \[[\d, ]*\]: no weight/,
      ],
    ];
    const rss = rssMb();
    const started = performance.now();
    for (const [change, message] of cases) {
      const file = await rewritten(path.join(dir, 'absurd.safetensors'), change);
      await t.throwsAsync(
        Rils.fromPretrained(file),
        { instanceOf: RilsWeightsError, message },
        JSON.stringify(change).slice(0, 80),
      );
    }
    t.true(
      readFileSync(path.join(dir, 'absurd.safetensors')).length < 10_000,
      'the last is a header of a few kilobytes',
    );
    t.true(performance.now() - started < 5000, `${(performance.now() - started).toFixed(0)} ms`);
    t.true(rssMb() - rss < 200, `RSS grew ${(rssMb() - rss).toFixed(0)} MB`);
    rmSync(dir, { recursive: true });
  },
);

test.serial(
  'a declared model must fit the bytes that hold it: shapes that describe a larger model are refused before it is built',
  async (t) => {
    const dir = tmp();
    // Non-empty shapes: a vocabulary of 1e6 rows held in a [1e6, 1] tensor (4 MB of file) describes
    // a model of 1e6 × 128 numbers (512 MB).
    const file = await rewritten(path.join(dir, 'wide.safetensors'), { 'token_embedding.weight': [1e6, 1] });
    const rss = rssMb();
    await t.throwsAsync(Rils.fromPretrained(file), {
      instanceOf: RilsWeightsError,
      message:
        /wide\.safetensors \(read as .*\): its tensors hold \d+ numbers but the model they describe needs \d+ \(.*vocabSize 1000000\b/,
    });
    t.true(rssMb() - rss < 300, `RSS grew ${(rssMb() - rss).toFixed(0)} MB`);
    // rils's own file whose metadata says 100 000 blocks, for the 4 it holds.
    const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
    const own = path.join(dir, 'own.safetensors');
    await model.saveWeights(own);
    model.dispose();
    const f = parseSafetensors(readFileSync(own));
    const config = { ...JSON.parse(f.metadata.config!), vision_depth: 100_000 };
    const deep = path.join(dir, 'deep.safetensors');
    await writeSafetensors(
      deep,
      [...f.tensors].map(([name, e]) => ({ name, dtype: 'F32', shape: e.shape, data: e.bytes })),
      { ...f.metadata, config: JSON.stringify(config) },
    );
    await t.throwsAsync(Rils.fromWeights(deep), {
      instanceOf: RilsWeightsError,
      message: /deep\.safetensors: its tensors hold \d+ numbers but the model they describe needs .*visionDepth 100000/,
    });
    t.true(rssMb() - rss < 300, `RSS grew ${(rssMb() - rss).toFixed(0)} MB`);
    // Metadata that describes no valid model: the file is named, not the caller's options.
    for (const [patch, message] of [
      [{ vision_heads: 3 }, /to be divisible by visionHeads \(3\)/],
      [{ vision_width: 'abc' }, /for visionWidth but received "abc"/],
    ] as const) {
      await writeSafetensors(
        deep,
        [...f.tensors].map(([name, e]) => ({ name, dtype: 'F32', shape: e.shape, data: e.bytes })),
        { ...f.metadata, config: JSON.stringify({ ...JSON.parse(f.metadata.config!), ...patch }) },
      );
      await t.throwsAsync(Rils.fromWeights(deep), {
        instanceOf: RilsWeightsError,
        message: new RegExp(`deep\\.safetensors: its metadata does not describe a valid model: .*${message.source}`),
      });
    }
    rmSync(dir, { recursive: true });
  },
);

test('parameterCount counts every model it describes exactly, without building it', async (t) => {
  const cases = [
    { preset: 'micro' },
    { preset: 'clip_micro', reconWeight: 0 },
    { preset: 'clip_micro', decoderDepth: 2, reconWeight: 0.5, mlpRatio: 2.5 },
    { preset: 'micro', mlpRatio: 2.7, decoderDepth: 3, decoderWidth: 64, decoderHeads: 2, inChans: 1, patchSize: 8 },
  ] as const;
  for (const c of cases) {
    const model = await Rils.create({ vocabSize: 300, seed: 0, ...c });
    const built = model.parameters();
    const decoder = built
      .filter((p) => /^visual\.(decoder_|mask_token$)/.test(p.name))
      .reduce((n, p) => n + p.numel, 0);
    t.deepEqual(
      native.parameterCount(toNativeOptions({ vocabSize: 300, ...c })),
      { total: built.reduce((n, p) => n + p.numel, 0), decoder },
      JSON.stringify(c),
    );
    model.dispose();
  }
});

test.serial(
  'a TorchScript parameter that is a zero-stride view: refused naming the file and tensor, nothing expanded',
  async (t) => {
    const file = path.join(fixtures, 'hostile', 'zero-stride.pt');
    const rss = rssMb();
    await t.throwsAsync(Rils.fromPretrained(file), {
      instanceOf: RilsWeightsError,
      message: new RegExp(
        `^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: tensor 'w' has shape \\[100000, 100000\\] \\(10000000000 elements\\) but its storage holds 4 bytes`,
      ),
    });
    t.true(rssMb() - rss < 300, `RSS grew ${(rssMb() - rss).toFixed(0)} MB`);
  },
);

test('a TorchScript archive whose code does not compile: a RilsWeightsError naming the file', async (t) => {
  const file = path.join(fixtures, 'hostile', 'bad-code.pt');
  const error = await t.throwsAsync(Rils.fromPretrained(file), {
    instanceOf: RilsWeightsError,
    message: /bad-code\.pt is not a TorchScript archive LibTorch can read/,
  });
  t.false(error!.message.includes('\n'), "one line, not the compiler's source listing");
});

test('config.json fields of the wrong type or value name config.json and the field, never the options', async (t) => {
  const dir = tmp();
  const base = JSON.parse(readFileSync(path.join(fixtures, 'clip', 'hf', 'config.json'), 'utf-8')) as Record<
    string,
    Record<string, unknown>
  >;
  const cases: [string, unknown, RegExp][] = [
    [
      'hidden_act',
      '__proto__',
      /config\.json: Expected 'quick_gelu' or 'gelu' \(the activations rils implements\) for vision_config\.hidden_act but received "__proto__"/,
    ],
    ['hidden_act', 'constructor', /for vision_config\.hidden_act but received "constructor"/],
    ['hidden_act', 'gelu_new', /for vision_config\.hidden_act but received "gelu_new"/],
    [
      'layer_norm_eps',
      'abc',
      /config\.json: Expected a number in \(0, 1\] for vision_config\.layer_norm_eps but received "abc"/,
    ],
    ['layer_norm_eps', -1, /for vision_config\.layer_norm_eps but received number -1/],
    [
      'num_attention_heads',
      2.5,
      /config\.json: Expected an integer >= 1 for vision_config\.num_attention_heads but received number 2\.5/,
    ],
  ];
  for (const [field, value, message] of cases) {
    const hf = path.join(dir, `${field}-${String(value)}`);
    mkdirSync(hf);
    copyFileSync(path.join(fixtures, 'clip', 'hf', 'model.safetensors'), path.join(hf, 'model.safetensors'));
    writeFileSync(
      path.join(hf, 'config.json'),
      JSON.stringify({ ...base, vision_config: { ...base.vision_config, [field]: value } }),
    );
    const error = await t.throwsAsync(
      Rils.fromPretrained(hf),
      { instanceOf: RilsWeightsError, message },
      `${field}: ${String(value)}`,
    );
    t.false(/visionAct|visionLnEps|visionHeads/.test(error!.message), 'the options are not blamed');
  }
  writeFileSync(path.join(dir, 'hidden_act-__proto__', 'config.json'), JSON.stringify({ ...base, vision_config: 5 }));
  await t.throwsAsync(Rils.fromPretrained(path.join(dir, 'hidden_act-__proto__')), {
    instanceOf: RilsWeightsError,
    message: /Expected an object for vision_config but received number 5/,
  });
  rmSync(dir, { recursive: true });
});

test('finite weights so large that the arithmetic overflows: encoding is a typed error, never silent NaN', async (t) => {
  const dir = tmp();
  const file = await rewritten(path.join(dir, 'huge.safetensors'), { 'visual.ln_post.weight': (w) => w.fill(3e38) });
  const model = await Rils.fromPretrained(file);
  const images = new Float32Array(64 * 3 * 32 * 32).map((_, i) => Math.sin(i));
  await t.throwsAsync(model.encodeImages({ images, batchSize: 64 }), {
    instanceOf: RilsNativeError,
    message: /Expected finite embeddings but the model computed NaN or infinite values from finite inputs/,
  });
  const tokens = Int32Array.from({ length: 16 }, (_, i) => (i === 0 ? 510 : i === 1 ? 7 : i === 2 ? 511 : 0));
  const texts = await model.encodeTexts({ tokens, batchSize: 1 });
  t.true(texts.embeddings.every(Number.isFinite), 'the text tower, which those weights do not touch, still encodes');
  model.dispose();
  rmSync(dir, { recursive: true });
});

test('training on weights that overflow: skipped steps are reported, then a typed error, never a wrong one', async (t) => {
  const { fit } = await import('../lib/index.js');
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  await loadOverflowingWeights(model);
  const batch = randomBatch(model, 4);
  const source = { next: async () => ({ ...batch, position: null }), restore: () => undefined };
  const steps: boolean[] = [];
  await t.throwsAsync(fit(model, source, { steps: 3, onStep: (p) => steps.push(p.nonFinite) }), {
    message: /The last 20 steps had a NaN or infinite loss or gradient and were skipped/,
  });
  t.true(steps.length === 20 && steps.every(Boolean), 'each skipped step was reported, past the 3 steps asked for');
  model.dispose();
});
