/**
 * Data-parallel training across processes and machines on PyTorch's c10d (TCPStore rendezvous,
 * Gloo). Each process is one rank with its own model; {@link Rils.create} with `distributed`
 * joins the job, and from then on every rank calls `trainStep` (and `evaluateLoss`,
 * `saveCheckpoint`, `loadCheckpoint`) in the same sequence, each on its own part of the global batch.
 *
 * @example
 * ```ts
 * // Started by `rils train --nproc 2 …`, by torchrun, or by hand with the torchrun variables set:
 * const model = await Rils.create({ preset: 'vit_b16', distributed: distributedFromEnv() });
 * ```
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';

import type { NativeModel } from '../addon/binding.js';
import { RilsInputError } from '../errors.js';
import { DISTRIBUTED_FIELDS, checkField } from '../model/schema.js';
import { checkPlainObject, invalid, isInteger } from '../validate.js';

/** Where this process stands in a data-parallel job (torchrun's variables, camelCased). */
export interface DistributedOptions {
  /** This process's rank, 0 … worldSize − 1. Rank 0 hosts the rendezvous and writes checkpoints. */
  rank: number;
  /** Processes in the job. */
  worldSize: number;
  /** Address of rank 0 (`MASTER_ADDR`). Default `'127.0.0.1'`. */
  masterAddr?: string;
  /** Port rank 0 listens on for the rendezvous (`MASTER_PORT`). Default 29500. */
  masterPort?: number;
  /** Rank within this machine (`LOCAL_RANK`); informational. Default `rank`. */
  localRank?: number;
  /**
   * Seconds the rendezvous and each collective wait for the other ranks before failing with a
   * {@link RilsDistributedError} (a rank that died or hangs). Default 60.
   */
  timeoutSeconds?: number;
  /** Size of the gradient buckets all-reduced while backward runs, in MiB. Default 25. */
  bucketMegabytes?: number;
}

/** A model's place in its job, as {@link Rils.distributed} reports it. */
export interface DistributedInfo {
  /** This process's rank. */
  rank: number;
  /** Processes in the job. */
  worldSize: number;
  /** `"host pid"` of every rank, in rank order. */
  peers: string[];
}

/**
 * The job described by torchrun's environment variables (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`,
 * `MASTER_PORT`, `LOCAL_RANK`), or `undefined` when `WORLD_SIZE` is not set (a single process).
 */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): DistributedOptions | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return undefined;
  const int = (name: string, min: number, fallback?: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      if (fallback !== undefined) return fallback;
      throw new RilsInputError(`Expected an integer >= ${min} for ${name} but it is not set`);
    }
    const value = Number(raw);
    if (!isInteger(value) || value < min) throw invalid(`an integer >= ${min}`, name, raw);
    return value;
  };
  const worldSize = int('WORLD_SIZE', 1);
  const rank = int('RANK', 0);
  if (rank >= worldSize) throw invalid(`an integer < WORLD_SIZE (${worldSize})`, 'RANK', env.RANK);
  const masterPort = int('MASTER_PORT', 1, 29500);
  if (masterPort > 65535) throw invalid('a port 1 … 65535', 'MASTER_PORT', env.MASTER_PORT);
  return {
    rank,
    worldSize,
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort,
    localRank: int('LOCAL_RANK', 0, rank),
  };
}

/** Checked options as the addon takes them: the host, and each RILS_DISTRIBUTED_FIELDS row. @internal */
export function toNativeDistributed(value: unknown): { master_addr: string; fields: Record<string, number> } {
  const o = checkPlainObject(value, 'distributed') as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!DISTRIBUTED_FIELDS.has(key) && key !== 'masterAddr' && key !== 'localRank') {
      throw new RilsInputError(`Unknown option 'distributed.${key}'`);
    }
  }
  const fields: Record<string, number> = {};
  for (const [key, f] of DISTRIBUTED_FIELDS)
    fields[f.name] = checkField(f, o[key] ?? f.default, `distributed.${key}`) as number;
  if (fields.rank! >= fields.world_size!) {
    throw new RilsInputError(
      `Expected distributed.rank < worldSize (${fields.world_size}) but received ${fields.rank}`,
    );
  }
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  if (typeof masterAddr !== 'string' || masterAddr === '')
    throw new RilsInputError('Expected a host name or address for distributed.masterAddr');
  return { master_addr: masterAddr, fields };
}

/**
 * Every rank's `value` as JSON, in rank order, through the addon's byte all-gather (a collective:
 * every rank calls it at the same point). Used on a model's queue, e.g. inside a checkpoint save.
 * @internal
 */
export async function allGatherJson(model: NativeModel, value: unknown): Promise<unknown[]> {
  const bytes = Buffer.from(toJson(value));
  const parts = await model.allGatherBytes(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return parts.map((p) => JSON.parse(Buffer.from(p).toString()) as unknown);
}

/** `value` as JSON (`undefined` as null), or a RilsInputError saying why JSON cannot hold it. */
function toJson(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value ?? null);
  } catch (error) {
    // "Converting circular structure to JSON", "Do not know how to serialize a BigInt"; the first line says it.
    const why = (error instanceof Error ? error.message : String(error)).split('\n')[0];
    throw new RilsInputError(`Expected a value JSON can hold for allGatherJson but received one it cannot: ${why}`);
  }
  if (json === undefined) throw invalid('a value JSON can hold', 'allGatherJson', value); // a function, a symbol
  return json;
}

/**
 * After a failed collective: the ranks on this machine whose process is gone, as
 * "rank 1 (pid 4242)", from the peers table exchanged at the rendezvous. Ranks on other machines
 * cannot be probed from here.
 * @internal
 */
export async function lostPeers(info: DistributedInfo, waitMs = 500): Promise<string[]> {
  const here = hostname();
  // A rank killed a moment ago may still be exiting: look again for a short while before saying none is gone.
  for (const started = performance.now(); ;) {
    const lost: string[] = [];
    info.peers.forEach((peer, rank) => {
      const [host, pidText] = peer.split(' ');
      const pid = Number(pidText);
      if (rank === info.rank || host !== here || !Number.isSafeInteger(pid)) return;
      if (!processAlive(pid)) lost.push(`rank ${rank} (pid ${pid})`);
    });
    if (lost.length > 0 || performance.now() - started >= waitMs) return lost;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Whether a process runs: it exists and, where /proc tells (Linux), is not a zombie. A rank that
// died stays a zombie until its parent (the launcher) reaps it, and kill(pid, 0) still finds it;
// the survivors learn of the death at once, often before the parent has run.
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  if (!existsSync('/proc/self/stat')) return true; // no /proc (not Linux): kill() found it
  try {
    // "pid (comm) S ...": the state follows the last ')', as comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf-8');
    const state = stat.slice(stat.lastIndexOf(')') + 1).trim()[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false; // reaped since kill() found it
  }
}
