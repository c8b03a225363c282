/**
 * `rils train`: trains a model on a dataset (one process, `--nproc N` local ranks, or one rank of a
 * job started with torchrun's variables), with checkpoints, metrics, a report and the weights.
 * @internal
 * @module
 */
import { openDataset } from '../data/formats.js';
import type { Dataset, Skips, TokenizerFactory } from '../data/dataset.js';
import { distributedFromEnv } from '../train/distributed.js';
import type { DistributedOptions } from '../train/distributed.js';
import { setNumThreads } from '../index.js';
import { launchLocalRanks } from '../train/launch.js';
import { presetConfig } from '../model/options.js';
import { describeSchedule } from '../model/schedule.js';
import { Rils } from '../rils.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { fit } from '../train/fit.js';
import type { FitResult, StepProgress } from '../train/fit.js';
import { parseCommand } from './args.js';
import type { Command } from './args.js';
import { fail } from './common.js';
import { trainProgress } from './progress.js';
import { TRAIN_OPTIONS, settingsOf } from './train-options.js';
import type { Settings } from './train-options.js';
import { writeTrainingReport } from '../report/training.js';

/** This process's place in the job. */
interface Job {
  rank: number;
  worldSize: number;
  distributed: DistributedOptions | undefined;
}

/** This process only launches the ranks: the same command without the launcher's own options. */
async function launch(argv: string[], s: Settings): Promise<never> {
  // Both spellings, `--nproc 2` and `--nproc=2`; each rank gets torchrun's variables.
  const launcher = /^--(nproc|master-port)(=|$)/;
  const rest = argv.filter((arg, i) => !launcher.test(arg) && !/^--(nproc|master-port)$/.test(argv[i - 1] ?? ''));
  process.exit(await launchLocalRanks(process.argv[1]!, ['train', ...rest], s.nproc, s.masterPort));
}

/** The job from torchrun's variables (a single process without them); the batch must split evenly. */
function jobOf(s: Settings): Job {
  const distributed = distributedFromEnv();
  const worldSize = distributed?.worldSize ?? 1;
  if (s.globalBatch % worldSize !== 0)
    fail(`--batch ${s.globalBatch} does not split evenly over ${worldSize} processes`);
  return { rank: distributed?.rank ?? 0, worldSize, distributed };
}

/** Each rank reads every world-th example with its own seed, at the model's input size, in its tokenizer. */
async function openData(
  s: Settings,
  job: Job,
  tokenizer: TokenizerFactory | Tokenizer,
  size: number,
): Promise<Dataset> {
  const data = await openDataset(s.data, {
    tokenizer,
    batchSize: s.globalBatch / job.worldSize,
    seed: (s.model.seed ?? 0) + job.rank,
    size,
    rank: job.rank,
    worldSize: job.worldSize,
    onError: s.onError,
    ...(s.maxPixels ? { maxPixels: s.maxPixels } : {}),
    shards: s.shards,
  });
  if (data.skippedRows) console.log(`skipped ${data.skippedRows} rows without an image or a caption`);
  return data;
}

/**
 * The model and its data. From scratch, the data comes first (a word vocabulary is built from its
 * captions); with --init, the checkpoint gives the model, its input size and its tokenizer.
 */
async function modelAndData(s: Settings, job: Job): Promise<{ model: Rils; data: Dataset }> {
  const distributed = job.distributed ? { distributed: job.distributed } : {};
  if (s.init === undefined) {
    const size = (s.model.imageSize as number | undefined) ?? presetConfig(s.model.preset!).imageSize;
    const data = await openData(s, job, s.tokenizer!, size);
    const { tokenizer } = data;
    const model = await Rils.create({
      ...s.model,
      vocabSize: tokenizer.vocabSize,
      contextLength: tokenizer.contextLength,
      tokenizer,
      ...distributed,
    });
    return { model, data };
  }
  const model = await Rils.fromPretrained(s.init, { ...s.model, ...distributed });
  if (!model.tokenizer) {
    model.dispose();
    fail(
      `${s.init} has no tokenizer rils can rebuild (vocabulary ${model.config.vocabSize}): for CLIP's BPE, pass --vocab`,
    );
  }
  try {
    return { model, data: await openData(s, job, model.tokenizer, model.config.imageSize) };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/** What a run leaves behind. */
interface Trained {
  model: Rils;
  data: Dataset;
  result: FitResult;
  history: StepProgress[];
}

/** After the run: what happened, then rank 0 writes the weights and the report. */
async function finish(s: Settings, job: Job, { model, data, result, history }: Trained): Promise<void> {
  const log = job.rank === 0 ? console.log : () => undefined; // one voice for the job
  if (result.resumedFrom) log(`resumed from step ${result.resumedFrom}`);
  if (result.interrupted) log(`stopped at step ${result.stepsDone}; run the same command again to resume`);
  if (job.rank !== 0) return; // every rank holds the same weights: rank 0 writes them
  await model.saveWeights(s.out, { layout: s.layout });
  console.log(
    `weights: ${s.out}${job.worldSize > 1 ? ` (${job.worldSize} processes, global batch ${s.globalBatch})` : ''}`,
  );
  if (s.report) {
    await writeTrainingReport(s.report, model, history, data);
    console.log(`report: ${s.report}`);
  }
  reportSkips(data.skips());
}

/** What reading skipped, in one line each (nothing when nothing was). */
function reportSkips(k: Skips): void {
  if (k.samples)
    console.log(`skipped ${k.samples} unreadable samples${k.oversized ? ` (${k.oversized} over --max-pixels)` : ''}`);
  if (k.shards)
    console.log(`skipped the rest of ${k.shards} damaged shard(s); the last: ${k.lastShardError ?? 'unknown'}`);
  if (k.retries) console.log(`retried ${k.retries} failed shard read(s)`);
}

async function train(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, trainCommand);
  if (!a.data) fail('train needs --data mnist|DIR|FILE.jsonl|FILE.csv|SHARDS');
  const s = settingsOf(a as Record<string, string | string[] | undefined>, a.data as string);
  if (s.nproc > 1) return launch(argv, s);
  const job = jobOf(s);
  if (s.threads !== undefined) setNumThreads(s.threads);
  const { model, data } = await modelAndData(s, job);
  const progress = trainProgress(s.steps, model.step, job.rank, model.trainingOptions.reconWeight > 0);
  const result = await fit(model, data.source, {
    steps: s.steps,
    ...(s.checkpoint ? { checkpoint: s.checkpoint } : {}),
    ...(s.metrics ? { metrics: s.metrics } : {}),
    onStep: progress.onStep,
    onWarning: (message) => console.error(`rils: ${message}`),
  });
  progress.stop();
  data.source.dispose?.(); // shard streams and pipe: commands still open
  await finish(s, job, { model, data, result, history: progress.history });
  model.dispose();
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'Trains a model on captioned images: RILS or CLIP from scratch, or fine-tuning from a checkpoint (--init).',
  synopsis: '--data DATA [--init CHECKPOINT] [options]',
  options: TRAIN_OPTIONS,
  notes: `From scratch, every field's default is the library's (Rils.create), but --total-steps, which follows --steps.
With --init, the training fields start from the fine-tuning schedule of Rils.fromPretrained instead: ${describeSchedule()}
On a CLIP checkpoint the loss is CLIP's (--recon-weight 0); --recon-weight > 0 adds RILS's term through a new
feature decoder. Fields given here override either. A true|false option alone is true; --no-NAME is false.
--nproc N runs N processes on this machine; with torchrun's RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set
instead, this process joins a job across machines.`,
  run: train,
};
