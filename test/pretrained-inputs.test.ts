// What goes into a pretrained CLIP model besides its weights: image files through OpenAI's eval
// transform, CLIP's tokenizer from the bundled vocabulary or a Hugging Face folder; and checkpoints
// that are broken, incomplete or not CLIP's, each refused with a typed error.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import test from 'ava';

import {
  BUNDLED_CLIP_VOCAB,
  ClipTokenizer,
  Rils,
  RilsWeightsError,
  loadImages,
  parseSafetensors,
  writeSafetensors,
} from '../lib/index.js';
import type { SafetensorsDtype } from '../lib/index.js';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clip');
const shared = path.resolve(dir, '..', '..', '..', '..', 'shared', 'data');
const IMAGES = ['wide.jpg', 'tall.jpg', 'square.jpg', 'small.png', 'gray.png', 'alpha.png', 'exif-rotated.jpg'];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-pretrained-'));

test('image files through the eval transform: within 0.01 of clip_ref preprocess (normalised), embeddings cosine >= 0.999', async (t) => {
  const ref = new Uint8Array(
    parseSafetensors(readFileSync(path.join(dir, 'preprocess-224.safetensors'))).tensors.get('images')!.bytes,
  );
  const ours = await loadImages(
    IMAGES.map((f) => path.join(dir, 'images', f)),
    224,
    { interpolation: 'bicubic' },
  );
  const S = 224;
  IMAGES.forEach((name, i) => {
    let sum = 0;
    for (let c = 0; c < 3; c++)
      for (let p = 0; p < S * S; p++) {
        sum += Math.abs(ref[(i * 3 + c) * S * S + p]! - ours[(i * S * S + p) * 3 + c]!) / 255 / CLIP_STD[c]!;
      }
    const mad = sum / (3 * S * S);
    t.true(mad <= 0.01, `${name}: mean |Δ| ${mad.toFixed(4)}`);
  });
  const model = await Rils.fromPretrained(path.join(dir, 'openai.safetensors'));
  const { embeddings } = await model.encodeImages(IMAGES.map((f) => path.join(dir, 'images', f)));
  const theirs = parseSafetensors(readFileSync(path.join(dir, 'encode-preprocess-32.safetensors'))).tensors.get(
    'image_embed_norm',
  )!;
  const ref32 = new Float32Array(new Uint8Array(theirs.bytes).buffer),
    E = model.config.embedDim;
  for (let i = 0; i < IMAGES.length; i++) {
    let dot = 0;
    for (let e = 0; e < E; e++) dot += embeddings[i * E + e]! * ref32[i * E + e]!;
    t.true(dot >= 0.999, `${IMAGES[i]}: cosine ${dot.toFixed(5)}`);
  }
  model.dispose();
});

test('CLIP tokenizer: the bundled vocabulary and a Hugging Face vocab.json + merges.txt give the reference ids', async (t) => {
  const { cases } = JSON.parse(readFileSync(path.join(shared, 'clip_tokenizer_cases.json'), 'utf-8')) as {
    cases: { text: string; bpe_ids: number[] }[];
  };
  const bundled = await ClipTokenizer.load();
  t.is(bundled.vocabSize, 49408);
  const folder = tmp();
  const merges = gunzipSync(readFileSync(BUNDLED_CLIP_VOCAB))
    .toString('utf-8')
    .split('\n')
    .slice(1, 49152 - 256 - 2 + 1);
  writeFileSync(path.join(folder, 'merges.txt'), `#version: 0.2\n${merges.join('\n')}\n`);
  writeFileSync(
    path.join(folder, 'vocab.json'),
    JSON.stringify(Object.fromEntries(bundled.vocabulary().map((s, id) => [s, id]))),
  );
  const hf = await ClipTokenizer.fromHuggingFace(path.join(folder, 'vocab.json'), path.join(folder, 'merges.txt'));
  for (const c of cases.slice(0, 200)) {
    t.deepEqual(bundled.tokenize(c.text), c.bpe_ids, c.text.slice(0, 40));
    t.deepEqual(hf.tokenize(c.text), c.bpe_ids, c.text.slice(0, 40));
  }
  writeFileSync(path.join(folder, 'vocab.json'), JSON.stringify({ a: 0 }));
  await t.throwsAsync(ClipTokenizer.fromHuggingFace(path.join(folder, 'vocab.json'), path.join(folder, 'merges.txt')), {
    message: /vocab.json has 1 tokens/,
  });
  rmSync(folder, { recursive: true });
});

/** The OpenAI fixture rewritten: tensors dropped, renamed, reshaped or cast. */
async function variant(
  out: string,
  change: (
    name: string,
    t: { dtype: SafetensorsDtype; shape: number[]; data: Uint8Array },
  ) => { name: string; dtype: SafetensorsDtype; shape: number[]; data: Uint8Array } | null,
) {
  const f = parseSafetensors(readFileSync(path.join(dir, 'openai.safetensors')));
  const tensors = [...f.tensors].flatMap(([name, t]) => {
    const c = change(name, { dtype: t.dtype, shape: t.shape, data: new Uint8Array(t.bytes) });
    return c ? [c] : [];
  });
  await writeSafetensors(out, tensors);
}

/** float32 → IEEE half (round to nearest even), as little-endian bytes. */
function toF16(bytes: Uint8Array): Uint8Array {
  const f = new Float32Array(bytes.slice().buffer),
    out = new Uint16Array(f.length),
    u = new Uint32Array(f.buffer);
  for (let i = 0; i < f.length; i++) {
    const x = u[i]!,
      sign = (x >>> 16) & 0x8000,
      exp = ((x >>> 23) & 0xff) - 127 + 15,
      mant = x & 0x7fffff;
    if (exp <= 0) out[i] = sign | Math.round((mant | 0x800000) / 2 ** (14 - exp));
    else out[i] = sign | Math.min(0x7c00, (exp << 10) + Math.round(mant / 8192));
  }
  return new Uint8Array(out.buffer);
}

test('broken, incomplete and foreign checkpoints are refused with the tensor and the layout named; fp16 loads', async (t) => {
  const out = tmp();
  const file = (n: string) => path.join(out, n);
  const refuse = (p: string, message: RegExp) =>
    t.throwsAsync(Rils.fromPretrained(p), { instanceOf: RilsWeightsError, message });
  const bytes = readFileSync(path.join(dir, 'openai.safetensors'));
  writeFileSync(file('cut.safetensors'), bytes.subarray(0, bytes.length >> 1));
  await refuse(file('cut.safetensors'), /not a valid safetensors file/);
  writeFileSync(file('cut.pt'), readFileSync(path.join(dir, 'openai-jit.pt')).subarray(0, 300_000));
  await refuse(file('cut.pt'), /cut\.pt is not a TorchScript archive LibTorch can read/);
  await refuse(path.join(dir, 'not-clip.pt'), /read as a TorchScript archive .*: no 'visual\.conv1\.weight'/);
  await variant(file('missing.safetensors'), (n, x) => (n === 'visual.proj' ? null : { name: n, ...x }));
  await refuse(
    file('missing.safetensors'),
    /missing\.safetensors \(read as OpenAI\/open_clip CLIP safetensors\): 'visual\.proj' is missing/,
  );
  await variant(file('renamed.safetensors'), (n, x) => ({ name: n === 'ln_final.bias' ? 'ln_final.b' : n, ...x }));
  await refuse(file('renamed.safetensors'), /'ln_final\.b' is not a parameter/);
  await variant(file('shape.safetensors'), (n, x) => ({
    name: n,
    ...x,
    shape: n === 'visual.proj' ? [64, 128] : x.shape,
  }));
  await refuse(file('shape.safetensors'), /'visual\.proj' has shape \[64, 128\] where the model needs \[128, 64\]/);
  mkdirSync(file('hf-empty'));
  copyFileSync(path.join(dir, 'hf', 'config.json'), path.join(file('hf-empty'), 'config.json'));
  await refuse(file('hf-empty'), /has no model\.safetensors/);
  mkdirSync(file('hf-cut'));
  const hfBytes = readFileSync(path.join(dir, 'hf', 'model.safetensors'));
  writeFileSync(path.join(file('hf-cut'), 'model.safetensors'), hfBytes.subarray(0, hfBytes.length - 1000));
  await refuse(file('hf-cut'), /not a valid safetensors file/);
  await variant(file('f16.safetensors'), (n, x) => ({ name: n, ...x, dtype: 'F16', data: toF16(x.data) }));
  const [f16, f32] = [
    await Rils.fromPretrained(file('f16.safetensors')),
    await Rils.fromPretrained(path.join(dir, 'openai.safetensors')),
  ];
  const images = new Float32Array(3 * 32 * 32 * 2).map((_, i) => Math.sin(i));
  const [a, b] = [
    (await f16.encodeImages({ images, batchSize: 2 })).embeddings,
    (await f32.encodeImages({ images, batchSize: 2 })).embeddings,
  ];
  t.true(
    a.every((v, i) => Math.abs(v - b[i]!) < 5e-3),
    'fp16 weights cast to fp32 give the embeddings within fp16 precision',
  );
  f16.dispose();
  f32.dispose();
  rmSync(out, { recursive: true });
});
