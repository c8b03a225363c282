/**
 * Training checkpoints: weights, AdamW moments, the step, the mask-noise generator and the
 * caller's own state (e.g. the data position), in one safetensors file written atomically and
 * verified on load with a SHA-256 of its whole meaning: every metadata entry, every tensor's name,
 * dtype and shape, and the data.
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';

import type { NativeModel, NativeTensorEntry } from '../addon/binding.js';
import { allGatherJson } from './distributed.js';
import { RilsWeightsError } from '../errors.js';
import { checkAgainstParameters } from '../weights/rils.js';
import { asFloat32, readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { SafetensorsFile, TensorToWrite } from '../io/safetensors.js';

export const CHECKPOINT_FORMAT = 'rils-checkpoint-v2';
/**
 * The first format, whose SHA-256 covers only the data and the per-rank state: an edited step, data
 * position, option or tensor name went unnoticed. Still loaded (and checked as far as it goes), so
 * that runs resume across the upgrade; every new save is v2.
 */
const FORMAT_V1 = 'rils-checkpoint-v1';
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

/** A tensor as the digest sees it: where its bytes begin in the data section, and what they mean. */
interface DescribedTensor {
  name: string;
  dtype: string;
  shape: readonly number[];
  begin: number;
}

/**
 * The v2 digest: the metadata but the digest itself, sorted by key; every tensor's name, dtype and
 * shape, in data order (equal offsets, of empty tensors, by name); then the data section.
 */
function digest(
  metadata: Record<string, string>,
  tensors: readonly DescribedTensor[],
  data: Iterable<Uint8Array>,
): string {
  const entries = Object.keys(metadata)
    .filter((k) => k !== 'sha256')
    .sort()
    .map((k) => [k, metadata[k]]);
  const described = [...tensors]
    .sort((a, b) => a.begin - b.begin || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((t) => [t.name, t.dtype, t.shape]);
  const hash = createHash('sha256').update(`${JSON.stringify(entries)}\n${JSON.stringify(described)}\n`);
  for (const bytes of data) hash.update(bytes);
  return hash.digest('hex');
}

export async function writeCheckpoint(path: string, c: CheckpointContent): Promise<void> {
  const f32 = (e: NativeTensorEntry): TensorToWrite => ({
    name: e.name,
    dtype: 'F32',
    shape: e.shape,
    data: new Float32Array(e.data),
  });
  const tensors: TensorToWrite[] = [
    ...c.weights.map(f32),
    ...c.moments.map(f32),
    { name: RNG_TENSOR, dtype: 'U8', shape: [c.rng.byteLength], data: new Uint8Array(c.rng) },
  ];
  const ranks =
    c.ranks &&
    JSON.stringify(c.ranks.map((r) => ({ rng: Buffer.from(r.rng).toString('base64'), extra: r.extra ?? null })));
  const metadata = {
    ...c.metadata,
    format: CHECKPOINT_FORMAT,
    step: String(c.step),
    extra: JSON.stringify(c.extra ?? null),
    ...(ranks ? { ranks } : {}),
  };
  let begin = 0; // writeSafetensors lays the tensors out in this order, back to back
  const described = tensors.map((t) => {
    const tensor = { name: t.name, dtype: t.dtype, shape: t.shape, begin };
    begin += t.data.byteLength;
    return tensor;
  });
  const data = tensors.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  await writeSafetensors(path, tensors, { ...metadata, sha256: digest(metadata, described, data) });
}

/** Every rank's generator state and extra (a collective over the job's ranks). */
export async function gatherRankStates(model: NativeModel, rng: ArrayBuffer, extra: unknown): Promise<RankState[]> {
  const all = (await allGatherJson(model, { rng: Buffer.from(rng).toString('base64'), extra: extra ?? null })) as {
    rng: string;
    extra: unknown;
  }[];
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

/** Checks a checkpoint against the digest written with it (v1's covers less: see {@link FORMAT_V1}). */
function verify(path: string, file: SafetensorsFile): void {
  const m = file.metadata;
  let expected: string;
  if (m.format === CHECKPOINT_FORMAT) {
    const tensors = [...file.tensors].map(([name, t]) => ({
      name,
      dtype: t.dtype,
      shape: t.shape,
      begin: t.bytes.byteOffset - file.data.byteOffset,
    }));
    expected = digest(m, tensors, [file.data]);
  } else if (m.format === FORMAT_V1) {
    const hash = createHash('sha256').update(file.data);
    if (m.ranks) hash.update(m.ranks);
    expected = hash.digest('hex');
  } else {
    throw new RilsWeightsError(
      `${path} is not a rils checkpoint (format ${JSON.stringify(m.format ?? null)}); use loadWeights for weight files`,
    );
  }
  if (expected !== m.sha256) {
    throw new RilsWeightsError(`${path} is corrupt or was edited: it does not match the checksum written with it`);
  }
}

export async function readCheckpoint(path: string): Promise<LoadedCheckpoint> {
  const file: SafetensorsFile = await readSafetensors(path);
  const m = file.metadata;
  verify(path, file);
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
    ranks =
      m.ranks === undefined
        ? undefined
        : (JSON.parse(m.ranks) as { rng: string; extra: unknown }[]).map((r) => ({
            rng: new Uint8Array(Buffer.from(r.rng, 'base64')),
            extra: r.extra,
          }));
  } catch {
    throw new RilsWeightsError(`${path} has unreadable per-rank state`);
  }
  return { weights, moments, rng, step, metadata: m, extra, ranks };
}

/** A model's queue (one call at a time, in order) and its place in a data-parallel job. */
export interface CheckpointSession {
  run<T>(task: (m: NativeModel) => Promise<T>): Promise<T>;
  distributed: { rank: number; worldSize: number } | undefined;
}

/**
 * Everything needed to continue training exactly, from the model's queue (so that no other call
 * runs in between); across processes every rank calls this and rank 0 writes every rank's own state.
 */
export async function saveModelCheckpoint(
  s: CheckpointSession,
  path: string,
  extra: unknown,
  metadata: Record<string, string>,
): Promise<void> {
  const [weights, training, ranks] = await s.run(async (m) => {
    const weights = await m.getState();
    const training = await m.getTrainingState();
    const ranks = s.distributed ? await gatherRankStates(m, training.rng, extra) : undefined;
    return [weights, training, ranks] as const;
  });
  if (s.distributed && s.distributed.rank !== 0) return;
  await writeCheckpoint(path, { weights, ...training, metadata, extra: extra ?? null, ranks });
}

/**
 * Restores a checkpoint into the model in one native call, which checks the weights, moments,
 * generator state and step before it applies any; returns this rank's `extra`.
 */
export async function loadModelCheckpoint(
  s: CheckpointSession,
  path: string,
  parameters: readonly { name: string; shape: number[] }[],
): Promise<unknown> {
  const c = await readCheckpoint(path);
  checkAgainstParameters(path, c.weights, parameters);
  const own = s.distributed ? rankState(c, s.distributed.rank, s.distributed.worldSize, path) : c;
  try {
    await s.run((m) => m.setTrainingState({ weights: c.weights, moments: c.moments, rng: own.rng, step: c.step }));
  } catch (error) {
    throw error instanceof RilsWeightsError ? new RilsWeightsError(`${path}: ${error.message}`) : error;
  }
  return own.extra;
}
