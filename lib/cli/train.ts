/**
 * `rils train`: trains a model on a dataset (one process, `--nproc N` local ranks, or one rank of a
 * job started with torchrun's variables), with checkpoints, metrics, a report and the weights.
 * @internal
 * @module
 */
import { openDataset } from '../data/registry.js';
import type { Dataset, Skips, TokenizerFactory } from '../data/registry.js';
import { distributedFromEnv } from '../distributed.js';
import type { DistributedOptions } from '../distributed.js';
import { setNumThreads } from '../index.js';
import { launchLocalRanks } from '../launch.js';
import { PRECISIONS, isOptionName, presetConfig } from '../options.js';
import { PRESETS } from '../schema.js';
import type { Device, Precision, PresetName, RilsOptions } from '../options.js';
import { Rils } from '../rils.js';
import { ByteTokenizer, ClipTokenizer, WordTokenizer } from '../tokenizer.js';
import { fit } from '../train.js';
import type { FitResult, StepProgress } from '../train.js';
import { invalid } from '../validate.js';
import { choiceOption, fail, integerOption, numberOption, optionalInteger, outputOption, parseCommand } from './common.js';
import type { Command } from './common.js';
import { checkOutputs } from './outputs.js';
import { trainProgress } from './progress.js';
import { writeTrainingReport } from './train-report.js';

const OPTIONS = {
  data: { type: 'string' }, preset: { type: 'string', default: 'micro' }, steps: { type: 'string', default: '500' },
  batch: { type: 'string', default: '64' }, lr: { type: 'string', default: '5e-4' }, warmup: { type: 'string', default: '60' },
  'weight-decay': { type: 'string', default: '0.1' }, 'recon-weight': { type: 'string', default: '0.5' },
  seed: { type: 'string', default: '0' }, device: { type: 'string', default: 'cpu' }, precision: { type: 'string', default: 'auto' }, tokenizer: { type: 'string', default: 'word' },
  context: { type: 'string' }, checkpoint: { type: 'string' }, metrics: { type: 'string' }, out: { type: 'string', default: 'rils.safetensors' },
  threads: { type: 'string' }, set: { type: 'string', multiple: true, default: [] as string[] }, 'on-error': { type: 'string', default: 'skip' }, 'max-pixels': { type: 'string' },
  report: { type: 'string' }, nproc: { type: 'string' }, 'master-port': { type: 'string' },
  'gather-grad': { type: 'boolean', default: false },
} as const;

type TrainArgs = ReturnType<typeof parseCommand<typeof OPTIONS>>['values'];

/** The checked settings of a run: every value is validated before anything starts. */
interface Settings {
  data: string;
  preset: PresetName;
  device: Device;
  precision: Precision;
  gatherGrad: boolean;
  /** Output files. */
  out: string;
  checkpoint: string | undefined;
  metrics: string | undefined;
  report: string | undefined;
  steps: number;
  /** `--batch`: the global batch, split evenly over the processes. */
  globalBatch: number;
  seed: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  reconWeight: number;
  threads: number | undefined;
  nproc: number;
  masterPort: number | undefined;
  onError: 'skip' | 'throw';
  maxPixels: number | undefined;
  tokenizer: TokenizerFactory;
  /** `--set field=value` overrides of the preset and the training options. */
  overrides: Record<string, number>;
}

/** This process's place in the job. */
interface Job {
  rank: number;
  worldSize: number;
  distributed: DistributedOptions | undefined;
}

/** `--set field=number`, each field a model or training option. */
function overridesOf(set: readonly string[]): Record<string, number> {
  return Object.fromEntries(set.map((kv) => {
    const [, field = '', text = ''] = /^([^=]*)=(.*)$/.exec(kv) ?? [];
    const value = text.trim() === '' ? NaN : Number(text);
    if (!isOptionName(field) || !Number.isFinite(value)) throw invalid('field=number (a model or training option)', '--set', kv);
    return [field, value];
  }));
}

/** `--tokenizer word|byte|clip|clip:PATH` with `--context`; a word vocabulary comes from the captions. */
function tokenizerOf(spec: string, contextOption: string | undefined): TokenizerFactory {
  const context = contextOption === undefined ? (spec === 'word' ? 16 : 32) : integerOption(contextOption, 'context', 2);
  if (spec === 'word') return (captions) => WordTokenizer.fromTexts(captions(), { contextLength: context });
  if (spec === 'byte') return () => new ByteTokenizer({ contextLength: context });
  if (spec === 'clip') return () => ClipTokenizer.load(undefined, { contextLength: context });
  if (spec.startsWith('clip:')) return () => ClipTokenizer.load(spec.slice(5), { contextLength: context });
  throw invalid('word, byte, clip or clip:PATH', '--tokenizer', spec);
}

function settingsOf(a: TrainArgs & { data: string }): Settings {
  for (const option of ['out', 'checkpoint', 'metrics', 'report'] as const) outputOption(a[option], option);
  checkOutputs({ '--out': a.out, '--checkpoint': a.checkpoint, '--metrics': a.metrics, '--report': a.report },
    { '--data': a.data, '--tokenizer': a.tokenizer.startsWith('clip:') ? a.tokenizer.slice(5) : undefined });
  return {
    data: a.data, preset: choiceOption(a.preset, 'preset', Object.keys(PRESETS) as PresetName[]), device: a.device as Device,
    precision: choiceOption(a.precision, 'precision', PRECISIONS), gatherGrad: a['gather-grad'],
    out: a.out, checkpoint: a.checkpoint, metrics: a.metrics, report: a.report, steps: integerOption(a.steps, 'steps', 1),
    globalBatch: integerOption(a.batch, 'batch', 1), seed: integerOption(a.seed, 'seed', 0), lr: numberOption(a.lr, 'lr', 0),
    warmup: integerOption(a.warmup, 'warmup', 0), weightDecay: numberOption(a['weight-decay'], 'weight-decay', 0),
    reconWeight: numberOption(a['recon-weight'], 'recon-weight', 0),
    threads: optionalInteger(a.threads, 'threads', 1), nproc: optionalInteger(a.nproc, 'nproc', 1) ?? 1,
    masterPort: optionalInteger(a['master-port'], 'master-port', 1, 65535),
    onError: choiceOption(a['on-error'], 'on-error', ['skip', 'throw'] as const),
    maxPixels: optionalInteger(a['max-pixels'], 'max-pixels', 1), tokenizer: tokenizerOf(a.tokenizer, a.context),
    overrides: overridesOf(a.set),
  };
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
  if (s.globalBatch % worldSize !== 0) fail(`--batch ${s.globalBatch} does not split evenly over ${worldSize} processes`);
  return { rank: distributed?.rank ?? 0, worldSize, distributed };
}

/** Each rank reads every world-th example with its own seed, at the model's input size. */
async function openData(s: Settings, job: Job): Promise<Dataset> {
  const size = s.overrides.imageSize ?? presetConfig(s.preset).imageSize;
  const data = await openDataset(s.data, {
    tokenizer: s.tokenizer, batchSize: s.globalBatch / job.worldSize, seed: s.seed + job.rank, size,
    rank: job.rank, worldSize: job.worldSize, onError: s.onError, ...(s.maxPixels ? { maxPixels: s.maxPixels } : {}),
  });
  if (data.skippedRows) console.log(`skipped ${data.skippedRows} rows without an image or a caption`);
  return data;
}

function modelOptions(s: Settings, job: Job, data: Dataset): RilsOptions {
  const { tokenizer } = data;
  return {
    preset: s.preset, vocabSize: tokenizer.vocabSize, contextLength: tokenizer.contextLength, tokenizer, seed: s.seed,
    device: s.device, precision: s.precision, lr: s.lr, minLr: s.lr / 50, warmupSteps: s.warmup, totalSteps: s.steps,
    weightDecay: s.weightDecay, reconWeight: s.reconWeight, ...s.overrides,
    ...(s.gatherGrad ? { gatherGrad: true } : {}), ...(job.distributed ? { distributed: job.distributed } : {}),
  };
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
  await model.saveWeights(s.out);
  console.log(`weights: ${s.out}${job.worldSize > 1 ? ` (${job.worldSize} processes, global batch ${s.globalBatch})` : ''}`);
  if (s.report) {
    await writeTrainingReport(s.report, model, history, data);
    console.log(`report: ${s.report}`);
  }
  reportSkips(data.skips());
}

/** What reading skipped, in one line each (nothing when nothing was). */
function reportSkips(k: Skips): void {
  if (k.samples) console.log(`skipped ${k.samples} unreadable samples${k.oversized ? ` (${k.oversized} over --max-pixels)` : ''}`);
  if (k.shards) console.log(`skipped the rest of ${k.shards} damaged shard(s); the last: ${k.lastShardError ?? 'unknown'}`);
}

async function train(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, trainCommand, OPTIONS);
  if (!a.data) fail('train needs --data mnist|DIR|FILE.jsonl|FILE.csv|SHARD.tar');
  const s = settingsOf({ ...a, data: a.data });
  if (s.nproc > 1) return launch(argv, s);
  const job = jobOf(s);
  if (s.threads !== undefined) setNumThreads(s.threads);
  const data = await openData(s, job);
  const model = await Rils.create(modelOptions(s, job, data));
  const progress = trainProgress(s.steps, model.step, job.rank);
  const result = await fit(model, data.source, {
    steps: s.steps, ...(s.checkpoint ? { checkpoint: s.checkpoint } : {}), ...(s.metrics ? { metrics: s.metrics } : {}),
    onStep: progress.onStep, onWarning: (message) => console.error(`rils: ${message}`),
  });
  progress.stop();
  await finish(s, job, { model, data, result, history: progress.history });
  model.dispose();
}

export const trainCommand: Command = {
  usage: `rils train    --data mnist|DIR|FILE.jsonl|FILE.csv|SHARD.tar[,SHARD.tar…] [--preset micro] [--steps 500] [--batch 64] [--lr 5e-4]
                [--warmup 60] [--weight-decay 0.1] [--recon-weight 0.5] [--seed 0] [--device cpu] [--precision auto|fp32|bf16]
                [--tokenizer word|byte|clip|clip:VOCAB.gz] [--context N] [--checkpoint FILE] [--metrics FILE.jsonl]
                [--out WEIGHTS.safetensors] [--report REPORT.html] [--threads N] [--set field=value ...]
                [--nproc N [--master-port P]] [--gather-grad] [--on-error skip|throw] [--max-pixels N]
                  --nproc N: N data-parallel processes on this machine (c10d/Gloo), each with 1/N of
                  the data and of the batch; with torchrun's RANK, WORLD_SIZE, MASTER_ADDR and
                  MASTER_PORT set instead, this process joins a job across machines.`,
  run: train,
};
