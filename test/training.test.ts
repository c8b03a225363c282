// Training options: loss weights and temperatures, schedule, accumulation, clipping, seeds, uint8 input.
import test from 'ava';

import { Rils, RilsInputError, RilsNativeError } from '../lib/index.js';
import type { RilsOptions } from '../lib/index.js';
import { loadOverflowingWeights, randomBatch, sameWeights, snapshot } from './helpers/batches.js';
import { parityBatch, parityModel } from './helpers/parity.js';

const micro = (o: RilsOptions = {}) => Rils.create({ preset: 'micro', vocabSize: 1000, seed: 3, ...o });

test('reconWeight scales the reconstruction term as added to the loss', async (t) => {
  const batch = parityBatch();
  const half = await (await parityModel('trained.safetensors')).evaluateLoss(batch);
  const none = await (await parityModel('trained.safetensors', { reconWeight: 0 })).evaluateLoss(batch);
  const one = await (await parityModel('trained.safetensors', { reconWeight: 1 })).evaluateLoss(batch);
  t.true(half.reconLoss > 0);
  t.is(none.reconLoss, 0);
  t.is(none.loss, none.clipLoss);
  t.true(Math.abs(one.reconLoss - one.reconKl) < 1e-7);
  t.true(Math.abs(half.reconLoss - 0.5 * half.reconKl) < 1e-7);
});

test('tauStudent and tauTeacher change the KL', async (t) => {
  const batch = parityBatch();
  const base = await (await parityModel('trained.safetensors')).evaluateLoss(batch);
  const s = await (await parityModel('trained.safetensors', { tauStudent: 0.5 })).evaluateLoss(batch);
  const te = await (await parityModel('trained.safetensors', { tauTeacher: 0.5 })).evaluateLoss(batch);
  t.not(s.reconKl, base.reconKl);
  t.not(te.reconKl, base.reconKl);
  t.is(s.clipLoss, base.clipLoss);
});

test('the chunked KL gives the same loss and update whatever the chunk size', async (t) => {
  const batch = parityBatch();
  const whole = await parityModel('trained.safetensors');
  const tiny = await parityModel('trained.safetensors', { klChunkElements: 1 }); // one image per block
  const a = await whole.trainStep(batch);
  const b = await tiny.trainStep(batch);
  t.true(Math.abs(a.reconKl - b.reconKl) < 1e-6);
  const wa = await snapshot(whole),
    wb = await snapshot(tiny);
  for (const [k, v] of wa)
    t.true(
      v.every((x, i) => Math.abs(x - wb.get(k)![i]!) < 1e-6),
      k,
    );
});

test('warmup then cosine schedule, per optimizer step', async (t) => {
  const model = await micro({ lr: 1e-3, warmupStartLr: 1e-5, minLr: 1e-4, warmupSteps: 3, totalSteps: 7 });
  const batch = randomBatch(model, 4);
  const lrs: number[] = [];
  for (let i = 0; i < 8; i++) lrs.push((await model.trainStep(batch)).lr);
  const expected = [1e-5, 1e-5 + (1e-3 - 1e-5) / 2, 1e-3];
  for (let i = 3; i < 8; i++)
    expected.push(1e-4 + 0.5 * (1e-3 - 1e-4) * (1 + Math.cos(Math.PI * Math.min(1, (i - 3) / 4))));
  lrs.forEach((lr, i) => t.true(Math.abs(lr - expected[i]!) < 1e-12, `step ${i}: ${lr} vs ${expected[i]}`));
  t.is(model.step, 8);
});

test('gradient accumulation updates every accumulationSteps calls', async (t) => {
  const model = await micro({ accumulationSteps: 3 });
  const batch = randomBatch(model, 4);
  const before = await snapshot(model);
  const s1 = await model.trainStep(batch);
  const s2 = await model.trainStep(batch);
  t.deepEqual([s1.updated, s2.updated, s1.step, s2.step], [false, false, 0, 0]);
  t.true(Number.isNaN(s1.gradNorm));
  t.true(sameWeights(before, await snapshot(model)), 'no update while accumulating');
  const s3 = await model.trainStep(batch);
  t.deepEqual([s3.updated, s3.step], [true, 1]);
  t.true(s3.gradNorm > 0);
  t.false(sameWeights(before, await snapshot(model)));
});

test('accumulating k identical micro-batches equals one step on that batch', async (t) => {
  const batch = parityBatch();
  const once = await parityModel('trained.safetensors', { lr: 1e-3 });
  const thrice = await parityModel('trained.safetensors', { lr: 1e-3, accumulationSteps: 3 });
  const a = await once.trainStep(batch);
  for (let i = 0; i < 3; i++) await thrice.trainStep(batch);
  const wa = await snapshot(once),
    wb = await snapshot(thrice);
  let worst = 0;
  for (const [k, v] of wa)
    if (!k.endsWith('in_proj_bias')) v.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - wb.get(k)![i]!))));
  t.true(worst < 1e-5, `max |Δ| ${worst}`);
  t.true(a.updated);
});

test('gradient clipping reports the unclipped norm and changes the trajectory', async (t) => {
  const batch = parityBatch();
  const plain = await parityModel('trained.safetensors');
  const clipped = await parityModel('trained.safetensors', { gradClipNorm: 1e-3 });
  const a = await plain.trainStep(batch);
  const b = await clipped.trainStep(batch);
  t.true(Math.abs(a.gradNorm - b.gradNorm) < 1e-6 && b.gradNorm > 1e-3);
  // Adam's first step is invariant to a gradient scale; the second sees a different m / √v mix.
  await plain.trainStep(batch);
  await clipped.trainStep(batch);
  t.false(sameWeights(await snapshot(plain), await snapshot(clipped)));
});

test('the logit scale is clamped to logitScaleMax after every step', async (t) => {
  const model = await micro({ logitScaleInit: 4.6, logitScaleMax: 4.6052, lr: 0.1 });
  const batch = randomBatch(model, 4);
  for (let i = 0; i < 3; i++) {
    const s = await model.trainStep(batch);
    t.true(Math.log(s.logitScale) <= 4.6052 + 1e-6 && Math.log(s.logitScale) >= 0);
  }
});

test('a seed makes training repeatable bit for bit; another seed does not', async (t) => {
  const run = async (seed: number) => {
    const model = await micro({ seed });
    const batch = randomBatch(model, 4);
    const losses = [];
    for (let i = 0; i < 3; i++) losses.push((await model.trainStep(batch)).loss); // masks from the seeded generator
    return { losses, weights: await snapshot(model) };
  };
  const a = await run(11),
    b = await run(11),
    c = await run(12);
  t.deepEqual(a.losses, b.losses);
  t.true(sameWeights(a.weights, b.weights));
  t.notDeepEqual(a.losses, c.losses);
});

test('uint8 NHWC images are normalised natively like the float path', async (t) => {
  const model = await micro();
  const { imageSize: S } = model.config;
  const B = 4;
  const rgb = new Uint8Array(B * S * S * 3).map((_, i) => (i * 37) % 256);
  const mean = [0.485, 0.456, 0.406],
    std = [0.229, 0.224, 0.225];
  const nchw = new Float32Array(B * 3 * S * S);
  for (let b = 0; b < B; b++)
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++)
        for (let c = 0; c < 3; c++) {
          nchw[((b * 3 + c) * S + y) * S + x] = (rgb[((b * S + y) * S + x) * 3 + c]! / 255 - mean[c]!) / std[c]!;
        }
  const { tokens } = randomBatch(model, B);
  const maskNoise = new Float32Array(B * model.numPatches).map((_, i) => (i * 7919) % 1000);
  const u = await model.evaluateLoss({ images: rgb, tokens, batchSize: B, maskNoise });
  const f = await model.evaluateLoss({ images: nchw, tokens, batchSize: B, maskNoise });
  t.true(Math.abs(u.loss - f.loss) < 1e-5, `${u.loss} vs ${f.loss}`);
  const buffer = Buffer.from(rgb); // a Buffer is a Uint8Array
  t.true(
    Math.abs((await model.evaluateLoss({ images: buffer, tokens, batchSize: B, maskNoise })).loss - u.loss) < 1e-7,
  );
});

test('evaluateLoss changes nothing', async (t) => {
  const model = await micro();
  const before = await snapshot(model);
  await model.evaluateLoss(randomBatch(model, 4));
  t.true(sameWeights(before, await snapshot(model)));
  t.is(model.step, 0);
});

test('a non-finite step is skipped and reported, or thrown with onNonFinite: throw; weights unchanged', async (t) => {
  for (const onNonFinite of ['skip', 'throw'] as const) {
    // Finite weights whose arithmetic overflows: every forward gives NaN.
    const model = await micro({ onNonFinite });
    const batch = randomBatch(model, 4);
    await model.trainStep(batch);
    await loadOverflowingWeights(model);
    const before = await snapshot(model);
    if (onNonFinite === 'skip') {
      const s = await model.trainStep(batch);
      t.true(s.nonFinite);
      t.false(s.updated);
      t.is(s.step, 1);
    } else {
      await t.throwsAsync(model.trainStep(batch), {
        instanceOf: RilsNativeError,
        message: /not finite; the update was skipped/,
      });
    }
    t.true(sameWeights(before, await snapshot(model)), 'the skipped step changed nothing');
  }
  await t.throwsAsync(micro({ onNonFinite: 'ignore' as 'skip' }), { instanceOf: RilsInputError });
});
