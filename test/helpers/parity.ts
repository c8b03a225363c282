// Oracle fixtures made by scripts/make-parity-fixtures.sh from the PyTorch reference.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Rils, parseSafetensors } from '../../lib/index.js';
import type { Batch, RilsOptions, TrainStats } from '../../lib/index.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/parity');
export const fixture = (name: string): string => path.resolve(FIXTURES, name);

/** The shrunken `micro` the fixtures were generated for. */
export const PARITY_CONFIG: RilsOptions = {
  preset: 'micro',
  vocabSize: 1000,
  visionWidth: 32,
  visionHeads: 2,
  decoderWidth: 32,
  decoderHeads: 2,
  textWidth: 32,
  textHeads: 2,
  embedDim: 32,
};

export type Expected = Record<string, number>;
export const expected: Record<string, Expected> = JSON.parse(readFileSync(fixture('expected.json'), 'utf-8'));

/** A file's tensors as Float32Arrays (F32) or Int32Arrays (I32/I64 narrowed). */
export function readTensors(name: string): Map<string, Float32Array | Int32Array> {
  const file = parseSafetensors(readFileSync(fixture(name)), name);
  const out = new Map<string, Float32Array | Int32Array>();
  for (const [k, t] of file.tensors) {
    const bytes = new Uint8Array(t.bytes); // a copy (Buffer.slice would be a view)
    if (t.dtype === 'F32') out.set(k, new Float32Array(bytes.buffer));
    else if (t.dtype === 'I32') out.set(k, new Int32Array(bytes.buffer));
    else if (t.dtype === 'I64') out.set(k, Int32Array.from(new BigInt64Array(bytes.buffer), Number));
    else throw new Error(`unexpected dtype ${t.dtype}`);
  }
  return out;
}

/** A fixture's batch: images, tokens and mask noise (the parity batch by default). */
export function parityBatch(file = 'inputs.safetensors', batchSize = 8): Batch {
  const t = readTensors(file);
  return {
    images: t.get('images') as Float32Array,
    tokens: t.get('tokens') as Int32Array,
    maskNoise: t.get('noise') as Float32Array,
    batchSize,
  };
}

/** The reference's image_features [B, 1 + N, D] split into cls tokens [B, D] and patch tokens [B, N, D]. */
export function splitFeatures(features: Float32Array, B: number, N: number, D: number) {
  const patches = new Float32Array(B * N * D),
    cls = new Float32Array(B * D);
  for (let b = 0; b < B; b++) {
    cls.set(features.subarray(b * (N + 1) * D, (b * (N + 1) + 1) * D), b * D);
    patches.set(features.subarray((b * (N + 1) + 1) * D, (b + 1) * (N + 1) * D), b * N * D);
  }
  return { cls, patches };
}

export async function parityModel(weights: string, options: RilsOptions = {}): Promise<Rils> {
  const model = await Rils.create({ ...PARITY_CONFIG, seed: 0, ...options });
  await model.loadWeights(fixture(weights));
  return model;
}

/** Largest |a − b| and the position, over two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

export function relErr(actual: number, reference: number): number {
  return Math.abs(actual - reference) / Math.max(Math.abs(reference), 1e-6);
}

/** The first AdamW moments (exp_avg) in a checkpoint file, keyed by parameter name. */
export function checkpointMoments(file: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of parseSafetensors(readFileSync(file)).tensors) {
    if (name.startsWith('exp_avg.'))
      out.set(name.slice('exp_avg.'.length), new Float32Array(new Uint8Array(t.bytes).buffer));
  }
  return out;
}

/** Our first AdamW moments (exp_avg), keyed by parameter name, from a checkpoint of the model. */
export async function firstMoments(model: Rils): Promise<Map<string, Float32Array>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-moments-'));
  try {
    await model.saveCheckpoint(path.join(dir, 'c.safetensors'));
    return checkpointMoments(path.join(dir, 'c.safetensors'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Per entry, the smallest |gradient| over steps, read back from the first moments after each step:
 * g_k = (m_k − β1·m_{k−1}) / (1 − β1).
 */
export function smallestGradients(momentsPerStep: Map<string, Float32Array>[], beta1 = 0.9): Map<string, Float32Array> {
  const smallest = new Map<string, Float32Array>();
  momentsPerStep.forEach((m, k) => {
    for (const [name, mk] of m) {
      const prev = k > 0 ? momentsPerStep[k - 1]!.get(name) : undefined;
      const min = smallest.get(name) ?? new Float32Array(mk.length).fill(Infinity);
      for (let i = 0; i < mk.length; i++)
        min[i] = Math.min(min[i]!, Math.abs((mk[i]! - beta1 * (prev ? prev[i]! : 0)) / (1 - beta1)));
      smallest.set(name, min);
    }
  });
  return smallest;
}

/**
 * Runs `steps` training steps on a batch (the parity batch by default); returns their stats and
 * {@link smallestGradients} over them.
 */
export async function trainWithGradients(
  model: Rils,
  steps: number,
  batch: Batch = parityBatch(),
): Promise<{ stats: TrainStats[]; smallestGradients: Map<string, Float32Array> }> {
  const stats: TrainStats[] = [];
  const moments: Map<string, Float32Array>[] = [];
  for (let k = 0; k < steps; k++) {
    stats.push(await model.trainStep(batch));
    moments.push(await firstMoments(model));
  }
  return { stats, smallestGradients: smallestGradients(moments) };
}

/** Whether entry i of parameter `name` is in the k third of a text `in_proj_bias` (see compareWeights). */
export function isKeyBias(name: string, i: number, length: number): boolean {
  return name.endsWith('.attn.in_proj_bias') && i >= length / 3 && i < (2 * length) / 3;
}

/**
 * Largest |Δ| between our weights and the reference's after AdamW steps, and where.
 *
 * Two kinds of entries are set apart, because Adam turns rounding noise in their gradients into
 * steps of up to ±lr in an arbitrary direction; each is returned separately, to be bounded by
 * steps × lr:
 * - the k third of each text `in_proj_bias`: adding a constant to every key shifts a softmax row by
 *   a constant, so its gradient is exactly zero in exact arithmetic; both implementations see only
 *   rounding noise there (~1e-10);
 * - with `gradients` (ours, per entry the smallest |gradient| over the steps), entries whose gradient
 *   was below 1e-6, 100× Adam's eps, but not exactly 0 (rows of unused tokens), at some step: there
 *   the size of the step depends on the gradient's last bits, which differ between our fused kernels and LibTorch's (one entry of 144k
 *   in the parity model, at 1e-8).
 */
export function compareWeights(
  ours: Map<string, Float32Array>,
  theirs: Map<string, Float32Array | Int32Array>,
  gradients?: Map<string, Float32Array>,
): { worst: number; where: string; keyBiasWorst: number; tinyGradientWorst: number; tinyGradientShare: number } {
  let worst = 0;
  let where = '';
  let keyBiasWorst = 0;
  let tinyGradientWorst = 0;
  let tiny = 0,
    total = 0;
  for (const [name, value] of theirs) {
    const mine = ours.get(name);
    if (!mine) throw new Error(`missing ${name}`);
    const g = gradients?.get(name);
    for (let i = 0; i < value.length; i++) {
      const d = Math.abs(mine[i]! - value[i]!);
      if (isKeyBias(name, i, value.length)) keyBiasWorst = Math.max(keyBiasWorst, d);
      else if (g && g[i] !== 0 && Math.abs(g[i]!) < 1e-6)
        [tinyGradientWorst, tiny] = [Math.max(tinyGradientWorst, d), tiny + 1];
      else if (d > worst) [worst, where] = [d, name];
    }
    total += value.length;
  }
  return { worst, where, keyBiasWorst, tinyGradientWorst, tinyGradientShare: tiny / total };
}
