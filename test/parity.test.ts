// Parity with the PyTorch reference (../shared/reference/rils_ref.py) on committed fixtures:
// losses from the same weights, inputs and mask noise; weights after AdamW steps; seeded init.
import test from 'ava';
import type { ExecutionContext } from 'ava';

import { Rils, runtimeInfo } from '../lib/index.js';
import type { Batch, RilsOptions } from '../lib/index.js';
import { snapshot } from './helpers/batches.js';
import {
  PARITY_CONFIG,
  compareWeights,
  expected,
  firstMoments,
  fixture,
  isKeyBias,
  maxAbsDiff,
  parityBatch,
  parityModel,
  readTensors,
  relErr,
  splitFeatures,
  trainWithGradients,
} from './helpers/parity.js';

// The fixtures come from the reference on Debian's LibTorch 1.13, the CI build's own. Built against
// another LibTorch (2.x: other kernels, fused attention), near-zero gradients differ by rounding,
// and Adam turns that into weight steps of up to ~5% of lr (measured 4.9e-5 at lr 1e-3 on 2.13):
// weights are then held to 1e-4 (10% of lr); losses keep 1e-4 relative either way.
const WEIGHT_TOLERANCE = runtimeInfo().libtorchVersion.startsWith('1.13') ? 1e-5 : 1e-4;

const MODES: Record<string, RilsOptions> = {
  default: {},
  'no-gate': { retrievalGate: false },
  'no-detach-text-prototypes': { detachTextPrototypes: false },
  'clip-local-grad': { clipLocalGrad: true },
};

for (const weights of ['init', 'trained']) {
  for (const [mode, options] of Object.entries(MODES)) {
    test(`loss of ${weights} weights (${mode}) matches the reference to 1e-4 relative`, async (t) => {
      const ref = expected[`loss/${weights}/${mode}`]!;
      const model = await parityModel(`${weights}.safetensors`, options);
      const s = await model.evaluateLoss(parityBatch());
      for (const [ours, theirs] of [
        [s.loss, ref.loss],
        [s.clipLoss, ref.clip_loss],
        [s.reconLoss, ref.recon_loss],
        [s.reconKl, ref.recon_kl],
      ] as const) {
        t.true(relErr(ours, theirs!) < 1e-4, `${ours} vs ${theirs}`);
      }
      t.is(s.clipAcc * 100, ref.clip_acc!);
      t.is(s.gatedPatches, ref.n_recon_patches!);
      t.is(s.maskedPatches, 8 * (64 - 16));
      t.true(Math.abs(s.logitScale - Math.exp(ref.logit_scale!)) < 1e-5);
      model.dispose();
    });
  }
}

for (const [mode, options] of Object.entries(MODES)) {
  test(`one AdamW step (${mode}) gives the reference's weights to 1e-5`, async (t) => {
    const ref = expected[`step1/${mode}`]!;
    const model = await parityModel('trained.safetensors', { ...options, lr: 1e-3, weightDecay: 0.5 });
    const {
      stats: [s],
      smallestGradients,
    } = await trainWithGradients(model, 1);
    t.true(relErr(s!.loss, ref.loss!) < 1e-4);
    t.true(s!.updated);
    t.is(s!.step, 1);
    t.true(Math.abs(Math.log(s!.logitScale) - ref.logit_scale_after!) < 1e-6);
    const { worst, where, keyBiasWorst, tinyGradientWorst, tinyGradientShare } = compareWeights(
      await snapshot(model),
      readTensors(`step1-${mode}.safetensors`),
      smallestGradients,
    );
    t.true(tinyGradientShare < 0.01, `${tinyGradientShare} of the entries have a gradient below 1e-6`);
    t.true(worst < WEIGHT_TOLERANCE, `max |Δ| ${worst} at ${where}`);
    t.true(keyBiasWorst <= 2 * 1e-3, `text key bias |Δ| ${keyBiasWorst}`);
    t.true(tinyGradientWorst <= 2 * 1e-3, `|Δ| where |gradient| < 1e-6: ${tinyGradientWorst}`);
    model.dispose();
  });
}

test("one step's gradients (the first AdamW moments) match the reference's", async (t) => {
  // Adam's update is scale-free per parameter, so weights after a step barely show a gradient that
  // is off by a factor; after one step exp_avg = (1 − β1)·gradient shows it directly.
  const model = await parityModel('trained.safetensors', { lr: 1e-3, weightDecay: 0.5 });
  await model.trainStep(parityBatch());
  const ours = await firstMoments(model);
  let worst = 0,
    where = '',
    compared = 0;
  for (const [name, theirs] of readTensors('step1-default-moments.safetensors')) {
    if (!name.startsWith('exp_avg.')) continue;
    const param = name.slice('exp_avg.'.length);
    const mine = ours.get(param)!;
    t.is(mine.length, theirs.length, name);
    const scale = Math.max(...Array.from(theirs, Math.abs), 1e-12);
    for (let i = 0; i < theirs.length; i++) {
      if (isKeyBias(param, i, theirs.length)) continue; // rounding noise in both (see compareWeights)
      const d = Math.abs(mine[i]! - theirs[i]!) / scale;
      if (d > worst) [worst, where] = [d, name];
    }
    compared++;
  }
  t.true(compared > 100, `${compared} moments compared`);
  t.true(worst < 1e-4, `max |Δ| / max |g| = ${worst} at ${where}`);
  t.log(`max |Δ| / max |g| = ${worst.toExponential(2)} at ${where}`);
  model.dispose();
});

test('three AdamW steps (moments and bias correction) match the reference to 1e-5', async (t) => {
  const ref = expected['step3/default'] as unknown as { steps: Record<string, number>[] };
  const model = await parityModel('trained.safetensors', { lr: 1e-3, weightDecay: 0.5 });
  const { stats, smallestGradients } = await trainWithGradients(model, 3);
  stats.forEach((s, i) =>
    t.true(relErr(s.loss, ref.steps[i]!.loss!) < 1e-4, `step ${i}: ${s.loss} vs ${ref.steps[i]!.loss}`),
  );
  const { worst, where, keyBiasWorst, tinyGradientWorst, tinyGradientShare } = compareWeights(
    await snapshot(model),
    readTensors('step3-default.safetensors'),
    smallestGradients,
  );
  t.true(tinyGradientShare < 0.01, `${tinyGradientShare} of the entries have a gradient below 1e-6`);
  t.true(worst < WEIGHT_TOLERANCE, `max |Δ| ${worst} at ${where}`);
  t.true(keyBiasWorst <= 2 * 3 * 1e-3, `text key bias |Δ| ${keyBiasWorst}`);
  t.true(tinyGradientWorst <= 2 * 3 * 1e-3, `|Δ| where |gradient| < 1e-6: ${tinyGradientWorst}`);
  model.dispose();
});

// One step from `batch` against the reference's loss terms (expected[refKey]) and weights (stepFile).
async function checkStep(t: ExecutionContext, model: Rils, batch: Batch, refKey: string, stepFile: string) {
  const ref = expected[refKey]!;
  const {
    stats: [s],
    smallestGradients,
  } = await trainWithGradients(model, 1, batch);
  for (const [ours, reference] of [
    [s!.loss, ref.loss],
    [s!.clipLoss, ref.clip_loss],
    [s!.reconLoss, ref.recon_loss],
  ] as const) {
    t.true(relErr(ours, reference!) < 1e-4, `${ours} vs ${reference}`);
  }
  const { worst, where, keyBiasWorst, tinyGradientWorst, tinyGradientShare } = compareWeights(
    await snapshot(model),
    readTensors(stepFile),
    smallestGradients,
  );
  t.true(worst < WEIGHT_TOLERANCE, `max |Δ| ${worst} at ${where}`);
  t.true(keyBiasWorst <= 2 * 1e-3 && tinyGradientWorst <= 2 * 1e-3 && tinyGradientShare < 0.01);
}

// max |ours − reference| within 1e-5 of the reference's largest |entry|.
function closeToScale(t: ExecutionContext, name: string, ours: ArrayLike<number>, reference: Float32Array) {
  const scale = Math.max(...Array.from(reference, Math.abs));
  t.true(maxAbsDiff(ours, reference) < 1e-5 * scale, `${name}: max |Δ| ${maxAbsDiff(ours, reference)} of ${scale}`);
}

test('a 77-token context (the text tower run in length groups) matches the reference: embeddings and a step', async (t) => {
  // 24 captions of random lengths: rils cuts the text tower to 3 length groups, the reference runs
  // all 77 positions of every caption.
  const batch = parityBatch('long-text-inputs.safetensors', 24);
  const model = await Rils.create({
    ...PARITY_CONFIG,
    contextLength: 77,
    seed: 0,
    lr: 1e-3,
    weightDecay: 0.5,
    retrievalGate: false,
  });
  await model.loadWeights(fixture('long-text-init.safetensors'));
  const text = (await model.encodeTexts({ tokens: batch.tokens, batchSize: 24 }, { normalize: false })).embeddings;
  closeToScale(
    t,
    'text embeddings',
    text,
    readTensors('long-text-encode.safetensors').get('text_embed') as Float32Array,
  );
  await checkStep(t, model, batch, 'step1/long-text', 'long-text-step1.safetensors');
  model.dispose();
});

// The odd-width model (36 channels, heads of 12) with a fixture's weights, and its encoders checked
// against the reference's encode of the odd-width batch: embeddings, patch and cls tokens.
const ODD_WIDTH: RilsOptions = {
  ...PARITY_CONFIG,
  visionWidth: 36,
  visionHeads: 3,
  decoderWidth: 36,
  decoderHeads: 3,
  textWidth: 36,
  textHeads: 3,
  embedDim: 36,
};

async function checkOddWidthEncode(t: ExecutionContext, model: Rils, batch: Batch, encodeFile: string) {
  const theirs = readTensors(encodeFile);
  const image = await model.encodeImages(
    { images: batch.images, batchSize: 8 },
    { normalize: false, patchTokens: true, clsToken: true },
  );
  const text = await model.encodeTexts({ tokens: batch.tokens, batchSize: 8 }, { normalize: false });
  const { cls, patches } = splitFeatures(theirs.get('image_features') as Float32Array, 8, 64, 36);
  closeToScale(t, 'image embeddings', image.embeddings, theirs.get('image_embed') as Float32Array);
  closeToScale(t, 'patch tokens', image.patchTokens!, patches);
  closeToScale(t, 'cls tokens', image.clsToken!, cls);
  closeToScale(t, 'text embeddings', text.embeddings, theirs.get('text_embed') as Float32Array);
}

test('widths that are no multiple of 16 (36, heads of 12) match the reference: embeddings, features and a step', async (t) => {
  // The fused CPU kernels (LayerNorm rows, attention heads, activations) run their SIMD loops in
  // blocks of 16 and the rest in scalar remainders: with 36 channels and 65 tokens both run.
  const batch = parityBatch('odd-width-inputs.safetensors', 8);
  const model = await Rils.create({ ...ODD_WIDTH, seed: 0, lr: 1e-3, weightDecay: 0.5, retrievalGate: false });
  await model.loadWeights(fixture('odd-width-init.safetensors'));
  await checkOddWidthEncode(t, model, batch, 'odd-width-encode.safetensors');
  await checkStep(t, model, batch, 'step1/odd-width', 'odd-width-step1.safetensors');
  model.dispose();
});

test("large biases everywhere (the text k bias included) give the reference's embeddings and features", async (t) => {
  // At inference the fused attention adds the q/k/v biases itself instead of writing them into the
  // projection's output; the other fixtures' biases are zero or small.
  const model = await Rils.create({ ...ODD_WIDTH, seed: 0 });
  await model.loadWeights(fixture('odd-width-biased.safetensors'));
  await checkOddWidthEncode(
    t,
    model,
    parityBatch('odd-width-inputs.safetensors', 8),
    'odd-width-biased-encode.safetensors',
  );
  model.dispose();
});

test('a seed gives the same initial weights as the reference (rils_ref.py init --seed 0)', async (t) => {
  const model = await Rils.create({ ...PARITY_CONFIG, seed: 0 });
  const ours = await snapshot(model);
  const theirs = readTensors('init.safetensors');
  t.deepEqual([...ours.keys()], [...theirs.keys()], 'same names in the same (official) order');
  let worst = 0;
  for (const [name, value] of theirs) worst = Math.max(worst, maxAbsDiff(ours.get(name)!, value));
  t.true(worst < 1e-6, `max |Δ| ${worst}`);
  model.dispose();
});

test('saved weights round-trip bit for bit', async (t) => {
  const model = await parityModel('trained.safetensors');
  const theirs = readTensors('trained.safetensors');
  const ours = await snapshot(model);
  for (const [name, value] of theirs) t.is(maxAbsDiff(ours.get(name)!, value), 0, name);
  model.dispose();
});
