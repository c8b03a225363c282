/**
 * What `rils train` shows while it runs: a progress bar on a terminal, plain lines every 20 steps
 * otherwise (logs, CI), from rank 0 only; and the steps' history for the report.
 * @internal
 * @module
 */
import cliProgress from 'cli-progress';

import type { StepProgress } from '../train.js';

/** Follows a run: pass `onStep` to fit(), then call `stop()`. */
export interface TrainProgress {
  onStep(progress: StepProgress): void;
  /** Every step's progress, in order. */
  readonly history: StepProgress[];
  stop(): void;
}

function fieldsOf(p: StepProgress) {
  return {
    loss: p.loss.toFixed(4), acc: (100 * p.clipAcc).toFixed(1), gated: (100 * p.gatedFraction).toFixed(1),
    ips: p.imagesPerSecond.toFixed(1), wait: (100 * p.dataWaitFraction).toFixed(1),
  };
}

/** Progress of a run to `steps` that starts at step `from`; silent on ranks other than 0. */
export function trainProgress(steps: number, from: number, rank: number): TrainProgress {
  const history: StepProgress[] = [];
  const bar = process.stdout.isTTY && rank === 0
    ? new cliProgress.SingleBar({
      format: 'step {value}/{total} [{bar}] loss {loss} clip-acc {acc}% gated {gated}% {ips} img/s data-wait {wait}%',
    }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(steps, from, { loss: '-', acc: '-', gated: '-', ips: '-', wait: '-' });
  const onStep = (p: StepProgress) => {
    history.push(p);
    const f = fieldsOf(p);
    if (bar) bar.update(p.step, f);
    else if (rank === 0 && (p.step % 20 === 0 || p.step === steps)) {
      console.log(`step ${p.step}/${steps} loss ${f.loss} clip-acc ${f.acc}% gated ${f.gated}% ` +
        `lr ${p.lr.toExponential(2)} ${f.ips} img/s data-wait ${f.wait}%`);
    }
  };
  return { onStep, history, stop: () => bar?.stop() };
}
