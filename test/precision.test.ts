// precision: 'bf16' on the CPU: mixed precision where the CPU has bf16 units and the addon is built
// against LibTorch >= 2, a clear error or fp32 with a warning elsewhere, and its accuracy against
// the reference's fp32 losses on the parity fixtures. Which half runs depends on the build: CI runs
// the suite against LibTorch 1.13 (the error and the fallback) and 2.x (bf16 itself).
import { readFileSync } from 'node:fs';

import test from 'ava';

import { Rils, RilsDeviceError, RilsInputError, runtimeInfo } from '../lib/index.js';
import type { Precision } from '../lib/index.js';
import { snapshot } from './helpers/batches.js';
import { expected, parityBatch, parityModel, relErr } from './helpers/parity.js';

const info = runtimeInfo();
const cpuFlags = (/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf-8'))?.[1] ?? '').trim().split(/\s+/);
const hasUnits = cpuFlags.includes('avx512_bf16') || cpuFlags.includes('amx_bf16');
const bf16 = info.cpuBf16.available;
const withBf16 = bf16 ? test : test.skip;
const withoutBf16 = bf16 ? test.skip : test;

/** Cosine similarity of two equal-length vectors. */
function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

test('runtimeInfo says whether bf16 can run on the CPU: bf16 units and LibTorch >= 2', (t) => {
  t.is(info.cpuBf16.avx512Bf16, cpuFlags.includes('avx512_bf16'));
  t.is(info.cpuBf16.amxBf16, cpuFlags.includes('amx_bf16'));
  t.is(bf16, hasUnits && !info.libtorchVersion.startsWith('1.'));
  t.is(info.cpuBf16.reason === '', bf16);
  if (!bf16) t.regex(info.cpuBf16.reason, hasUnits ? /LibTorch 1\.13/ : /no bf16 units/);
  t.regex(info.cpuGemms, /^fp32 linear: .+; fp32 attention: .+; bf16: .+/);
});

test('bad precision options are rejected before a model is built', async (t) => {
  await t.throwsAsync(Rils.create({ preset: 'micro', precision: 'fp16' as Precision }), {
    instanceOf: RilsInputError,
    message: "Expected 'auto', 'fp32' or 'bf16' for precision but received \"fp16\"",
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', precision: 'bf16', onUnsupportedPrecision: 'warn' as 'fp32' }), {
    instanceOf: RilsInputError,
    message: "Expected 'throw' or 'fp32' for onUnsupportedPrecision but received \"warn\"",
  });
});

test('on the CPU the default is fp32, and asked for by name', async (t) => {
  for (const precision of [undefined, 'auto', 'fp32'] as const) {
    const model = await Rils.create({ preset: 'micro', vocabSize: 100, seed: 0, ...(precision ? { precision } : {}) });
    t.is(model.precision, 'fp32', String(precision));
    model.dispose();
  }
});

withoutBf16('where bf16 cannot run, precision bf16 rejects saying why, or runs fp32 with a warning', async (t) => {
  await t.throwsAsync(parityModel('trained.safetensors', { precision: 'bf16' }), {
    instanceOf: RilsDeviceError,
    message: `Precision 'bf16' cannot run on cpu: ${info.cpuBf16.reason}`,
  });
  const warnings: (Error & { code?: string })[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  const model = await parityModel('trained.safetensors', { precision: 'bf16', onUnsupportedPrecision: 'fp32' });
  await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on the next tick
  process.off('warning', onWarning);
  t.is(model.precision, 'fp32');
  t.true(
    warnings.some((w) => w.code === 'RILS_PRECISION' && w.message.includes(info.cpuBf16.reason)),
    warnings.map(String).join('; '),
  );
  const fp32 = await parityModel('trained.safetensors');
  t.is((await model.evaluateLoss(parityBatch())).loss, (await fp32.evaluateLoss(parityBatch())).loss);
  model.dispose();
  fp32.dispose();
});

for (const weights of ['init', 'trained']) {
  for (const [mode, options] of [
    ['default', {}],
    ['no-gate', { retrievalGate: false }],
  ] as const) {
    withBf16(
      `bf16 loss of ${weights} weights (${mode}) is within 2e-2 relative of the reference's fp32, and not fp32's`,
      async (t) => {
        const ref = expected[`loss/${weights}/${mode}`]!;
        const model = await parityModel(`${weights}.safetensors`, { ...options, precision: 'bf16' });
        t.is(model.precision, 'bf16');
        const s = await model.evaluateLoss(parityBatch());
        for (const [name, ours, theirs] of [
          ['loss', s.loss, ref.loss],
          ['clip', s.clipLoss, ref.clip_loss],
          ['recon', s.reconLoss, ref.recon_loss],
        ] as const) {
          t.true(relErr(ours, theirs!) < 2e-2, `${name}: ${ours} vs ${theirs}`);
        }
        // The towers really ran in bf16: fp32 gives each term to 1e-4 (parity.test.ts).
        const off = Math.max(
          relErr(s.loss, ref.loss!),
          relErr(s.clipLoss, ref.clip_loss!),
          relErr(s.reconLoss, ref.recon_loss!),
        );
        t.true(off > 1e-4, `the terms are within ${off} of fp32's`);
        model.dispose();
      },
    );
  }
}

withBf16('a bf16 step keeps fp32 master weights and moves them as the fp32 step does', async (t) => {
  const [fp32, mixed] = await Promise.all(
    ['fp32', 'bf16'].map((precision) =>
      parityModel('trained.safetensors', { lr: 1e-3, weightDecay: 0.5, precision: precision as Precision }),
    ),
  );
  const before = await snapshot(fp32!);
  const [a, b] = [await fp32!.trainStep(parityBatch()), await mixed!.trainStep(parityBatch())];
  t.true(b.updated && !b.nonFinite);
  t.true(relErr(b.loss, a.loss) < 2e-2, `${b.loss} vs ${a.loss}`);
  t.true(relErr(b.gradNorm, a.gradNorm) < 5e-2, `gradient norm ${b.gradNorm} vs ${a.gradNorm}`);
  const [after32, after16] = [await snapshot(fp32!), await snapshot(mixed!)];
  // Per tensor, the bf16 step's update against fp32's: Adam's steps are ±lr wherever the gradient
  // is clear of rounding, so most of each update agrees; the master weights moved by less than lr.
  let agreeing = 0,
    total = 0;
  for (const [name, w0] of before) {
    const w32 = after32.get(name)!,
      w16 = after16.get(name)!;
    t.true(w16 instanceof Float32Array, name);
    for (let i = 0; i < w0.length; i++) {
      const d32 = w32[i]! - w0[i]!,
        d16 = w16[i]! - w0[i]!;
      total += 1;
      if (Math.abs(d16 - d32) <= 0.25 * 1e-3) agreeing += 1;
    }
  }
  t.true(agreeing / total > 0.9, `${agreeing} of ${total} weight updates within a quarter of lr of fp32's`);
  fp32!.dispose();
  mixed!.dispose();
});

withBf16("bf16 image and text embeddings are fp32's to bf16 rounding", async (t) => {
  const [fp32, mixed] = await Promise.all(
    ['fp32', 'bf16'].map((precision) => parityModel('trained.safetensors', { precision: precision as Precision })),
  );
  const batch = parityBatch();
  for (const [name, a, b] of [
    ['images', (await fp32!.encodeImages(batch)).embeddings, (await mixed!.encodeImages(batch)).embeddings],
    ['texts', (await fp32!.encodeTexts(batch)).embeddings, (await mixed!.encodeTexts(batch)).embeddings],
  ] as const) {
    t.true(
      a.some((v, i) => v !== b[i]),
      `${name}: bf16 gave fp32's embeddings exactly`,
    );
    for (let row = 0; row < 8; row++) {
      const d = a.length / 8;
      const c = cosine(a.subarray(row * d, (row + 1) * d), b.subarray(row * d, (row + 1) * d));
      t.true(c > 0.999, `${name} ${row}: cosine ${c}`);
    }
  }
  fp32!.dispose();
  mixed!.dispose();
});
