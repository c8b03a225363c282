/**
 * The training loop over {@link Rils.trainStep}: steps, prefetching, JSONL metrics, periodic
 * checkpoints, exact resume, and a clean stop on Ctrl-C.
 * @module
 */
import { existsSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';

import type { BatchSource, SourcedBatch } from './data/source.js';
import { RilsInputError } from './errors.js';
import type { Rils } from './rils.js';
import type { TrainStats } from './types.js';
import { checkInteger } from './validate.js';

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
  /** Append one JSON line of metrics per step to this file (rank 0 only, across processes). */
  metrics?: string;
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
  if (model.trainingOptions.accumulationSteps !== 1 && options.checkpoint) {
    // Checkpoints are taken between optimizer steps; each loop step is one optimizer step here.
    throw new RilsInputError('fit() with checkpoints needs accumulationSteps 1 (use a larger batch instead)');
  }
  let resumedFrom = 0;
  const rank = model.distributed?.rank ?? 0;
  const resume = !!options.checkpoint && (options.resume ?? true) && existsSync(options.checkpoint);
  if (model.distributed) {
    const seen = (await model.allGatherJson(resume)) as boolean[];
    if (seen.some((s) => s !== seen[0])) {
      throw new RilsInputError(`The checkpoint ${options.checkpoint} is visible to ranks ${seen.flatMap((s, r) => (s ? [r] : [])).join(', ')} only: ` +
        'every rank resumes from the same file, so put it on storage they share');
    }
  }
  if (resume) {
    const extra = (await model.loadCheckpoint(options.checkpoint!)) as { data?: unknown } | null;
    if (extra?.data !== undefined) source.restore(extra.data);
    resumedFrom = model.step;
  }
  // `requested` is this process's wish (Ctrl-C, the signal); `stop` is what the ranks agreed on
  // after the last step (the same as `requested` in a single process).
  let requested = false;
  let stop = false;
  const onSigint = () => (requested = true);
  const agreeToStop = async () => {
    const mine = requested || !!options.signal?.aborted;
    stop = model.distributed ? ((await model.allGatherJson(mine)) as boolean[]).some(Boolean) : mine;
  };
  if (options.handleSigint ?? true) process.on('SIGINT', onSigint);
  const depth = checkInteger(options.prefetch ?? 2, 'prefetch', 1);
  const started = performance.now();
  let waited = 0;
  let images = 0;
  let last: StepProgress | undefined;
  let position: unknown;
  const save = async () => {
    if (options.checkpoint && position !== undefined) await model.saveCheckpoint(options.checkpoint, { data: position });
  };
  // Batches in flight: drawn ahead while LibTorch works off the JS thread, never past `steps`.
  const queue: Promise<SourcedBatch>[] = [];
  let drawn = model.step;
  const refill = () => {
    while (queue.length < depth && drawn < steps) {
      queue.push(Promise.resolve(source.next()));
      drawn++;
    }
  };
  try {
    await agreeToStop();
    while (model.step < steps && !stop) {
      refill();
      const t = performance.now();
      const batch = await queue.shift()!;
      waited += performance.now() - t;
      const running = model.trainStep(batch);
      refill();
      const stats = await running;
      position = batch.position;
      images += batch.batchSize;
      const elapsed = (performance.now() - started) / 1000;
      last = { ...stats, imagesPerSecond: images / elapsed, dataWaitFraction: waited / 1000 / elapsed, elapsedSeconds: elapsed };
      if (options.metrics && rank === 0) await appendFile(options.metrics, `${JSON.stringify({ time: Date.now(), ...last })}\n`);
      options.onStep?.(last);
      if (stats.step % every === 0) await save();
      await agreeToStop(); // across processes, a stop on any rank stops every rank after this step
    }
    if (model.step % every !== 0 || stop) await save();
  } finally {
    if (options.handleSigint ?? true) process.off('SIGINT', onSigint);
    await Promise.allSettled(queue); // let prefetched decodes finish before returning
  }
  return { stepsDone: model.step, resumedFrom, interrupted: stop, ...(last ? { last } : {}) };
}
