/**
 * What `rils train` and `rils eval` show while they run: a progress bar on a terminal, plain lines
 * otherwise (logs, CI), from rank 0 only; and the steps' history for the training report.
 * @internal
 * @module
 */
import cliProgress from 'cli-progress';

import type { EmbedProgress } from '../eval/embed.js';
import type { StepProgress } from '../train/fit.js';

/** Follows a run: pass `onStep` to fit(), then call `stop()`. */
export interface TrainProgress {
  onStep(progress: StepProgress): void;
  /** Every step's progress, in order. */
  readonly history: StepProgress[];
  stop(): void;
}

function fieldsOf(p: StepProgress) {
  return {
    loss: p.loss.toFixed(4),
    acc: (100 * p.clipAcc).toFixed(1),
    gated: (100 * p.gatedFraction).toFixed(1),
    ips: p.imagesPerSecond.toFixed(1),
    wait: (100 * p.dataWaitFraction).toFixed(1),
  };
}

/**
 * Progress of a run to `steps` that starts at step `from`; silent on ranks other than 0. The gated
 * share of the masked patches is shown only when the run has RILS's term (`recon`).
 */
export function trainProgress(steps: number, from: number, rank: number, recon: boolean): TrainProgress {
  const history: StepProgress[] = [];
  const gated = recon ? ' gated {gated}%' : '';
  const bar =
    process.stdout.isTTY && rank === 0
      ? new cliProgress.SingleBar(
          {
            format: `step {value}/{total} [{bar}] loss {loss} clip-acc {acc}%${gated} {ips} img/s data-wait {wait}%`,
          },
          cliProgress.Presets.shades_classic,
        )
      : null;
  bar?.start(steps, from, { loss: '-', acc: '-', gated: '-', ips: '-', wait: '-' });
  const onStep = (p: StepProgress) => {
    history.push(p);
    const f = fieldsOf(p);
    if (bar) bar.update(p.step, f);
    else if (rank === 0 && (p.step % 20 === 0 || p.step === steps)) {
      console.log(
        `step ${p.step}/${steps} loss ${f.loss} clip-acc ${f.acc}%${recon ? ` gated ${f.gated}%` : ''} ` +
          `lr ${p.lr.toExponential(2)} ${f.ips} img/s data-wait ${f.wait}%`,
      );
    }
  };
  return { onStep, history, stop: () => bar?.stop() };
}

/** Follows the encoding of a set of images: pass `onProgress` to embedImages, then call `stop()`. */
export interface EncodeProgress {
  onProgress(progress: EmbedProgress): void;
  stop(): void;
}

const timeLeft = (p: EmbedProgress) =>
  p.total === undefined || p.imagesPerSecond <= 0 ? '?' : `${Math.ceil((p.total - p.done) / p.imagesPerSecond)} s`;

/**
 * Progress of encoding `what`: a bar with images/s and the time left on a terminal; otherwise a
 * line every 10 seconds and at the end.
 */
export function encodeProgress(what: string): EncodeProgress {
  let bar: cliProgress.SingleBar | null = null;
  let lastLine = performance.now();
  const onProgress = (p: EmbedProgress) => {
    const fields = { ips: p.imagesPerSecond.toFixed(1), left: timeLeft(p), skipped: p.skipped };
    if (process.stdout.isTTY && p.total !== undefined) {
      bar ??= new cliProgress.SingleBar(
        {
          format: `${what} {value}/{total} [{bar}] {ips} img/s, {left} left, {skipped} unreadable`,
        },
        cliProgress.Presets.shades_classic,
      );
      if (!bar.isActive) bar.start(p.total, 0, fields);
      bar.update(p.done, fields);
    } else if (performance.now() - lastLine > 10_000 || p.done === p.total) {
      lastLine = performance.now();
      console.log(
        `${what}: ${p.done}${p.total === undefined ? '' : `/${p.total}`} images, ${fields.ips} img/s, ${fields.left} left`,
      );
    }
  };
  return { onProgress, stop: () => bar?.stop() };
}
