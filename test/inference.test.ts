// Inference: embeddings and classifier logits against the reference, zero-copy outputs,
// zero-shot classification, patch semantics, retrieval, image files, bad input.
import test from 'ava';
import sharp from 'sharp';

import { native } from '../lib/addon/binding.js';
import {
  ByteTokenizer,
  CLIP80_TEMPLATES,
  Rils,
  RilsInputError,
  RilsStateError,
  SLIP7_TEMPLATES,
  loadImages,
  renderHeatmap,
  retrievalRecall,
} from '../lib/index.js';
import { randomBatch } from './helpers/batches.js';
import { parityBatch, parityModel, readTensors, splitFeatures } from './helpers/parity.js';

const relClose = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4) => {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return a.length === b.length && worst <= tol * Math.max(scale, 1e-6);
};

test('image and text embeddings, patch and cls tokens match the reference (1e-4 relative)', async (t) => {
  const model = await parityModel('trained.safetensors');
  const ref = readTensors('encode.safetensors');
  const { images, tokens } = parityBatch();
  const raw = await model.encodeImages(
    { images, batchSize: 8 },
    { normalize: false, patchTokens: true, clsToken: true, patchEmbeddings: true },
  );
  t.true(relClose(raw.embeddings, ref.get('image_embed')!));
  const unit = await model.encodeImages({ images, batchSize: 8 });
  t.true(relClose(unit.embeddings, ref.get('image_embed_norm')!));
  const { cls, patches } = splitFeatures(ref.get('image_features') as Float32Array, 8, 64, 32);
  t.true(relClose(raw.patchTokens!, patches));
  t.true(relClose(raw.clsToken!, cls));
  t.is(raw.patchEmbeddings!.length, 8 * 64 * 32);
  const text = await model.encodeTexts({ tokens, batchSize: 8 }, { normalize: false });
  t.true(relClose(text.embeddings, ref.get('text_embed')!));
  const textUnit = await model.encodeTexts({ tokens, batchSize: 8 });
  t.true(relClose(textUnit.embeddings, ref.get('text_embed_norm')!));
});

test('classifier logits match the reference: exp(logit_scale) × cosine', async (t) => {
  const model = await parityModel('trained.safetensors');
  const ref = readTensors('encode.safetensors');
  const img = ref.get('image_embed_norm')! as Float32Array,
    txt = ref.get('text_embed_norm')! as Float32Array;
  const scale = Math.exp(2.6668574810028076); // the trained fixture's logit_scale (expected.json)
  const expectedLogits = new Float32Array(64);
  for (let i = 0; i < 8; i++)
    for (let j = 0; j < 8; j++) {
      let dot = 0;
      for (let e = 0; e < 32; e++) dot += img[i * 32 + e]! * txt[j * 32 + e]!;
      expectedLogits[i * 8 + j] = scale * dot;
    }
  const { logits, probabilities } = await model.classLogits({ images: parityBatch().images, batchSize: 8 }, txt, 8);
  t.true(relClose(logits, expectedLogits));
  for (let i = 0; i < 8; i++)
    t.true(Math.abs(probabilities.subarray(i * 8, i * 8 + 8).reduce((a, b) => a + b) - 1) < 1e-5);
});

test('outputs are zero-copy: backed by the native tensor, valid after dispose', async (t) => {
  const model = await Rils.create({ preset: 'micro', vocabSize: 1000, seed: 0 });
  const { images, batchSize } = randomBatch(model, 3);
  const out = await model.encodeImages({ images, batchSize }, { patchTokens: true });
  t.true(native.isTensorBacked(out.embeddings.buffer as ArrayBuffer), 'the ArrayBuffer is the tensor memory');
  t.true(native.isTensorBacked(out.patchTokens!.buffer as ArrayBuffer));
  t.false(native.isTensorBacked(new Float32Array(4).buffer));
  const copy = out.embeddings.slice();
  model.dispose();
  t.deepEqual(out.embeddings, copy);
  let norm = 0;
  for (let e = 0; e < 128; e++) norm += out.embeddings[e]! ** 2;
  t.true(Math.abs(norm - 1) < 1e-5);
});

test('zero-shot classification with templates, top-k and a byte tokenizer', async (t) => {
  const tokenizer = new ByteTokenizer({ contextLength: 16 });
  const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, seed: 0, tokenizer });
  const classes = ['zero', 'one', 'two'];
  const clf = await model.zeroShotClassifier(classes, { templates: 'slip7' });
  t.is(clf.weights.length, 3 * 128);
  const { images, batchSize } = randomBatch(model, 4);
  const r = await clf.classify({ images, batchSize }, { topK: 2 });
  t.is(r.top.length, 4);
  for (const row of r.top) {
    t.is(row.labels.length, 2);
    t.true(row.probabilities[0]! >= row.probabilities[1]!);
    t.is(row.labels[0], classes[row.indices[0]!]);
  }
  const custom = await model.zeroShotClassifier(classes, { templates: ['a digit {}', 'the number {}'] });
  t.notDeepEqual(custom.weights, clf.weights);
  t.is(SLIP7_TEMPLATES.length, 7);
  t.is(CLIP80_TEMPLATES.length, 80);
});

test('patch semantics: per-patch probabilities over texts, and a heat-map PNG', async (t) => {
  const tokenizer = new ByteTokenizer({ contextLength: 16 });
  const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, seed: 0, tokenizer });
  const png = await sharp({ create: { width: 48, height: 40, channels: 3, background: { r: 200, g: 30, b: 90 } } })
    .png()
    .toBuffer();
  const s = await model.patchSemantics([png, png], ['a red square', 'a blue circle', 'grass']);
  t.is(s.gridSize, 8);
  t.is(s.probabilities.length, 2 * 64 * 3);
  for (let p = 0; p < 2 * 64; p++) {
    const sum = s.probabilities[p * 3]! + s.probabilities[p * 3 + 1]! + s.probabilities[p * 3 + 2]!;
    t.true(Math.abs(sum - 1) < 1e-5);
  }
  const sharper = await model.patchSemantics([png], ['a red square', 'grass'], {
    temperature: 0.01,
    templates: ['{}'],
  });
  t.is(sharper.probabilities.length, 64 * 2);
  const map = Float32Array.from({ length: 64 }, (_, i) => s.probabilities[i * 3]!);
  const heat = await renderHeatmap(png, map, 8, { size: 64 });
  const meta = await sharp(heat).metadata();
  t.like(meta, { format: 'png', width: 64, height: 64 });
});

test('image files: eval transform (shorter side, centre crop), JPEG/PNG/WebP, bad bytes', async (t) => {
  // 8 wide × 4 tall: left half black, right half white; the centre 4×4 crop spans both halves.
  const raw = Buffer.alloc(8 * 4 * 3);
  for (let y = 0; y < 4; y++) for (let x = 4; x < 8; x++) raw.fill(255, (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
  const img = sharp(raw, { raw: { width: 8, height: 4, channels: 3 } });
  for (const format of ['png', 'webp'] as const) {
    const file = await img.clone().toFormat(format, { lossless: true }).toBuffer();
    const px = await loadImages([file], 4);
    t.is(px.length, 4 * 4 * 3);
    t.true(px[0]! < 40 && px[(4 - 1) * 3]! > 215, `${format}: crop keeps the middle`);
  }
  const jpeg = await img.clone().jpeg().toBuffer();
  t.is((await loadImages([jpeg], 4)).length, 48);
  await t.throwsAsync(loadImages([Buffer.from('not an image')], 4), {
    instanceOf: RilsInputError,
    message: /Cannot decode/,
  });
  await t.throwsAsync(loadImages(['/no/such/file.png'], 4), { instanceOf: RilsInputError });
  await t.throwsAsync(loadImages([], 4), { instanceOf: RilsInputError });
});

test('image↔text retrieval recall@k', async (t) => {
  const e = new Float32Array([1, 0, 0, 1, 0.7, 0.7]);
  const txt = new Float32Array([1, 0.1, 0.1, 1, 0.6, 0.8]);
  const r = await retrievalRecall(e, txt, { count: 3, ks: [1, 2] });
  t.is(r.imageToText[1], 1);
  t.is(r.textToImage[2], 1);
  const swapped = new Float32Array([0, 1, 1, 0, 0.7, 0.7]);
  t.true((await retrievalRecall(swapped, txt, { count: 3, ks: [1] })).imageToText[1]! < 1);
  await t.throwsAsync(retrievalRecall(e, new Float32Array(4), { count: 3 }), { instanceOf: RilsInputError });
});

test('bad inference input: typed errors', async (t) => {
  const tokenizer = new ByteTokenizer({ contextLength: 16 });
  const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, seed: 0, tokenizer });
  await t.throwsAsync(model.zeroShotClassifier([]), {
    instanceOf: RilsInputError,
    message: /non-empty array of strings/,
  });
  await t.throwsAsync(model.zeroShotClassifier(['a'], { templates: ['no placeholder'] }), {
    instanceOf: RilsInputError,
    message: /templates/,
  });
  await t.throwsAsync(model.encodeTexts([]), { instanceOf: RilsInputError });
  await t.throwsAsync(model.encodeTexts({ tokens: new Int32Array(5), batchSize: 1 }), {
    instanceOf: RilsInputError,
    message: /tokens/,
  });
  await t.throwsAsync(model.encodeImages({ images: new Float32Array(7), batchSize: 1 }), {
    instanceOf: RilsInputError,
    message: /images/,
  });
  await t.throwsAsync(model.encodeImages([Buffer.from('garbage')]), {
    instanceOf: RilsInputError,
    message: /Cannot decode/,
  });
  await t.throwsAsync(
    model.classLogits({ images: new Float32Array(3 * 32 * 32), batchSize: 1 }, new Float32Array(5), 2),
    { instanceOf: RilsInputError },
  );
  await t.throwsAsync(model.patchSemantics([Buffer.from('x')], ['a'], { temperature: 0 }), {
    instanceOf: RilsInputError,
    message: /temperature/,
  });
  const noTok = await Rils.create({ preset: 'micro', vocabSize: 1000, seed: 0 });
  await t.throwsAsync(noTok.encodeTexts(['hello']), { instanceOf: RilsInputError, message: /need a tokenizer/ });
  await t.throwsAsync(noTok.encodeTexts(['hello'], { tokenizer }), {
    instanceOf: RilsInputError,
    message: /does not fit/,
  });
  noTok.dispose();
  await t.throwsAsync(noTok.encodeImages({ images: new Float32Array(3 * 32 * 32), batchSize: 1 }), {
    instanceOf: RilsStateError,
  });
});

test('one image of one patch (a single-row GEMM): inference leaves the weights as they were', async (t) => {
  // With one row, the linear layer's output buffer once aliased its bias, and the GEMM wrote into it.
  const model = await Rils.create({
    preset: 'micro',
    imageSize: 4,
    patchSize: 4,
    maskRatio: 0,
    vocabSize: 300,
    seed: 0,
  });
  const images = new Float32Array(3 * 4 * 4).map((_, i) => Math.sin(i));
  const first = await model.encodeImages({ images, batchSize: 1 });
  const again = await model.encodeImages({ images, batchSize: 1 });
  t.deepEqual(Array.from(again.embeddings), Array.from(first.embeddings));
  model.dispose();
});
