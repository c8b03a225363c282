// Model structure against WEIGHTS.md, every preset forward + backward, masking and the gate.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Rils, presetConfig } from '../lib/index.js';
import type { PresetName } from '../lib/index.js';
import { randomBatch, snapshot } from './helpers/batches.js';
import { parityBatch, parityModel } from './helpers/parity.js';

const WEIGHTS_MD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/spec/WEIGHTS.md');

/** The parameter table of one preset's section in WEIGHTS.md: name → shape. */
function weightsTable(preset: string): Map<string, number[]> {
  const text = readFileSync(WEIGHTS_MD, 'utf-8');
  const section = text.split('## Preset `')[['vit_b16', 'micro'].indexOf(preset) + 1]!;
  const rows = new Map<string, number[]>();
  for (const m of section.matchAll(/^\| \d+ \| `([^`]+)` \| \[([\d, ]*)\] \|/gm)) {
    rows.set(m[1]!, m[2]!.trim() === '' ? [] : m[2]!.split(',').map((d) => Number(d.trim())));
  }
  return rows;
}

for (const preset of ['vit_b16', 'micro'] as const) {
  test(`${preset}: parameter names, order and shapes equal WEIGHTS.md`, async (t) => {
    const expected = weightsTable(preset);
    t.true(expected.size > 100);
    const model = await Rils.create({ preset, seed: 0 });
    const params = model.parameters();
    t.deepEqual(
      params.map((p) => p.name),
      [...expected.keys()],
    );
    for (const p of params) t.deepEqual(p.shape, expected.get(p.name), p.name);
    const frozen = params.filter((p) => !p.trainable).map((p) => p.name);
    t.deepEqual(frozen, ['visual.pos_embed', 'visual.decoder_pos_embed']);
    if (preset === 'vit_b16') {
      const trainable = params.filter((p) => p.trainable).reduce((a, p) => a + p.numel, 0);
      const decay = params.filter((p) => p.weightDecay).reduce((a, p) => a + p.numel, 0);
      t.is(trainable, 157_730_049);
      t.is(decay, 157_523_968);
    }
    model.dispose();
  });
}

test('presets resolve to the spec table', (t) => {
  const b16 = presetConfig('vit_b16');
  t.like(b16, {
    imageSize: 224,
    patchSize: 16,
    visionWidth: 768,
    visionDepth: 12,
    visionHeads: 12,
    decoderWidth: 768,
    decoderDepth: 1,
    textWidth: 512,
    textLayers: 12,
    textHeads: 8,
    contextLength: 77,
    vocabSize: 49408,
    embedDim: 512,
  });
  t.like(presetConfig('vit_l16'), {
    visionWidth: 1024,
    visionDepth: 24,
    visionHeads: 16,
    textWidth: 768,
    textHeads: 12,
    embedDim: 768,
  });
  t.like(presetConfig('vit_s16'), { visionWidth: 384, visionHeads: 6, textWidth: 384, textHeads: 6, embedDim: 384 });
  t.like(presetConfig('vit_ti16'), { visionWidth: 192, visionHeads: 3, textWidth: 256, textHeads: 4, embedDim: 256 });
  t.like(presetConfig('micro'), {
    imageSize: 32,
    patchSize: 4,
    visionWidth: 128,
    visionDepth: 4,
    textLayers: 3,
    contextLength: 16,
  });
});

test('any preset field can be overridden', async (t) => {
  const model = await Rils.create({
    preset: 'micro',
    vocabSize: 300,
    contextLength: 8,
    visionDepth: 2,
    embedDim: 64,
    seed: 1,
  });
  t.like(model.config, { vocabSize: 300, contextLength: 8, visionDepth: 2, embedDim: 64, visionWidth: 128 });
  t.deepEqual(model.parameters().find((p) => p.name === 'token_embedding.weight')!.shape, [300, 128]);
  t.deepEqual(model.parameters().find((p) => p.name === 'image_projection')!.shape, [128, 64]);
  const s = await model.trainStep(randomBatch(model, 4));
  t.true(Number.isFinite(s.loss));
  model.dispose();
});

// Every preset runs forward and backward, and every trainable parameter receives a gradient:
// with no weight decay, the gate off and prototypes attached, a parameter moves iff its gradient
// is non-zero. (Token-embedding rows of ids not in the batch rightly get none.)
const PRESETS: PresetName[] = process.env.RILS_TEST_LARGE
  ? ['micro', 'vit_ti16', 'vit_s16', 'vit_b16', 'vit_l16']
  : ['micro', 'vit_ti16', 'vit_s16', 'vit_b16'];
for (const preset of PRESETS) {
  test(`${preset}: forward + backward reach every trainable parameter`, async (t) => {
    const model = await Rils.create({
      preset,
      vocabSize: 1000,
      seed: 0,
      weightDecay: 0,
      retrievalGate: false,
      detachTextPrototypes: false,
    });
    const before = await snapshot(model);
    const batch = randomBatch(model, 2);
    const s = await model.trainStep(batch);
    t.true(Number.isFinite(s.loss) && s.updated && s.reconLoss > 0);
    const after = await snapshot(model);
    for (const p of model.parameters()) {
      const a = before.get(p.name)!,
        b = after.get(p.name)!;
      if (!p.trainable) {
        t.deepEqual(a, b, `${p.name} is frozen`);
      } else if (p.name === 'token_embedding.weight') {
        const W = p.shape[1]!;
        // Padding (id 0) sits after EOT: the causal mask keeps it from the pooled EOT feature.
        const used = new Set([...batch.tokens].filter((id) => id !== 0));
        for (const id of used)
          t.true(
            a.subarray(id * W, (id + 1) * W).some((x, i) => x !== b[id * W + i]),
            `row ${id}`,
          );
      } else {
        t.true(
          a.some((x, i) => x !== b[i]),
          `${p.name} received no gradient`,
        );
      }
    }
    model.dispose();
  });
}

test('masking hides floor(N × ratio)-complement patches per image', async (t) => {
  for (const [ratio, keep] of [
    [0.75, 16],
    [0.5, 32],
    [0.9, 6],
    [0, 64],
  ] as const) {
    if (ratio === 0) continue;
    const model = await Rils.create({ preset: 'micro', vocabSize: 1000, maskRatio: ratio, seed: 0 });
    const s = await model.evaluateLoss(randomBatch(model, 3));
    t.is(s.maskedPatches, 3 * (64 - keep), `ratio ${ratio}`);
    model.dispose();
  }
});

test('the retrieval gate: no correctly retrieved image means zero reconstruction loss', async (t) => {
  // The `trained` fixture retrieves all 8 captions correctly; shifting the captions by one makes
  // every image's own caption a wrong one, so nothing passes the gate.
  const batch = parityBatch();
  const L = 16;
  const shifted = new Int32Array(batch.tokens.length);
  for (let b = 0; b < 8; b++) shifted.set(batch.tokens.subarray(((b + 1) % 8) * L, (((b + 1) % 8) + 1) * L), b * L);
  const gated = await parityModel('trained.safetensors');
  const s = await gated.evaluateLoss({ ...batch, tokens: shifted });
  t.is(s.clipAcc, 0);
  t.is(s.gatedPatches, 0);
  t.is(s.gatedFraction, 0);
  t.is(s.reconLoss, 0);
  t.is(s.loss, s.clipLoss);
  const open = await parityModel('trained.safetensors', { retrievalGate: false });
  const u = await open.evaluateLoss({ ...batch, tokens: shifted });
  t.true(u.reconLoss > 0);
  t.is(u.gatedFraction, 1);
  gated.dispose();
  open.dispose();
});
