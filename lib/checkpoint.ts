/**
 * Training checkpoints: weights, AdamW moments, the step, the mask-noise generator and the
 * caller's own state (e.g. the data position), in one safetensors file written atomically and
 * verified with a SHA-256 of its data on load.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';

import type { NativeModel, NativeTensorEntry } from './binding.js';
import { allGatherJson } from './distributed.js';
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
  /** Across processes: every rank's generator state and extra, in rank order (rank 0's also above). */
  ranks?: RankState[] | undefined;
}

/** One rank's own part of a checkpoint of a data-parallel job. */
export interface RankState {
  rng: Uint8Array;
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
  ranks?: RankState[] | undefined;
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
  const ranks = c.ranks && JSON.stringify(c.ranks.map((r) => ({ rng: Buffer.from(r.rng).toString('base64'), extra: r.extra ?? null })));
  if (ranks) hash.update(ranks);
  await writeSafetensors(path, tensors, {
    ...c.metadata,
    format: CHECKPOINT_FORMAT,
    step: String(c.step),
    extra: JSON.stringify(c.extra ?? null),
    ...(ranks ? { ranks } : {}),
    sha256: hash.digest('hex'),
  });
}

/** Every rank's generator state and extra (a collective over the job's ranks). */
export async function gatherRankStates(model: NativeModel, rng: ArrayBuffer, extra: unknown): Promise<RankState[]> {
  const all = (await allGatherJson(model, { rng: Buffer.from(rng).toString('base64'), extra: extra ?? null })) as { rng: string; extra: unknown }[];
  return all.map((r) => ({ rng: new Uint8Array(Buffer.from(r.rng, 'base64')), extra: r.extra }));
}

/** This rank's part of a checkpoint written by a job of the same size. */
export function rankState(c: LoadedCheckpoint, rank: number, worldSize: number, path: string): RankState {
  if (!c.ranks || c.ranks.length !== worldSize) {
    throw new RilsWeightsError(
      `${path} was written by ${c.ranks ? `a job of ${c.ranks.length} processes` : 'a single process'}; ` +
        `resume it with that many (this job has ${worldSize}), or load only its weights with loadWeights`,
    );
  }
  return c.ranks[rank]!;
}

export async function readCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const file: SafetensorsFile = await readSafetensors(path);
  const m = file.metadata;
  if (m.format !== CHECKPOINT_FORMAT) {
    throw new RilsWeightsError(`${path} is not a rils checkpoint (format ${JSON.stringify(m.format ?? null)}); use loadWeights for weight files`);
  }
  const hash = createHash('sha256').update(file.data);
  if (m.ranks) hash.update(m.ranks);
  const digest = hash.digest('hex');
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
  let ranks: RankState[] | undefined;
  try {
    ranks = m.ranks === undefined ? undefined : (JSON.parse(m.ranks) as { rng: string; extra: unknown }[])
      .map((r) => ({ rng: new Uint8Array(Buffer.from(r.rng, 'base64')), extra: r.extra }));
  } catch {
    throw new RilsWeightsError(`${path} has unreadable per-rank state`);
  }
  return { weights, moments, rng, step, metadata: m, extra, ranks };
}
