/**
 * The fine-tuning schedule that {@link Rils.fromPretrained} and `rils train --init` start from, in
 * words for help texts, and the warning for a warmup that outlasts the run.
 * @module
 */
import { checkInteger } from '../validate.js';
import type { TrainingOptions } from './options.js';

/**
 * The training options that {@link Rils.fromPretrained} (and `rils train --init`) start from, yours
 * overriding them: fine-tuning's, not pre-training's. A peak lr of 1e-5 and weight decay 0.1 (the
 * range open_clip and WiSE-FT fine-tune CLIP with), and, when `totalSteps` is given, a linear warmup
 * from 0 over its first 10% (at most 500 steps), then a cosine to 0 at `totalSteps`. Without
 * `totalSteps` the lr stays at 1e-5.
 *
 * @example
 * ```ts
 * fineTuningSchedule(1000); // { lr: 1e-5, weightDecay: 0.1, warmupStartLr: 0, warmupSteps: 100, minLr: 0, totalSteps: 1000 }
 * ```
 */
export function fineTuningSchedule(totalSteps = 0): TrainingOptions {
  const steps = checkInteger(totalSteps, 'totalSteps', 0);
  return {
    lr: 1e-5,
    weightDecay: 0.1,
    warmupStartLr: 0,
    warmupSteps: Math.min(500, Math.ceil(steps / 10)),
    minLr: 0,
    totalSteps: steps,
  };
}

/** {@link fineTuningSchedule} in words, for help texts. @internal */
export function describeSchedule(): string {
  const { lr, weightDecay } = fineTuningSchedule(0),
    steps = 1000,
    warmup = fineTuningSchedule(steps).warmupSteps!;
  return (
    `lr ${lr}, weight decay ${weightDecay}, a linear warmup from 0 over the first ${(100 * warmup) / steps}% of ` +
    `--steps (at most ${fineTuningSchedule(1e9).warmupSteps} steps), then a cosine to 0 at --steps.`
  );
}

/**
 * A warning for a schedule whose warmup does not end before its last step (the lr would never reach
 * its peak), or undefined. @internal
 */
export function scheduleWarning(
  t: Pick<Required<TrainingOptions>, 'warmupSteps' | 'totalSteps'>,
  steps = t.totalSteps,
): string | undefined {
  if (steps <= 0 || t.warmupSteps < steps) return undefined;
  return (
    `warmupSteps (${t.warmupSteps}) >= ${steps === t.totalSteps ? 'totalSteps' : 'the steps of this run'} (${steps}): ` +
    'the learning rate never leaves its warmup (fewer warmupSteps, or more steps)'
  );
}
