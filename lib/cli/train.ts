/**
 * `rils train`: trains a model on a dataset (one process, `--nproc N` local ranks, or one rank of a
 * job started with torchrun's variables), with checkpoints, metrics, a report and the weights.
 * @internal
 * @module
 */
import { openDataset } from '../data/registry.js';
import type { Dataset, TokenizerFactory } from '../data/registry.js';
import { distributedFromEnv } from '../distributed.js';
import type { DistributedOptions } from '../distributed.js';
import { setNumThreads } from '../index.js';
import { launchLocalRanks } from '../launch.js';
import { presetConfig } from '../options.js';
import type { Device, PresetName, RilsOptions } from '../options.js';
import { Rils } from '../rils.js';
import { ByteTokenizer, ClipTokenizer, WordTokenizer } from '../tokenizer.js';
import { fit } from '../train.js';
import type { FitResult, StepProgress } from '../train.js';
import { fail, parseCommand } from './common.js';
import type { Command } from './common.js';
import { trainProgress } from './progress.js';
import { writeTrainingReport } from './train-report.js';

const OPTIONS = {
  data: { type: 'string' }, preset: { type: 'string', default: 'micro' }, steps: { type: 'string', default: '500' },
  batch: { type: 'string', default: '64' }, lr: { type: 'string', default: '5e-4' }, warmup: { type: 'string', default: '60' },
  'weight-decay': { type: 'string', default: '0.1' }, 'recon-weight': { type: 'string', default: '0.5' },
  seed: { type: 'string', default: '0' }, device: { type: 'string', default: 'cpu' }, tokenizer: { type: 'string', default: 'word' },
  context: { type: 'string' }, checkpoint: { type: 'string' }, metrics: { type: 'string' }, out: { type: 'string', default: 'rils.safetensors' },
  threads: { type: 'string' }, set: { type: 'string', multiple: true, default: [] as string[] }, 'on-error': { type: 'string', default: 'skip' },
  report: { type: 'string' }, nproc: { type: 'string' }, 'master-port': { type: 'string' },
  'gather-grad': { type: 'boolean', default: false },
} as const;

type TrainArgs = ReturnType<typeof parseCommand<typeof OPTIONS>>['values'];

/** This process's place in the job and the numbers of the run. */
interface Run {
  rank: number;
  worldSize: number;
  distributed: DistributedOptions | undefined;
  steps: number;
  /** `--batch`: the global batch, split evenly over the processes. */
  globalBatch: number;
  seed: number;
  /** `--set field=value` overrides of the preset and the training options. */
  overrides: Record<string, number>;
}

/** This process only launches the ranks: the same command without the launcher's own options. */
async function launch(argv: string[], nproc: number, masterPort: string | undefined): Promise<never> {
  // Both spellings, `--nproc 2` and `--nproc=2`; each rank gets torchrun's variables.
  const launcher = /^--(nproc|master-port)(=|$)/;
  const rest = argv.filter((arg, i) => !launcher.test(arg) && !/^--(nproc|master-port)$/.test(argv[i - 1] ?? ''));
  process.exit(await launchLocalRanks(process.argv[1]!, ['train', ...rest], nproc, masterPort ? Number(masterPort) : undefined));
}

function runOf(a: TrainArgs): Run {
  const distributed = distributedFromEnv();
  const worldSize = distributed?.worldSize ?? 1, globalBatch = Number(a.batch);
  if (globalBatch % worldSize !== 0) fail(`--batch ${globalBatch} does not split evenly over ${worldSize} processes`);
  const overrides = Object.fromEntries(a.set.map((kv) => {
    const [k, v] = kv.split('=');
    return [k, Number(v)];
  }));
  return { rank: distributed?.rank ?? 0, worldSize, distributed, steps: Number(a.steps), globalBatch, seed: Number(a.seed), overrides };
}

/** `--tokenizer word|byte|clip:PATH` with `--context`; a word vocabulary comes from the captions. */
function tokenizerOf(a: TrainArgs): TokenizerFactory {
  const spec = a.tokenizer, context = Number(a.context ?? (spec === 'word' ? 16 : 32));
  if (spec === 'word') return (captions) => WordTokenizer.fromTexts(captions(), { contextLength: context });
  if (spec === 'byte') return () => new ByteTokenizer({ contextLength: context });
  if (spec.startsWith('clip:')) return () => ClipTokenizer.load(spec.slice(5), { contextLength: context });
  return fail(`unknown tokenizer '${spec}' (word, byte or clip:PATH)`);
}

/** Each rank reads every world-th example with its own seed, at the model's input size. */
async function openData(a: TrainArgs, run: Run): Promise<Dataset> {
  const size = run.overrides.imageSize ?? presetConfig(a.preset as PresetName).imageSize;
  const data = await openDataset(a.data!, {
    tokenizer: tokenizerOf(a), batchSize: run.globalBatch / run.worldSize, seed: run.seed + run.rank, size,
    rank: run.rank, worldSize: run.worldSize, onError: a['on-error'] === 'throw' ? 'throw' : 'skip',
  });
  if (data.skippedRows) console.log(`skipped ${data.skippedRows} rows without an image or a caption`);
  return data;
}

function modelOptions(a: TrainArgs, run: Run, data: Dataset): RilsOptions {
  const { tokenizer } = data, lr = Number(a.lr);
  return {
    preset: a.preset as PresetName, vocabSize: tokenizer.vocabSize, contextLength: tokenizer.contextLength, tokenizer, seed: run.seed,
    device: a.device as Device, lr, minLr: lr / 50, warmupSteps: Number(a.warmup), totalSteps: run.steps,
    weightDecay: Number(a['weight-decay']), reconWeight: Number(a['recon-weight']), ...run.overrides,
    ...(a['gather-grad'] ? { gatherGrad: true } : {}), ...(run.distributed ? { distributed: run.distributed } : {}),
  };
}

/** After the run: what happened, then rank 0 writes the weights and the report. */
async function finish(a: TrainArgs, run: Run, model: Rils, data: Dataset, result: FitResult, history: StepProgress[]) {
  const log = run.rank === 0 ? console.log : () => undefined; // one voice for the job
  if (result.resumedFrom) log(`resumed from step ${result.resumedFrom}`);
  if (result.interrupted) log(`stopped at step ${result.stepsDone}; run the same command again to resume`);
  if (run.rank !== 0) return; // every rank holds the same weights: rank 0 writes them
  await model.saveWeights(a.out);
  console.log(`weights: ${a.out}${run.worldSize > 1 ? ` (${run.worldSize} processes, global batch ${run.globalBatch})` : ''}`);
  if (a.report) {
    await writeTrainingReport(a.report, model, history, data);
    console.log(`report: ${a.report}`);
  }
  if (data.skipped()) console.log(`skipped ${data.skipped()} unreadable samples`);
}

async function train(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, OPTIONS);
  if (!a.data) fail('train needs --data mnist|DIR|FILE.jsonl|FILE.csv');
  const nproc = Number(a.nproc ?? 1);
  if (!Number.isSafeInteger(nproc) || nproc < 1) fail(`--nproc needs a whole number >= 1, not ${a.nproc}`);
  if (nproc > 1) return launch(argv, nproc, a['master-port']);
  const run = runOf(a);
  if (a.threads) setNumThreads(Number(a.threads));
  const data = await openData(a, run);
  const model = await Rils.create(modelOptions(a, run, data));
  const progress = trainProgress(run.steps, model.step, run.rank);
  const result = await fit(model, data.source, {
    steps: run.steps, ...(a.checkpoint ? { checkpoint: a.checkpoint } : {}), ...(a.metrics ? { metrics: a.metrics } : {}),
    onStep: progress.onStep, onWarning: (message) => console.error(`rils: ${message}`),
  });
  progress.stop();
  await finish(a, run, model, data, result, progress.history);
  model.dispose();
}

export const trainCommand: Command = {
  usage: `  rils train    --data mnist|DIR|FILE.jsonl|FILE.csv|SHARD.tar[,SHARD.tar…] [--preset micro] [--steps 500] [--batch 64] [--lr 5e-4]
                [--warmup 60] [--weight-decay 0.1] [--recon-weight 0.5] [--seed 0] [--device cpu]
                [--tokenizer word|byte|clip:VOCAB.gz] [--context N] [--checkpoint FILE] [--metrics FILE.jsonl]
                [--out WEIGHTS.safetensors] [--report REPORT.html] [--threads N] [--set field=value ...]
                [--nproc N [--master-port P]] [--gather-grad]
                  --nproc N: N data-parallel processes on this machine (c10d/Gloo), each with 1/N of
                  the data and of the batch; with torchrun's RANK, WORLD_SIZE, MASTER_ADDR and
                  MASTER_PORT set instead, this process joins a job across machines.`,
  run: train,
};
