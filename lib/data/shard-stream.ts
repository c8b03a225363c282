/**
 * The bytes of one shard, from wherever it lives: a local file, an `http(s)://` URL (Node's own
 * fetch, following redirects) or the standard output of a `pipe:COMMAND`. The bytes stream as they
 * arrive; nothing waits for a whole shard. Every wait (connecting, each chunk) has a timeout. A failure
 * that may pass (a reset connection, HTTP 5xx/429/408, a stall, a command that exits non-zero or is
 * killed) is retried after a doubling backoff, resuming at the byte reached (an HTTP Range request;
 * a server that ignores it, or a rerun command, has the bytes already read skipped). A failure that
 * will not pass (404, a missing file) fails at once.
 * @module
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { openRegularFile } from '../io/regular-file.js';
import { checkInteger, checkNumber, invalid } from '../validate.js';
import { shardKind } from './shard-spec.js';

/** How shards are read. */
export interface ShardReadOptions {
  /** Seconds any one wait (a connection, a response, each chunk of bytes) may take before the attempt counts as stalled. Default 60. */
  timeoutSeconds?: number;
  /** Attempts after a failure that may pass, per point reached in the shard (progress renews them). Default 3. */
  retries?: number;
  /** Seconds before the first retry, doubled for each further one. Default 1. */
  backoffSeconds?: number;
}

/** What reading shards has met so far. */
export interface ShardReadCounts {
  /** Failed attempts that were retried (resets, HTTP 5xx, stalls, failed commands). */
  retries: number;
}

/** A shard's bytes could not be read (after the retries, for a failure that may pass). */
export class ShardReadError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** One attempt at the bytes from an offset on. */
interface Attempt {
  chunks: AsyncIterator<Uint8Array>;
  /** Bytes at the start of `chunks` already read (a server without Range, a rerun command). */
  skip: number;
  /** Ends the attempt: aborts the request, kills the command. */
  close(): void;
}

/** Checked read options with their defaults. @internal */
export function readOptions(o: ShardReadOptions = {}): Required<ShardReadOptions> {
  const timeoutSeconds = checkNumber(o.timeoutSeconds ?? 60, 'timeoutSeconds');
  if (timeoutSeconds <= 0) throw invalid('a number > 0', 'timeoutSeconds', timeoutSeconds);
  const backoffSeconds = checkNumber(o.backoffSeconds ?? 1, 'backoffSeconds');
  if (backoffSeconds < 0) throw invalid('a number >= 0', 'backoffSeconds', backoffSeconds);
  return { timeoutSeconds, retries: checkInteger(o.retries ?? 3, 'retries', 0), backoffSeconds };
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

async function httpAttempt(url: string, offset: number, signal: AbortSignal, close: () => void): Promise<Attempt> {
  const response = await fetch(url, {
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    redirect: 'follow',
    signal,
  });
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel().catch(() => undefined);
    throw new ShardReadError(
      `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
      RETRY_STATUS.has(response.status),
    );
  }
  if (!response.body) throw new ShardReadError('HTTP response without a body', true);
  const reader = response.body.getReader();
  const chunks: AsyncIterator<Uint8Array> = {
    next: async () => {
      const r = await reader.read();
      return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
    },
  };
  return { chunks, skip: response.status === 200 ? offset : 0, close };
}

function pipeAttempt(command: string, offset: number): Attempt {
  const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
  const ended = new Promise<string | undefined>((resolve) => {
    child.once('error', (e) => resolve(e.message));
    child.once('close', (code, signal) =>
      resolve(code === 0 ? undefined : signal ? `was killed by ${signal}` : `exited with status ${code}`),
    );
  });
  const close = () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, 'SIGKILL'); // the command's whole process group (sh and what it started)
    } catch {
      // already gone
    }
  };
  async function* read(): AsyncGenerator<Uint8Array> {
    yield* child.stdout;
    const failed = await ended;
    const tail = stderr.trim().split('\n').at(-1);
    if (failed !== undefined) throw new ShardReadError(`the command ${failed}${tail ? ` (${tail})` : ''}`, true);
  }
  return { chunks: read(), skip: offset, close };
}

async function fileAttempt(file: string, offset: number): Promise<Attempt> {
  let handle;
  try {
    ({ file: handle } = await openRegularFile(file, 'a WebDataset shard (.tar)')); // a FIFO would block open() forever
  } catch (error) {
    throw new ShardReadError((error as Error).message, false);
  }
  const stream = handle.createReadStream({ start: offset });
  async function* read(): AsyncGenerator<Uint8Array> {
    try {
      yield* stream;
    } catch (error) {
      throw new ShardReadError((error as Error).message, false);
    }
  }
  return { chunks: read(), skip: 0, close: () => stream.destroy() };
}

/** `promise`, or a retryable stall after `ms` (then `onTimeout` ends the attempt). */
async function timed<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stall = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new ShardReadError(`no data for ${ms / 1000} s`, true));
    }, ms);
  });
  promise.catch(() => undefined); // a read abandoned after a stall may still reject
  try {
    return await Promise.race([promise, stall]);
  } finally {
    clearTimeout(timer);
  }
}

async function open(url: string, offset: number, ms: number): Promise<Attempt> {
  const kind = shardKind(url);
  if (kind === 'pipe') return pipeAttempt(url.slice('pipe:'.length), offset);
  if (kind === 'file') return fileAttempt(url, offset);
  const controller = new AbortController();
  const close = () => controller.abort();
  return timed(httpAttempt(url, offset, controller.signal, close), ms, close);
}

function asReadError(error: unknown): ShardReadError {
  if (error instanceof ShardReadError) return error;
  const e = error as Error & { cause?: Error & { code?: string } };
  const cause = e.cause?.code ?? e.cause?.message;
  return new ShardReadError(`${e.message}${cause ? ` (${cause})` : ''}`, true); // network failures (fetch's TypeError) may pass
}

/**
 * The bytes of the shard at `url` as they arrive, retried per `options`; throws a
 * {@link ShardReadError} when it cannot be read to its end. `signal` ends the request or the command
 * at once (even while a read waits), and the iteration with it. @internal
 */
export async function* shardBytes(
  url: string,
  options: Required<ShardReadOptions>,
  counts: ShardReadCounts,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const ms = options.timeoutSeconds * 1000;
  let offset = 0;
  let current: Attempt | undefined;
  const onAbort = () => current?.close();
  signal?.addEventListener('abort', onAbort);
  try {
    for (let attempt = 0; !signal?.aborted; attempt++) {
      const start = offset;
      try {
        current = await open(url, offset, ms);
        const { close } = current;
        if (signal?.aborted) return;
        let skip = current.skip;
        for (;;) {
          const r = await timed(current.chunks.next(), ms, close);
          if (r.done) return;
          let chunk = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
          if (skip > 0) {
            const n = Math.min(skip, chunk.length);
            chunk = chunk.subarray(n);
            skip -= n;
            if (chunk.length === 0) continue;
          }
          offset += chunk.length;
          yield chunk;
        }
      } catch (error) {
        if (signal?.aborted) return;
        const e = asReadError(error);
        if (offset > start) attempt = 0; // progress renews the retries
        if (!e.retryable || attempt >= options.retries) {
          throw new ShardReadError(`${e.message}${attempt > 0 ? ` (after ${attempt} retries)` : ''}`, e.retryable);
        }
        counts.retries++;
        await sleep(options.backoffSeconds * 1000 * 2 ** attempt);
      } finally {
        current?.close();
        current = undefined;
      }
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
