/**
 * Training checkpoints: weights, AdamW moments, the step, the mask-noise generator and the
 * caller's own state (e.g. the data position), in one safetensors file written atomically and
 * verified with a SHA-256 of its data on load.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';

import type { NativeTensorEntry } from './binding.js';
import { RilsWeightsError } from './errors.js';
import { asFloat32, readSafetensors, writeSafetensors } from './safetensors.js';
import type { SafetensorsFile, TensorToWrite } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'rils-checkpoint-v1';
const RNG_TENSOR = 'rng.mask_noise';

/** What the model hands over to be saved. */
export interface CheckpointContent {
  weights: NativeTensorEntry[];
  moments: NativeTensorEntry[];
  rng: ArrayBuffer;
  step: number;
  /** Metadata strings (config, training options, preset). */
  metadata: Record<string, string>;
  /** The caller's JSON-serialisable state. */
  extra: unknown;
}

/** A loaded checkpoint, checked for integrity. */
export interface LoadedCheckpoint {
  weights: { name: string; shape: number[]; data: Float32Array }[];
  moments: { name: string; shape: number[]; data: Float32Array }[];
  rng: Uint8Array;
  step: number;
  metadata: Record<string, string>;
  extra: unknown;
}

export async function writeCheckpoint(path: string, c: CheckpointContent): Promise<void> {
  const f32 = (e: NativeTensorEntry): TensorToWrite => ({ name: e.name, dtype: 'F32', shape: e.shape, data: new Float32Array(e.data) });
  const tensors: TensorToWrite[] = [
    ...c.weights.map(f32),
    ...c.moments.map(f32),
    { name: RNG_TENSOR, dtype: 'U8', shape: [c.rng.byteLength], data: new Uint8Array(c.rng) },
  ];
  const hash = createHash('sha256');
  for (const t of tensors) hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  await writeSafetensors(path, tensors, {
    ...c.metadata,
    format: CHECKPOINT_FORMAT,
    step: String(c.step),
    extra: JSON.stringify(c.extra ?? null),
    sha256: hash.digest('hex'),
  });
}

export async function readCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const file: SafetensorsFile = await readSafetensors(path);
  const m = file.metadata;
  if (m.format !== CHECKPOINT_FORMAT) {
    throw new RilsWeightsError(`${path} is not a rils checkpoint (format ${JSON.stringify(m.format ?? null)}); use loadWeights for weight files`);
  }
  const digest = createHash('sha256').update(file.data).digest('hex');
  if (digest !== m.sha256) throw new RilsWeightsError(`${path} is corrupt: its data does not match the checksum written with it`);
  const weights: LoadedCheckpoint['weights'] = [];
  const moments: LoadedCheckpoint['moments'] = [];
  let rng: Uint8Array | undefined;
  for (const [name, t] of file.tensors) {
    if (name === RNG_TENSOR) {
      rng = new Uint8Array(t.bytes);
      continue;
    }
    if (t.dtype !== 'F32') throw new RilsWeightsError(`${path}: '${name}' is ${t.dtype}; expected F32`);
    const entry = { name, shape: t.shape, data: asFloat32(t.bytes) };
    (name.startsWith('exp_avg.') || name.startsWith('exp_avg_sq.') ? moments : weights).push(entry);
  }
  if (!rng) throw new RilsWeightsError(`${path} has no generator state`);
  const step = Number(m.step);
  if (!Number.isSafeInteger(step) || step < 0) throw new RilsWeightsError(`${path} has no valid step`);
  let extra: unknown;
  try {
    extra = JSON.parse(m.extra ?? 'null');
  } catch {
    throw new RilsWeightsError(`${path} has unreadable extra state`);
  }
  return { weights, moments, rng, step, metadata: m, extra };
}
