// Synthetic batches for tests that need no oracle.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { parseSafetensors, writeSafetensors } from '../../lib/index.js';
import type { Batch, Rils } from '../../lib/index.js';
import { Random } from '../../lib/data/augment.js';

/** Random normalised images and captions [SOT, ids, EOT, 0…] for `model`. */
export function randomBatch(model: Rils, batchSize: number, seed = 1): Batch {
  const { imageSize: S, inChans: C, contextLength: L, vocabSize: V } = model.config;
  const random = new Random(seed);
  const r = () => random.next();
  const images = new Float32Array(batchSize * C * S * S).map(() => r() * 4 - 2);
  const tokens = new Int32Array(batchSize * L);
  for (let b = 0; b < batchSize; b++) {
    const n = 1 + Math.floor(r() * (L - 2));
    tokens[b * L] = V - 2;
    for (let i = 1; i <= n; i++) tokens[b * L + i] = 1 + Math.floor(r() * (V - 3));
    tokens[b * L + n + 1] = V - 1;
  }
  return { images, tokens, batchSize };
}

/** A safetensors weight file's tensors as Float32Array copies, keyed by name. */
export function readWeights(file: string): Map<string, Float32Array> {
  return new Map(
    [...parseSafetensors(readFileSync(file)).tensors].map(([k, t]) => [
      k,
      new Float32Array(new Uint8Array(t.bytes).buffer),
    ]),
  );
}

/** Every parameter as a Float32Array copy, keyed by name. */
export async function snapshot(model: Rils): Promise<Map<string, Float32Array>> {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rils-snap-')), 'w.safetensors');
  await model.saveWeights(file);
  const weights = readWeights(file);
  rmSync(path.dirname(file), { recursive: true, force: true });
  return weights;
}

export function sameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.length !== v.length || !v.every((x, i) => Object.is(x, w[i]))) return false;
  }
  return true;
}

/** A batch with explicit mask noise, the same for every process that asks for (model config, size, step). */
export function globalBatch(model: Rils, batchSize: number, step: number): Batch {
  const batch = randomBatch(model, batchSize, 1000 + step);
  const random = new Random(5000 + step);
  return { ...batch, maskNoise: new Float32Array(batchSize * model.numPatches).map(() => random.next()) };
}

/** Rows `start` … `start + count − 1` of a batch. */
export function rowRange(batch: Batch, start: number, count: number): Batch {
  const cut = <T extends Float32Array | Int32Array | Uint8Array>(a: T): T => {
    const per = a.length / batch.batchSize;
    return a.slice(start * per, (start + count) * per) as T;
  };
  return {
    images: cut(batch.images as Float32Array),
    tokens: cut(batch.tokens),
    batchSize: count,
    ...(batch.maskNoise ? { maskNoise: cut(batch.maskNoise) } : {}),
  };
}

/** Rank `rank`'s contiguous share of a global batch (rows rank·B/W … (rank+1)·B/W − 1). */
export function rowsOf(batch: Batch, rank: number, worldSize: number): Batch {
  const B = batch.batchSize / worldSize;
  return rowRange(batch, rank * B, B);
}

/**
 * Gives a RILS-tower model finite weights that overflow its arithmetic (the final norm's scale 3e38):
 * every loss is NaN from then on, and the weights pass every load check.
 */
export async function loadOverflowingWeights(model: Rils): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-overflow-'));
  const file = path.join(dir, 'w.safetensors');
  await model.saveWeights(file);
  const f = parseSafetensors(readFileSync(file));
  await writeSafetensors(
    file,
    [...f.tensors].map(([name, e]) => {
      const data = new Float32Array(new Uint8Array(e.bytes).slice().buffer);
      if (name === 'visual.norm.weight') data.fill(3e38);
      return { name, dtype: 'F32' as const, shape: e.shape, data };
    }),
    f.metadata,
  );
  await model.loadWeights(file);
  rmSync(dir, { recursive: true, force: true });
}
