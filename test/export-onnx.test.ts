// model.exportOnnx and `rils export`, run in onnxruntime-node: the exported towers give rils's own
// embeddings (cosine ≥ 0.99999 in fp32) for a CLIP model (imported checkpoints in both layouts and
// activations) and a RILS model at several batch sizes, model.onnx's logits rils's zero-shot argmax;
// fp16 halves the files; opsets 17 and 21 and external data load; bad options fail typed before
// anything is written, and a failed write leaves nothing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';
import * as ort from 'onnxruntime-node';

import { RilsInputError, Rils, WordTokenizer } from '../lib/index.js';
import type { Tokenizer } from '../lib/index.js';
import { toFloat16 } from '../lib/export/float16.js';
import { cli, rilsRun } from './helpers/cli.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clip');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'rils-onnx-'));
const cosine = (a: Float32Array, b: Float32Array) => {
  let d = 0,
    x = 0,
    y = 0;
  for (let i = 0; i < a.length; i++) [d, x, y] = [d + a[i]! * b[i]!, x + a[i]! ** 2, y + b[i]! ** 2];
  return d / Math.sqrt(x * y);
};
const argmax = (row: ArrayLike<number>) => Array.prototype.indexOf.call(row, Math.max(...Array.from(row))) as number;

/** `n` images and `n` token rows (SOT, ids, EOT at varied places, zeros after) for `model`. */
function inputs(model: Rils, n: number) {
  const S = model.config.imageSize,
    L = model.config.contextLength,
    V = model.config.vocabSize;
  const images = Float32Array.from({ length: n * 3 * S * S }, (_, i) => Math.sin(i * 0.37 + n));
  const tokens = new Int32Array(n * L);
  for (let b = 0; b < n; b++) {
    const end = 1 + ((b * 5) % (L - 1));
    tokens[b * L] = V - 2;
    for (let i = 1; i < end; i++) tokens[b * L + i] = 1 + ((i * 37 + b * 11) % (V - 3));
    tokens[b * L + end] = V - 1;
  }
  return { images, tokens, batchSize: n };
}

const rows = (x: Float32Array, n: number) =>
  Array.from({ length: n }, (_, b) => x.subarray((b * x.length) / n, ((b + 1) * x.length) / n));
const int64 = (t: Int32Array, dims: number[]) =>
  new ort.Tensor(
    'int64',
    BigInt64Array.from(t, (v) => BigInt(v)),
    dims,
  );

/** Every image and text embedding of `dir`'s towers against rils's, and model.onnx's zero-shot argmax against classLogits. */
async function checkAgainstOnnx(
  t: import('ava').ExecutionContext,
  model: Rils,
  dir: string,
  minCosine: number,
  suffix = '',
) {
  const c = model.config,
    S = c.imageSize,
    L = c.contextLength;
  const vision = await ort.InferenceSession.create(path.join(dir, 'onnx', `vision_model${suffix}.onnx`));
  const text = await ort.InferenceSession.create(path.join(dir, 'onnx', `text_model${suffix}.onnx`));
  const both = await ort.InferenceSession.create(path.join(dir, 'onnx', `model${suffix}.onnx`));
  t.deepEqual(vision.inputNames, ['pixel_values']);
  t.deepEqual(vision.outputNames, ['image_embeds', 'last_hidden_state']);
  t.deepEqual(text.inputNames, ['input_ids', 'attention_mask']);
  t.deepEqual(both.outputNames, ['logits_per_image', 'logits_per_text', 'text_embeds', 'image_embeds']);
  let worst = 1;
  for (const n of [1, 3, 8]) {
    const x = inputs(model, n);
    const pixels = new ort.Tensor('float32', x.images, [n, 3, S, S]);
    const ids = int64(x.tokens, [n, L]),
      mask = int64(new Int32Array(n * L).fill(1), [n, L]);
    const ours = await model.encodeImages(x, { normalize: false });
    const theirs = (await vision.run({ pixel_values: pixels })).image_embeds!;
    t.deepEqual(theirs.dims, [n, c.embedDim]);
    rows(ours.embeddings, n).forEach(
      (e, b) => (worst = Math.min(worst, cosine(e, rows(theirs.data as Float32Array, n)[b]!))),
    );
    const ourText = await model.encodeTexts(x, { normalize: false });
    const theirText = (await text.run({ input_ids: ids, attention_mask: mask })).text_embeds!.data as Float32Array;
    rows(ourText.embeddings, n).forEach((e, b) => (worst = Math.min(worst, cosine(e, rows(theirText, n)[b]!))));
    // Zero-shot: the n texts as classes.
    const classes = (await model.encodeTexts(x)).embeddings;
    const ourLogits = (await model.classLogits(x, classes, n)).logits;
    const logits = (await both.run({ pixel_values: pixels, input_ids: ids, attention_mask: mask })).logits_per_image!;
    t.deepEqual(logits.dims, [n, n]);
    t.deepEqual(
      rows(logits.data as Float32Array, n).map(argmax),
      rows(ourLogits, n).map(argmax),
      `zero-shot argmax at batch ${n}`,
    );
  }
  t.true(worst >= minCosine, `worst cosine ${worst}`);
  await Promise.all([vision.release(), text.release(), both.release()]);
}

const clipModel = () => Rils.create({ preset: 'clip_micro', reconWeight: 0, seed: 3, precision: 'fp32' });
const rilsModel = () => Rils.create({ preset: 'micro', seed: 4, precision: 'fp32' });

test("CLIP and RILS models (either activation, other MLP ratios) give rils's embeddings and zero-shot argmax in onnxruntime", async (t) => {
  const variants = [
    ['clip', clipModel],
    ['rils', rilsModel],
    ['rils', () => Rils.create({ preset: 'micro', seed: 8, precision: 'fp32', visionAct: 'quick_gelu', mlpRatio: 2 })],
    [
      'clip',
      () =>
        Rils.create({
          preset: 'clip_micro',
          reconWeight: 0,
          seed: 9,
          precision: 'fp32',
          mlpRatio: 3,
          visionAct: 'gelu',
        }),
    ],
  ] as const;
  for (const [i, [name, make]] of variants.entries()) {
    const model = await make();
    const dir = path.join(tmp, `${name}-${i}`);
    const { files } = await model.exportOnnx(dir);
    t.deepEqual(files, [
      'config.json',
      'onnx/model.onnx',
      'onnx/text_model.onnx',
      'onnx/vision_model.onnx',
      'preprocessor_config.json',
    ]);
    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf-8'));
    t.is(config.model_type, 'clip');
    t.is(config.rils.vision_tower, name);
    await checkAgainstOnnx(t, model, dir, 0.99999);
    model.dispose();
  }
});

test('imported CLIP checkpoints (OpenAI safetensors, QuickGELU; a Hugging Face folder, GELU) export through the CLI', async (t) => {
  for (const [file, act] of [
    ['openai.safetensors', 'quick_gelu'],
    ['hf', 'gelu'],
  ] as const) {
    const out = path.join(tmp, `cli-${file}`);
    const run = await rilsRun(['export', '--weights', path.join(fixtures, file), '--out', out, '--opset', '21']);
    t.is(run.code, 0, run.stderr);
    t.regex(run.stdout, /ONNX \(fp32, clip vision tower, no tokenizer: token ids only\)/);
    const model = await Rils.fromPretrained(path.join(fixtures, file), { precision: 'fp32' });
    t.is(model.config.visionAct, act);
    await checkAgainstOnnx(t, model, out, 0.99999);
    model.dispose();
  }
});

test('fp16 halves the files and stays close; external data loads and gives the same numbers', async (t) => {
  const model = await rilsModel();
  const half = path.join(tmp, 'fp16'),
    full = path.join(tmp, 'fp32');
  await model.exportOnnx(half, { dtype: 'fp16' });
  await model.exportOnnx(full);
  t.deepEqual(JSON.parse(readFileSync(path.join(half, 'config.json'), 'utf-8'))['transformers.js_config'], {
    dtype: 'fp16',
  });
  const size = (dir: string, f: string) => statSync(path.join(dir, 'onnx', f)).size;
  const ratio = size(half, 'model_fp16.onnx') / size(full, 'model.onnx');
  t.true(ratio > 0.45 && ratio < 0.55, `fp16/fp32 size ${ratio}`);
  await checkAgainstOnnx(t, model, half, 0.999, '_fp16');
  const outside = path.join(tmp, 'external');
  const { files } = await model.exportOnnx(outside, { externalData: true });
  t.true(files.includes('onnx/vision_model.onnx_data') && files.includes('onnx/model.onnx_data'));
  t.true(size(outside, 'vision_model.onnx') < 64 * 1024, 'the weights are outside the .onnx');
  t.deepEqual(JSON.parse(readFileSync(path.join(outside, 'config.json'), 'utf-8'))['transformers.js_config'], {
    use_external_data_format: { 'vision_model.onnx': 1, 'text_model.onnx': 1, 'model.onnx': 1 },
  });
  await checkAgainstOnnx(t, model, outside, 0.99999);
  model.dispose();
});

test('bad options, a folder with files and an inexpressible tokenizer fail typed before anything is written', async (t) => {
  const model = await clipModel();
  const dir = path.join(tmp, 'never');
  const bad: [unknown, RegExp][] = [
    [{ dtype: 'int8' }, /Expected 'fp32' or 'fp16' for dtype but received "int8"/],
    [{ opset: 13 }, /Expected an integer 17 … 21 for opset but received number 13/],
    [{ opset: 17.5 }, /for opset/],
    [{ force: 'yes' }, /Expected a boolean for force/],
    [{ externalData: 'always' }, /for externalData/],
    [null, /Expected an options object/],
  ];
  for (const [options, message] of bad) {
    await t.throwsAsync(model.exportOnnx(dir, options as never), { instanceOf: RilsInputError, message });
  }
  t.false(existsSync(dir));
  const full = path.join(tmp, 'full');
  mkdirSync(full);
  writeFileSync(path.join(full, 'mine.txt'), 'keep');
  await t.throwsAsync(model.exportOnnx(full), {
    instanceOf: RilsInputError,
    message: /holds 1 entries; pass force: true/,
  });
  t.deepEqual(readdirSync(full), ['mine.txt']);
  await model.exportOnnx(full, { force: true });
  t.false(existsSync(path.join(full, 'mine.txt')));
  t.true(existsSync(path.join(full, 'onnx', 'model.onnx')));
  const custom: Tokenizer = {
    ...new WordTokenizer(['a'], { contextLength: 16 }),
    encode: () => new Int32Array(16),
    encodeBatch: () => new Int32Array(16),
  };
  const other = await Rils.create({ preset: 'clip_micro', reconWeight: 0, tokenizer: custom, vocabSize: 1000 });
  await t.throwsAsync(other.exportOnnx(dir), {
    instanceOf: RilsInputError,
    message: /a Object: Hugging Face's tokenizer.json cannot describe it/,
  });
  t.false(existsSync(dir));
  writeFileSync(path.join(tmp, 'plain'), '');
  await t.throwsAsync(model.exportOnnx(path.join(tmp, 'plain', 'out')), {
    instanceOf: RilsInputError,
    message: /Cannot export to .*ENOTDIR/,
  });
  // A write that fails (no folder can be made in /proc) is typed and leaves nothing behind.
  await t.throwsAsync(model.exportOnnx('/proc/rils-export-test'), {
    instanceOf: RilsInputError,
    message: /^Cannot write the export to \/proc\/rils-export-test: .*nothing was left behind/,
  });
  t.deepEqual(
    readdirSync('/proc').filter((f) => f.includes('rils')),
    [],
  );
  const cli = await rilsRun([
    'export',
    '--weights',
    path.join(fixtures, 'openai.safetensors'),
    '--out',
    dir,
    '--dtype',
    'bf16',
  ]);
  t.is(cli.code, 2);
  t.regex(cli.stderr, /Expected 'fp32' or 'fp16' for --dtype but received "bf16"/);
  t.false(existsSync(dir));
  other.dispose();
  model.dispose();
});

test('a write that fails midway (past the file size limit: EFBIG) is typed and leaves nothing behind', async (t) => {
  const out = path.join(tmp, 'killed');
  const weights = path.join(fixtures, 'openai.safetensors');
  const run = spawnSync('bash', [
    '-c',
    'ulimit -f 200; exec "$0" --import=tsx "$1" export --weights "$2" --out "$3"',
    process.execPath,
    cli,
    weights,
    out,
  ]);
  t.is(run.status, 2);
  t.regex(
    String(run.stderr),
    /^rils: Cannot write the export to .*killed: EFBIG: file too large, write; nothing was left behind/,
  );
  t.false(existsSync(out));
  t.deepEqual(
    readdirSync(tmp).filter((f) => f.includes('killed')),
    [],
  );
});

test('fp16 conversion rounds to nearest even, with subnormals, overflow, signed zero and NaN', (t) => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65520, 0x7c00],
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [-0, 0x8000],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [1.5 * 2 ** -24, 0x0002],
    [2 ** -25 * 1.0001, 0x0001],
    [2 ** -14, 0x0400],
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [0.1, 0x2e66],
    [1023.5 * 2 ** -24, 0x0400],
  ];
  const out = toFloat16(Float32Array.from(cases, ([v]) => v));
  cases.forEach(([v, bits], i) => t.is(out[i], bits, `${v}`));
  t.is(toFloat16(Float32Array.of(NaN))[0]! & 0x7e00, 0x7e00);
});
