/**
 * The training loop over {@link Rils.trainStep}: steps, prefetching, JSONL metrics, periodic
 * checkpoints, exact resume, and a clean stop on Ctrl-C.
 * @module
 */
import { constants, existsSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';

import { Prefetcher } from '../data/prefetch.js';
import type { BatchSource } from '../data/source.js';
import { RilsInputError, RilsStateError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { scheduleWarning } from '../model/schedule.js';
import { readRegularFile } from '../io/regular-file.js';
import type { Rils } from '../rils.js';
import type { TrainStats } from '../types.js';
import { checkInteger, invalid } from '../validate.js';

/** Options of {@link fit}. */
export interface FitOptions {
  /** Optimizer steps to reach (a resumed run continues up to this total). */
  steps: number;
  /** Checkpoint file: written every `checkpointEvery` steps, at the end, and on Ctrl-C. */
  checkpoint?: string;
  /** Steps between checkpoints. Default 100. */
  checkpointEvery?: number;
  /** Resume from `checkpoint` when it exists. Default true. */
  resume?: boolean;
  /**
   * Append one JSON line of metrics per step to this file (rank 0 only, across processes). On
   * resume, the lines of steps after the checkpoint (trained again) are dropped first.
   */
  metrics?: string;
  /**
   * When a metrics line cannot be written (a missing folder, a full disk, no permission), the run is
   * never lost: the failure is reported once through `onWarning` and in {@link FitResult.metricsError},
   * no more lines are written, and then `'continue'` trains on, while `'stop'` saves a checkpoint and
   * stops as Ctrl-C does (across processes, every rank stops). Default `'continue'`.
   *
   * @example
   * ```ts
   * await fit(model, source, { steps: 1000, metrics: 'runs/m.jsonl', checkpoint: 'c.safetensors', onMetricsError: 'stop' });
   * ```
   */
  onMetricsError?: 'continue' | 'stop';
  /** Receives the run's warnings (a metrics file that cannot be written). Default: `process.emitWarning`. */
  onWarning?: (message: string) => void;
  /** Called after every step (progress bars, logging). */
  onStep?: (progress: StepProgress) => void;
  /** Stops after the current step (then checkpoints). Ctrl-C does the same when `handleSigint`. */
  signal?: AbortSignal;
  /** Save and stop on SIGINT instead of dying. Default true. */
  handleSigint?: boolean;
  /** Batches prepared ahead of the one training. Default 2. */
  prefetch?: number;
}

/** What {@link FitOptions.onStep} receives. */
export interface StepProgress extends TrainStats {
  /** Images per second over the run so far. */
  imagesPerSecond: number;
  /** Fraction of wall time spent waiting for batches. */
  dataWaitFraction: number;
  /** Wall time since the run started. */
  elapsedSeconds: number;
  /** What reading data has skipped or retried so far (the source's counts, summed over ranks), when the source counts. */
  data?: Record<string, number>;
}

/** How a run ended. */
export interface FitResult {
  /** Optimizer steps done in all (the model's step count). */
  stepsDone: number;
  /** The step a checkpoint resumed from (0 for a fresh run). */
  resumedFrom: number;
  /** Stopped by Ctrl-C or the AbortSignal before `steps`. */
  interrupted: boolean;
  /** The last step's progress. */
  last?: StepProgress;
  /** Why the metrics file could not be written (e.g. ENOENT), when it could not; see {@link FitOptions.onMetricsError}. */
  metricsError?: string;
}

/**
 * Ctrl-C and the AbortSignal ask to stop after the current step. Across processes the ranks agree:
 * a stop asked on any rank stops every rank after the same step.
 */
class StopRequests {
  #requested = false;
  /** What the ranks agreed on at the last {@link agree} (this process's wish in a single process). */
  agreed = false;
  readonly #onSigint = () => this.request();

  constructor(
    private readonly model: Rils,
    private readonly signal: AbortSignal | undefined,
    private readonly sigint: boolean,
  ) {
    if (sigint) process.on('SIGINT', this.#onSigint);
  }

  request(): void {
    this.#requested = true;
  }

  async agree(): Promise<boolean> {
    const mine = this.#requested || !!this.signal?.aborted;
    this.agreed = this.model.distributed ? ((await this.model.allGatherJson(mine)) as boolean[]).some(Boolean) : mine;
    return this.agreed;
  }

  dispose(): void {
    if (this.sigint) process.off('SIGINT', this.#onSigint);
  }
}

/**
 * The checkpoint policy: save every `every` steps, at the end, and on a stop, with the data position
 * after the last trained batch. Without a file, or before any step, nothing is saved.
 */
class Checkpoints {
  #position: unknown;

  constructor(
    private readonly model: Rils,
    private readonly file: string | undefined,
    private readonly every: number,
  ) {}

  async afterStep(step: number, position: unknown): Promise<void> {
    this.#position = position;
    if (step % this.every === 0) await this.#save();
  }

  async atEnd(stopped: boolean): Promise<void> {
    if (this.model.step % this.every !== 0 || stopped) await this.#save();
  }

  async #save(): Promise<void> {
    if (this.file && this.#position !== undefined) await this.model.saveCheckpoint(this.file, { data: this.#position });
  }
}

/** How metrics lines are appended: O_NONBLOCK makes a FIFO without a reader fail at once (ENXIO), never block. */
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;

/** A file system error's message without the call and path it names ("ENOENT: no such file or directory"). */
function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { syscall } = error as NodeJS.ErrnoException;
  const cut = syscall ? error.message.lastIndexOf(`, ${syscall}`) : -1;
  return cut > 0 ? error.message.slice(0, cut) : error.message;
}

/** The step of a metrics line; NaN for a line that is not one (such lines are left alone). */
function stepOf(line: string): number {
  try {
    const { step } = JSON.parse(line) as { step?: unknown };
    return typeof step === 'number' ? step : NaN;
  } catch {
    return NaN;
  }
}

/**
 * One JSON line of metrics per step. A line that cannot be written does not end the run: the
 * failure is reported once and no more lines are written; with `'stop'` the run is asked to stop.
 */
class MetricsLog {
  /** Why the file could not be written, once it could not. */
  error: string | undefined;

  constructor(
    private readonly file: string,
    private readonly policy: ReturnType<typeof metricsPolicy>,
    private readonly stops: StopRequests,
  ) {}

  async append(progress: StepProgress): Promise<void> {
    if (this.error !== undefined) return;
    try {
      await appendFile(this.file, `${JSON.stringify({ time: Date.now(), ...progress })}\n`, { flag: APPEND_FLAGS });
    } catch (error) {
      this.#failed(error);
    }
  }

  /**
   * On resume from `step`: drops the lines of later steps, which are trained again, so the file holds
   * each step once. Rewritten atomically (lib/io/atomic.ts): a crash leaves one or the other.
   */
  async keepUpTo(step: number): Promise<void> {
    let lines: string[];
    try {
      lines = (await readRegularFile(this.file, 'a metrics file (JSONL)'))
        .toString('utf-8')
        .split('\n')
        .filter((line) => line !== '');
    } catch (error) {
      const cause = (error as Error).cause as NodeJS.ErrnoException | undefined;
      if (cause?.code !== 'ENOENT') this.#failed(cause ?? error);
      return; // no file yet: the first append makes it
    }
    const kept = lines.filter((line) => !(stepOf(line) > step));
    if (kept.length === lines.length) return;
    try {
      await writeFileAtomic(this.file, (file) => file.writeFile(kept.map((line) => `${line}\n`).join('')));
    } catch (error) {
      this.#failed((error as Error).cause ?? error); // the file system's own error, as an append failure reports it
    }
  }

  #failed(error: unknown): void {
    this.error = reason(error);
    const stop = this.policy.onError === 'stop';
    this.policy.warn(
      `Cannot write metrics to ${this.file} (${this.error}); ${stop ? 'saving a checkpoint and stopping' : 'training goes on without metrics'}`,
    );
    if (stop) this.stops.request();
  }
}

/** The checked metrics options: what to do when the file cannot be written, and where to report it. */
function metricsPolicy(options: FitOptions): { onError: 'continue' | 'stop'; warn: (message: string) => void } {
  const onError = options.onMetricsError ?? 'continue';
  if (onError !== 'continue' && onError !== 'stop') throw invalid("'continue' or 'stop'", 'onMetricsError', onError);
  const warn = options.onWarning ?? ((message: string) => process.emitWarning(message));
  if (typeof warn !== 'function') throw invalid('a function', 'onWarning', warn);
  return { onError, warn };
}

/** Throughput of the run so far. */
class Meter {
  readonly #started = performance.now();
  #images = 0;

  progress(stats: TrainStats, batchSize: number, waitedMs: number): StepProgress {
    this.#images += batchSize;
    const elapsed = (performance.now() - this.#started) / 1000;
    return {
      ...stats,
      imagesPerSecond: this.#images / elapsed,
      dataWaitFraction: waitedMs / 1000 / elapsed,
      elapsedSeconds: elapsed,
    };
  }
}

/**
 * Loads the checkpoint when there is one to resume from, and puts the source back at its position.
 * Across processes, every rank must see the same file. Returns the step resumed from (0: none).
 */
async function resume(model: Rils, source: BatchSource, options: FitOptions): Promise<number> {
  const file = options.checkpoint;
  const found = !!file && (options.resume ?? true) && existsSync(file);
  if (model.distributed) {
    const seen = (await model.allGatherJson(found)) as boolean[];
    if (seen.some((s) => s !== seen[0])) {
      throw new RilsInputError(
        `The checkpoint ${file} is visible to ranks ${seen.flatMap((s, r) => (s ? [r] : [])).join(', ')} only: ` +
          'every rank resumes from the same file, so put it on storage they share',
      );
    }
  }
  if (!found) return 0;
  const extra = (await model.loadCheckpoint(file)) as { data?: unknown } | null;
  if (extra?.data !== undefined) source.restore(extra.data);
  return model.step;
}

/** The source's counts, summed over the ranks (every rank calls this after every step). */
async function dataCounts(model: Rils, source: BatchSource): Promise<Record<string, number> | undefined> {
  if (!source.counts) return undefined;
  const mine = source.counts();
  if (!model.distributed) return mine;
  const all = (await model.allGatherJson(mine)) as Record<string, number>[];
  const sum: Record<string, number> = {};
  for (const counts of all) for (const [k, v] of Object.entries(counts)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}

/** The pieces of a run that the loop drives. */
interface Run {
  model: Rils;
  source: BatchSource;
  steps: number;
  prefetch: Prefetcher;
  stops: StopRequests;
  checkpoints: Checkpoints;
  metrics: MetricsLog | null;
  onStep: FitOptions['onStep'];
}

/**
 * Steps in a row whose loss or gradient is NaN or infinite (each skipped, the weights unchanged)
 * after which a run stops: it makes no progress.
 */
const MAX_SKIPPED_STEPS = 20;

/** Steps until `steps` or an agreed stop; returns the last step's progress. */
async function trainLoop(run: Run): Promise<StepProgress | undefined> {
  const { model, prefetch, stops, checkpoints } = run;
  const meter = new Meter();
  let last: StepProgress | undefined;
  let skipped = 0;
  await stops.agree();
  while (model.step < run.steps && !stops.agreed) {
    const batch = await prefetch.take();
    const running = model.trainStep(batch);
    prefetch.refill(); // draw the next batches while LibTorch works off the JS thread
    const stats = await running;
    const data = await dataCounts(model, run.source);
    last = { ...meter.progress(stats, batch.batchSize, prefetch.waitedMs), ...(data ? { data } : {}) };
    await run.metrics?.append(last);
    run.onStep?.(last);
    skipped = stats.nonFinite ? skipped + 1 : 0;
    if (skipped === MAX_SKIPPED_STEPS) {
      throw new RilsStateError(
        `The last ${skipped} steps had a NaN or infinite loss or gradient and were skipped, the weights ` +
          'unchanged: training makes no progress (lower lr or the loss weights, or check the data)',
      );
    }
    await checkpoints.afterStep(stats.step, batch.position);
    await stops.agree(); // across processes, a stop on any rank stops every rank after this step
  }
  await checkpoints.atEnd(stops.agreed);
  return last;
}

/**
 * Trains until `steps` optimizer steps are done. The next batches are prepared while the current
 * step runs natively; the position saved in checkpoints is the one after the last trained batch,
 * so a resumed run continues with exactly the batches it would have seen.
 *
 * Across processes ({@link RilsOptions.distributed}) every rank runs `fit` with its own source:
 * the ranks agree on resuming and on stopping (Ctrl-C or `signal` on any rank stops all of them
 * after the same step), rank 0 writes the checkpoints (with every rank's data position) and the
 * metrics, and every rank resumes from the same checkpoint file (shared storage across machines).
 */
export async function fit(model: Rils, source: BatchSource, options: FitOptions): Promise<FitResult> {
  const steps = checkInteger(options.steps, 'steps', 1);
  const every = checkInteger(options.checkpointEvery ?? 100, 'checkpointEvery', 1);
  const depth = checkInteger(options.prefetch ?? 2, 'prefetch', 1);
  const policy = metricsPolicy(options);
  if (model.trainingOptions.accumulationSteps !== 1 && options.checkpoint) {
    // Checkpoints are taken between optimizer steps; each loop step is one optimizer step here.
    throw new RilsInputError('fit() with checkpoints needs accumulationSteps 1 (use a larger batch instead)');
  }
  // Rils.create warns of a schedule that ends in its warmup; without a schedule length, this run's steps are its end.
  const schedule = model.trainingOptions.totalSteps === 0 ? scheduleWarning(model.trainingOptions, steps) : undefined;
  if (schedule) policy.warn(schedule);
  const resumedFrom = await resume(model, source, options);
  const stops = new StopRequests(model, options.signal, options.handleSigint ?? true);
  const prefetch = new Prefetcher(source, depth, model.step, steps); // never draws past `steps`
  const metrics =
    options.metrics && (model.distributed?.rank ?? 0) === 0 ? new MetricsLog(options.metrics, policy, stops) : null;
  try {
    if (resumedFrom > 0) await metrics?.keepUpTo(resumedFrom);
    const last = await trainLoop({
      model,
      source,
      steps,
      prefetch,
      stops,
      checkpoints: new Checkpoints(model, options.checkpoint, every),
      metrics,
      onStep: options.onStep,
    });
    const metricsError = metrics?.error;
    return {
      stepsDone: model.step,
      resumedFrom,
      interrupted: stops.agreed,
      ...(last ? { last } : {}),
      ...(metricsError ? { metricsError } : {}),
    };
  } finally {
    stops.dispose();
    await prefetch.settle(); // let prefetched decodes finish before returning
  }
}
