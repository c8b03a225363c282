// The CUDA checks and the rils side of the GPU benchmark, run by scripts/gpu-check.sh on a GPU
// machine (plain JavaScript over dist/: that machine has Node only as carried, and no tsx).
// Env: REF_JSON (bench/reference_cuda.py's line), BENCH_PRESET, BENCH_BATCH, BENCH_STEPS;
// RILS_GPU_CHECK_DEVICE=cpu dry-runs the same checks here (the CPU stands in for the GPU).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Rils, RilsDeviceError, parseSafetensors, runtimeInfo } from '../dist/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = path.join(root, 'test', 'fixtures', 'parity');
const PARITY = {
  preset: 'micro',
  vocabSize: 1000,
  visionWidth: 32,
  visionHeads: 2,
  decoderWidth: 32,
  decoderHeads: 2,
  textWidth: 32,
  textHeads: 2,
  embedDim: 32,
  seed: 0,
};
const gpu = process.env.RILS_GPU_CHECK_DEVICE ?? 'cuda';
let failed = 0;

async function check(name, fn) {
  const t = performance.now();
  try {
    const detail = await fn();
    console.log(`PASS ${name} (${((performance.now() - t) / 1000).toFixed(1)} s)${detail ? `: ${detail}` : ''}`);
  } catch (error) {
    failed++;
    console.log(`FAIL ${name}: ${error?.stack ?? error}`);
  }
}
const assert = (ok, message) => {
  if (!ok) throw new Error(message);
};
const tensors = (file) => {
  const parsed = parseSafetensors(readFileSync(file));
  const out = new Map();
  for (const [k, t] of parsed.tensors) {
    const bytes = new Uint8Array(t.bytes);
    out.set(
      k,
      t.dtype === 'F32'
        ? new Float32Array(bytes.buffer)
        : t.dtype === 'I32'
          ? new Int32Array(bytes.buffer)
          : Int32Array.from(new BigInt64Array(bytes.buffer), Number),
    );
  }
  return out;
};
const parityBatch = () => {
  const t = tensors(path.join(fixtures, 'inputs.safetensors'));
  return { images: t.get('images'), tokens: t.get('tokens'), maskNoise: t.get('noise'), batchSize: 8 };
};
const expected = JSON.parse(readFileSync(path.join(fixtures, 'expected.json'), 'utf-8'));
const relErr = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-6);
const cosine = (a, b) => {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
};
async function parityModel(device, options = {}) {
  const model = await Rils.create({ ...PARITY, device, ...options });
  await model.loadWeights(path.join(fixtures, 'trained.safetensors'));
  return model;
}
async function weightsOf(model) {
  const file = path.join(os.tmpdir(), `rils-gpu-${process.pid}-${Math.random()}.safetensors`);
  await model.saveWeights(file);
  return tensors(file);
}

const info = runtimeInfo();
console.log(
  `rils on LibTorch ${info.libtorchVersion}, CUDA ${info.cudaAvailable} (${info.cudaDeviceCount} device(s)), addon ${info.addon.variant}`,
);

if (gpu === 'cuda') {
  await check('CUDA is available to the addon', () => {
    assert(info.cudaAvailable && info.cudaDeviceCount >= 1, 'runtimeInfo() sees no CUDA device');
  });
}

await check('loss on CUDA (bf16 towers, fp32 loss) matches the fp32 reference within bf16 error', async () => {
  const ref = expected['loss/trained/default'];
  const model = await parityModel(gpu);
  const s = await model.evaluateLoss(parityBatch());
  model.dispose();
  assert(
    relErr(s.clipLoss, ref.clip_loss) < 0.15 || Math.abs(s.clipLoss - ref.clip_loss) < 0.02,
    `clip ${s.clipLoss} vs ${ref.clip_loss}`,
  );
  assert(relErr(s.reconLoss, ref.recon_loss) < 0.05, `recon ${s.reconLoss} vs ${ref.recon_loss}`);
  return `loss ${s.loss.toFixed(5)} vs reference ${ref.loss.toFixed(5)}, gated ${s.gatedPatches} vs ${ref.n_recon_patches}`;
});

await check('an AdamW step on CUDA moves the weights like the same step on the CPU', async () => {
  const [onGpu, onCpu] = [
    await parityModel(gpu, { lr: 1e-3, weightDecay: 0.5 }),
    await parityModel('cpu', { lr: 1e-3, weightDecay: 0.5 }),
  ];
  const before = await weightsOf(onCpu);
  const [sg, sc] = [await onGpu.trainStep(parityBatch()), await onCpu.trainStep(parityBatch())];
  assert(sg.updated && Number.isFinite(sg.loss) && Number.isFinite(sg.gradNorm), `step on CUDA: ${JSON.stringify(sg)}`);
  const [wg, wc] = [await weightsOf(onGpu), await weightsOf(onCpu)];
  onGpu.dispose();
  onCpu.dispose();
  // Adam's first step is ~lr·sign(g): compare the update directions.
  const dg = [],
    dc = [];
  for (const [name, w0] of before) {
    for (let i = 0; i < w0.length; i++) {
      dg.push(wg.get(name)[i] - w0[i]);
      dc.push(wc.get(name)[i] - w0[i]);
    }
  }
  const c = cosine(dg, dc);
  assert(c > 0.9, `update cosine ${c}`);
  return `loss ${sg.loss.toFixed(5)} (CPU ${sc.loss.toFixed(5)}), cosine of the updates ${c.toFixed(4)}`;
});

await check('embeddings on CUDA match the CPU (cosine > 0.99)', async () => {
  const [onGpu, onCpu] = [await parityModel(gpu), await parityModel('cpu')];
  const b = parityBatch();
  const [eg, ec] = [
    await onGpu.encodeImages({ images: b.images, batchSize: 8 }),
    await onCpu.encodeImages({ images: b.images, batchSize: 8 }),
  ];
  const [tg, tc] = [
    await onGpu.encodeTexts({ tokens: b.tokens, batchSize: 8 }),
    await onCpu.encodeTexts({ tokens: b.tokens, batchSize: 8 }),
  ];
  onGpu.dispose();
  onCpu.dispose();
  const E = 32;
  let worst = 1;
  for (let r = 0; r < 8; r++) {
    worst = Math.min(
      worst,
      cosine(eg.embeddings.subarray(r * E, (r + 1) * E), ec.embeddings.subarray(r * E, (r + 1) * E)),
    );
    worst = Math.min(
      worst,
      cosine(tg.embeddings.subarray(r * E, (r + 1) * E), tc.embeddings.subarray(r * E, (r + 1) * E)),
    );
  }
  assert(worst > 0.99, `worst cosine ${worst}`);
  return `worst cosine ${worst.toFixed(5)}`;
});

await check('a checkpoint saved on CUDA loads on the CPU, bit for bit', async () => {
  const onGpu = await parityModel(gpu, { lr: 1e-3 });
  await onGpu.trainStep(parityBatch());
  const file = path.join(os.tmpdir(), `rils-gpu-ckpt-${process.pid}.safetensors`);
  await onGpu.saveCheckpoint(file, { note: 'gpu' });
  const wg = await weightsOf(onGpu);
  onGpu.dispose();
  const onCpu = await parityModel('cpu', { lr: 1e-3 });
  const extra = await onCpu.loadCheckpoint(file);
  const wc = await weightsOf(onCpu);
  assert(onCpu.step === 1 && extra.note === 'gpu', 'step or extra state lost');
  for (const [name, v] of wg)
    assert(
      v.every((x, i) => Object.is(x, wc.get(name)[i])),
      `${name} differs`,
    );
  onCpu.dispose();
});

await check('a missing CUDA device is a RilsDeviceError', async () => {
  try {
    await Rils.create({ preset: 'micro', vocabSize: 300, device: gpu === 'cuda' ? 'cuda:99' : 'cuda' });
  } catch (error) {
    assert(error instanceof RilsDeviceError, `got ${error}`);
    return error.message;
  }
  throw new Error('cuda:99 was accepted');
});

// ---- benchmark: trainStep and encodeImages of the preset on CUDA, against bench/reference_cuda.py
const preset = process.env.BENCH_PRESET ?? 'vit_b16';
const B = Number(process.env.BENCH_BATCH ?? 64);
const steps = Number(process.env.BENCH_STEPS ?? 10);
const reference = process.env.REF_JSON ? JSON.parse(process.env.REF_JSON) : null;
await check(`benchmark ${preset} B${B} bf16 trainStep on CUDA`, async () => {
  const model = await Rils.create({ preset, seed: 0, device: gpu, lr: 1e-4, weightDecay: 0.1 });
  const { imageSize: S, contextLength: L, vocabSize: V } = model.config;
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const batches = [0, 1, 2, 3].map(() => {
    const images = new Float32Array(B * 3 * S * S).map(() => rand() * 4 - 2);
    const tokens = new Int32Array(B * L);
    for (let b = 0; b < B; b++) {
      const n = 1 + Math.floor(rand() * (L - 2)); // the reference's caption length distribution
      tokens[b * L] = V - 2;
      for (let i = 1; i <= n; i++) tokens[b * L + i] = 1 + Math.floor(rand() * (V - 3));
      tokens[b * L + n + 1] = V - 1;
    }
    return { images, tokens, batchSize: B };
  });
  const times = [];
  let last;
  for (let i = 0; i < 3 + steps; i++) {
    const t = performance.now();
    last = await model.trainStep(batches[i % 4]);
    if (i >= 3) times.push(performance.now() - t);
  }
  const enc = [];
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    await model.encodeImages({ images: batches[0].images, batchSize: B });
    if (i >= 2) enc.push(performance.now() - t);
  }
  model.dispose();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const ms = median(times);
  const ips = (B * 1000) / ms;
  assert(Number.isFinite(last.loss), `loss ${last.loss}`);
  const result = {
    preset,
    batch: B,
    ms_per_step: ms,
    images_per_s: ips,
    encode_images_per_s: (B * 1000) / median(enc),
    gated_fraction: last.gatedFraction,
  };
  if (reference) {
    result.reference_images_per_s = reference.images_per_s;
    result.ratio = ips / reference.images_per_s;
    if (reference.peak_bf16_flops) result.mfu = reference.flops_per_step / (ms / 1000) / reference.peak_bf16_flops;
    result.reference_mfu = reference.mfu;
  }
  console.log(`BENCH ${JSON.stringify(result)}`);
  return `${ips.toFixed(1)} img/s${
    reference
      ? ` vs PyTorch eager ${reference.images_per_s.toFixed(1)} (×${result.ratio.toFixed(2)}), ` +
        `MFU ${(100 * (result.mfu ?? NaN)).toFixed(1)}% vs ${(100 * (reference.mfu ?? NaN)).toFixed(1)}%`
      : ''
  }`;
});

console.log(failed ? `${failed} check(s) failed` : 'all checks passed');
process.exit(failed ? 1 : 0);
