// Oracle fixtures made by scripts/make-parity-fixtures.sh from the PyTorch reference.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Rils, parseSafetensors } from '../../lib/index.js';
import type { Batch, RilsOptions } from '../../lib/index.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/parity');
export const fixture = (name: string): string => path.resolve(FIXTURES, name);

/** The shrunken `micro` the fixtures were generated for. */
export const PARITY_CONFIG: RilsOptions = {
  preset: 'micro', vocabSize: 1000, visionWidth: 32, visionHeads: 2, decoderWidth: 32, decoderHeads: 2,
  textWidth: 32, textHeads: 2, embedDim: 32,
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

export function parityBatch(): Batch {
  const t = readTensors('inputs.safetensors');
  return {
    images: t.get('images') as Float32Array,
    tokens: t.get('tokens') as Int32Array,
    maskNoise: t.get('noise') as Float32Array,
    batchSize: 8,
  };
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

/**
 * Largest |Δ| between our weights and the reference's after AdamW steps, and where.
 *
 * One slice is set apart: the k third of each text `in_proj_bias`. Adding a constant to every key
 * shifts a softmax row by a constant, so its gradient is exactly zero in exact arithmetic; both
 * implementations see only rounding noise there (~1e-10), which Adam normalises to a step of up to
 * ±lr in an arbitrary direction. That slice is returned separately, to be bounded by steps × lr.
 */
export function compareWeights(
  ours: Map<string, Float32Array>,
  theirs: Map<string, Float32Array | Int32Array>,
): { worst: number; where: string; keyBiasWorst: number } {
  let worst = 0;
  let where = '';
  let keyBiasWorst = 0;
  for (const [name, value] of theirs) {
    const mine = ours.get(name);
    if (!mine) throw new Error(`missing ${name}`);
    if (name.endsWith('.attn.in_proj_bias')) {
      const w = value.length / 3;
      keyBiasWorst = Math.max(keyBiasWorst, maxAbsDiff(mine.subarray(w, 2 * w), value.subarray(w, 2 * w)));
      for (const [a, b] of [[0, w], [2 * w, 3 * w]] as const) {
        const d = maxAbsDiff(mine.subarray(a, b), value.subarray(a, b));
        if (d > worst) [worst, where] = [d, name];
      }
      continue;
    }
    const d = maxAbsDiff(mine, value);
    if (d > worst) [worst, where] = [d, name];
  }
  return { worst, where, keyBiasWorst };
}
