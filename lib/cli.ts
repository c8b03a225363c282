#!/usr/bin/env node
/**
 * The `rils` command line: `info`, `train`, `zeroshot`, `embed`, `eval`.
 * @internal
 * @module
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parseArgs } from 'node:util';

import cliProgress from 'cli-progress';

import { mnistFrozenFeatures, mnistPatchMaps, mnistZeroShot } from './mnist-eval.js';
import { RilsError } from './errors.js';
import { FileCaptionSource, readCaptionIndex } from './data/files.js';
import { DIGIT_NAMES, MNIST_TRAIN_TEMPLATES, captionFor, loadMnist } from './data/mnist.js';
import { CaptionedImageSource } from './data/source.js';
import { WebDatasetSource } from './data/webdataset.js';
import type { BatchSource } from './data/source.js';
import { runtimeInfo, setNumThreads } from './index.js';
import { distributedFromEnv } from './distributed.js';
import { launchLocalRanks } from './launch.js';
import type { PresetName, RilsOptions } from './options.js';
import { Rils } from './rils.js';
import { writeNpy } from './npy.js';
import { writeSafetensors } from './safetensors.js';
import { ByteTokenizer, ClipTokenizer, WordTokenizer } from './tokenizer.js';
import type { Tokenizer } from './tokenizer.js';
import { fit } from './train.js';
import type { StepProgress } from './train.js';
import { renderHeatmap } from './images.js';
import { writeReport } from './report.js';
import type { CaptionedFile } from './data/files.js';
import sharp from 'sharp';

const USAGE = `rils — RILS vision-language pre-training on LibTorch

  rils build    [cmake-js options]   (compile the addon from source: CPU, or CUDA with a CUDA LibTorch
                                      in LIBTORCH / Torch_DIR / a pip torch)
  rils info
  rils train    --data mnist|DIR|FILE.jsonl|FILE.csv|SHARD.tar[,SHARD.tar…] [--preset micro] [--steps 500] [--batch 64] [--lr 5e-4]
                [--warmup 60] [--weight-decay 0.1] [--recon-weight 0.5] [--seed 0] [--device cpu]
                [--tokenizer word|byte|clip:VOCAB.gz] [--context N] [--checkpoint FILE] [--metrics FILE.jsonl]
                [--out WEIGHTS.safetensors] [--report REPORT.html] [--threads N] [--set field=value ...]
                [--nproc N [--master-port P]] [--gather-grad]
                  --nproc N: N data-parallel processes on this machine (c10d/Gloo), each with 1/N of
                  the data and of the batch; with torchrun's RANK, WORLD_SIZE, MASTER_ADDR and
                  MASTER_PORT set instead, this process joins a job across machines.
  rils zeroshot --weights W --classes a,b,c [--templates slip7|clip80|"a photo of {}."|...] [--top 5] IMAGE...
  rils embed    --weights W --out FILE.safetensors|FILE.npy IMAGE...
  rils eval     --weights W --data mnist   (zero-shot top-1/top-5 with unseen templates, k-NN, 10-shot, linear probe)

Weights carry their config and tokenizer; CLIP-tokenizer models also need --vocab PATH.`;

function fail(message: string): never {
  console.error(`rils: ${message}`);
  process.exit(2);
}

async function tokenizerFor(spec: string, context: number, captions: () => string[]): Promise<Tokenizer> {
  if (spec === 'word') return WordTokenizer.fromTexts(captions(), { contextLength: context });
  if (spec === 'byte') return new ByteTokenizer({ contextLength: context });
  if (spec.startsWith('clip:')) return ClipTokenizer.load(spec.slice(5), { contextLength: context });
  return fail(`unknown tokenizer '${spec}' (word, byte or clip:PATH)`);
}

function blasInfo(): string {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf-8');
    const libs = [...new Set(maps.split('\n').map((l) => l.split(/\s+/).pop() ?? '').filter((l) => /blas|lapack/.test(l)))];
    return libs.length ? libs.join(', ') : 'none mapped';
  } catch {
    return 'unknown';
  }
}

async function info(): Promise<void> {
  const r = runtimeInfo();
  const require = createRequire(import.meta.url);
  const pkg = require('../package.json') as { version: string };
  console.log(`rils ${pkg.version}`);
  console.log(`LibTorch ${r.libtorchVersion}; CUDA ${r.cudaAvailable ? `yes (${r.cudaDeviceCount} device(s))` : 'no'}; threads ${r.threads}`);
  console.log(`BLAS: ${blasInfo()}`);
  console.log(`addon: ${r.addon.variant} (${r.addon.file}); training across processes: ${r.distributedAvailable ? 'yes (c10d/Gloo)' : 'no (built without Gloo)'}`);
  for (const note of r.addon.notes) console.log(`  ${note}`);
  console.log(r.parallelInfo.trim());
}

async function train(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    options: {
      data: { type: 'string' }, preset: { type: 'string', default: 'micro' }, steps: { type: 'string', default: '500' },
      batch: { type: 'string', default: '64' }, lr: { type: 'string', default: '5e-4' }, warmup: { type: 'string', default: '60' },
      'weight-decay': { type: 'string', default: '0.1' }, 'recon-weight': { type: 'string', default: '0.5' },
      seed: { type: 'string', default: '0' }, device: { type: 'string', default: 'cpu' }, tokenizer: { type: 'string', default: 'word' },
      context: { type: 'string' }, checkpoint: { type: 'string' }, metrics: { type: 'string' }, out: { type: 'string', default: 'rils.safetensors' },
      threads: { type: 'string' }, set: { type: 'string', multiple: true, default: [] }, 'on-error': { type: 'string', default: 'skip' },
      report: { type: 'string' }, nproc: { type: 'string' }, 'master-port': { type: 'string' },
      'gather-grad': { type: 'boolean', default: false },
    },
  });
  if (!a.data) fail('train needs --data mnist|DIR|FILE.jsonl|FILE.csv');
  const nproc = Number(a.nproc ?? 1);
  if (!Number.isSafeInteger(nproc) || nproc < 1) fail(`--nproc needs a whole number >= 1, not ${a.nproc}`);
  if (nproc > 1) {
    // This process only launches the ranks: the same command without the launcher's own options
    // (as `--nproc 2` or `--nproc=2`), each rank with torchrun's variables.
    const launcher = /^--(nproc|master-port)(=|$)/;
    const rest = argv.filter((arg, i) => !launcher.test(arg) && !/^--(nproc|master-port)$/.test(argv[i - 1] ?? ''));
    const port = a['master-port'] ? Number(a['master-port']) : undefined;
    process.exit(await launchLocalRanks(process.argv[1]!, ['train', ...rest], nproc, port));
  }
  const distributed = distributedFromEnv();
  const rank = distributed?.rank ?? 0, world = distributed?.worldSize ?? 1;
  if (a.threads) setNumThreads(Number(a.threads));
  const steps = Number(a.steps), globalBatch = Number(a.batch), seed = Number(a.seed);
  // --batch is the global batch; each rank reads every world-th example with its own seed.
  if (globalBatch % world !== 0) fail(`--batch ${globalBatch} does not split evenly over ${world} processes`);
  const batchSize = globalBatch / world, dataSeed = seed + rank;
  const ours = <T>(items: readonly T[]): T[] => items.filter((_, i) => i % world === rank);
  const overrides = Object.fromEntries((a.set as string[]).map((kv) => {
    const [k, v] = kv.split('=');
    return [k, Number(v)];
  }));
  let source: BatchSource;
  let tokenizer: Tokenizer;
  const mnist = a.data === 'mnist';
  const context = Number(a.context ?? (a.tokenizer === 'word' ? 16 : 32));
  if (mnist) {
    const all = loadMnist('train');
    const keep = ours([...all.labels.keys()]);
    const px = all.size * all.size * 3;
    const images = world === 1 ? all.images : new Uint8Array(keep.length * px);
    if (world > 1) keep.forEach((i, k) => images.set(all.images.subarray(i * px, (i + 1) * px), k * px));
    const data = { ...all, labels: Int32Array.from(keep, (i) => all.labels[i]!), images };
    tokenizer = await tokenizerFor(a.tokenizer!, context, () => MNIST_TRAIN_TEMPLATES.flatMap((t) => DIGIT_NAMES.map((d) => t.replaceAll('{}', d))));
    source = new CaptionedImageSource({ ...data, tokenizer, batchSize, seed: dataSeed, caption: (l, rng) => captionFor(l, MNIST_TRAIN_TEMPLATES, rng) });
  } else if (a.data!.endsWith('.tar') || a.data!.includes(',')) {
    const shards = a.data!.split(',').map((s) => s.trim()).filter(Boolean);
    if (shards.length < world) fail(`${shards.length} shard(s) cannot be split over ${world} processes: each rank reads its own shards`);
    tokenizer = await tokenizerFor(a.tokenizer!, context, () => fail('WebDataset shards need --tokenizer byte or clip:PATH'));
    source = new WebDatasetSource({
      shards: ours(shards), tokenizer, batchSize, seed: dataSeed, size: overrides.imageSize ?? (a.preset === 'micro' ? 32 : 224),
      onError: a['on-error'] === 'throw' ? 'throw' : 'skip',
    });
  } else {
    const { items, skipped } = await readCaptionIndex(a.data!);
    if (skipped) console.log(`skipped ${skipped} rows without an image or a caption`);
    tokenizer = await tokenizerFor(a.tokenizer!, context, () => items.map((i) => i.caption));
    source = new FileCaptionSource({
      items: ours(items), tokenizer, batchSize, seed: dataSeed, size: overrides.imageSize ?? (a.preset === 'micro' ? 32 : 224),
      onError: a['on-error'] === 'throw' ? 'throw' : 'skip',
    });
  }
  const options: RilsOptions = {
    preset: a.preset as PresetName, vocabSize: tokenizer.vocabSize, contextLength: tokenizer.contextLength, tokenizer, seed,
    device: a.device as RilsOptions['device'], lr: Number(a.lr), minLr: Number(a.lr) / 50, warmupSteps: Number(a.warmup),
    totalSteps: steps, weightDecay: Number(a['weight-decay']), reconWeight: Number(a['recon-weight']), ...overrides,
    ...(a['gather-grad'] ? { gatherGrad: true } : {}), ...(distributed ? { distributed } : {}),
  };
  const model = await Rils.create(options);
  const log = rank === 0 ? console.log : () => undefined; // one voice for the job
  // A progress bar on a terminal; plain lines every 20 steps otherwise (logs, CI).
  const bar = process.stdout.isTTY && rank === 0
    ? new cliProgress.SingleBar({
      format: 'step {value}/{total} [{bar}] loss {loss} clip-acc {acc}% gated {gated}% {ips} img/s data-wait {wait}%',
    }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(steps, model.step, { loss: '-', acc: '-', gated: '-', ips: '-', wait: '-' });
  const history: StepProgress[] = [];
  const result = await fit(model, source, {
    steps, ...(a.checkpoint ? { checkpoint: a.checkpoint } : {}), ...(a.metrics ? { metrics: a.metrics } : {}),
    onStep: (p) => {
      history.push(p);
      const fields = {
        loss: p.loss.toFixed(4), acc: (100 * p.clipAcc).toFixed(1), gated: (100 * p.gatedFraction).toFixed(1),
        ips: p.imagesPerSecond.toFixed(1), wait: (100 * p.dataWaitFraction).toFixed(1),
      };
      if (bar) bar.update(p.step, fields);
      else if (p.step % 20 === 0 || p.step === steps) {
        log(`step ${p.step}/${steps} loss ${fields.loss} clip-acc ${fields.acc}% gated ${fields.gated}% ` +
          `lr ${p.lr.toExponential(2)} ${fields.ips} img/s data-wait ${fields.wait}%`);
      }
    },
  });
  bar?.stop();
  if (result.resumedFrom) log(`resumed from step ${result.resumedFrom}`);
  if (result.interrupted) log(`stopped at step ${result.stepsDone}; run the same command again to resume`);
  if (rank !== 0) return model.dispose(); // every rank holds the same weights: rank 0 writes them
  await model.saveWeights(a.out!);
  console.log(`weights: ${a.out}${world > 1 ? ` (${world} processes, global batch ${globalBatch})` : ''}`);
  if (a.report) {
    await writeTrainingReport(a.report, model, history, mnist ? null : await readCaptionIndex(a.data!).then((i) => i.items.slice(0, 3)).catch(() => null));
    console.log(`report: ${a.report}`);
  }
  if ((source instanceof FileCaptionSource || source instanceof WebDatasetSource) && source.skipped) {
    console.log(`skipped ${source.skipped} unreadable samples`);
  }
  model.dispose();
}

/** Loss curves of this run and patch-semantics maps of three images (MNIST test digits, or the first items). */
async function writeTrainingReport(file: string, model: Rils, history: StepProgress[], items: CaptionedFile[] | null): Promise<void> {
  const images: { caption: string; png: Uint8Array }[] = [];
  const grid = model.config.imageSize / model.config.patchSize;
  if (items === null) {
    images.push(...(await mnistPatchMaps(model, loadMnist('test'), [0, 400, 1200])));
  } else if (items.length > 0) {
    const sem = await model.patchSemantics(items.map((i) => i.image), items.map((i) => i.caption));
    for (const [k, item] of items.entries()) {
      const n = grid * grid, g = items.length;
      const map = Float32Array.from({ length: n }, (_, p) => sem.probabilities[(k * n + p) * g + k]!);
      images.push({ caption: item.caption, png: await renderHeatmap(item.image, map, grid, { size: 160 }) });
    }
  }
  await writeReport(file, { title: `rils train: ${history.length} steps`, runs: [{ name: 'train', steps: history }], images });
}

async function loadModel(a: { weights?: string; vocab?: string; device?: string }): Promise<Rils> {
  if (!a.weights) fail('needs --weights FILE');
  return Rils.fromWeights(a.weights!, {
    ...(a.vocab ? { clipVocabPath: a.vocab } : {}), ...(a.device ? { device: a.device as RilsOptions['device'] } : {}),
  });
}

async function zeroshot(argv: string[]): Promise<void> {
  const { values: a, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { weights: { type: 'string' }, vocab: { type: 'string' }, device: { type: 'string' }, classes: { type: 'string' },
      templates: { type: 'string', multiple: true }, top: { type: 'string', default: '5' } },
  });
  if (!a.classes || positionals.length === 0) fail('zeroshot needs --classes a,b,c and image files');
  const model = await loadModel(a);
  const t = a.templates ?? ['slip7'];
  const templates = t.length === 1 && (t[0] === 'slip7' || t[0] === 'clip80') ? (t[0] as 'slip7' | 'clip80') : t;
  const classifier = await model.zeroShotClassifier(a.classes!.split(',').map((c) => c.trim()), { templates });
  const r = await classifier.classify(positionals, { topK: Number(a.top) });
  r.top.forEach((top, i) => {
    console.log(`${positionals[i]}: ${top.labels.map((l, k) => `${l} ${(100 * top.probabilities[k]!).toFixed(1)}%`).join(', ')}`);
  });
  model.dispose();
}

async function embed(argv: string[]): Promise<void> {
  const { values: a, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { weights: { type: 'string' }, vocab: { type: 'string' }, device: { type: 'string' }, out: { type: 'string' } },
  });
  if (!a.out || positionals.length === 0) fail('embed needs --out FILE and image files');
  const model = await loadModel(a);
  const { embeddings } = await model.encodeImages(positionals);
  const shape = [positionals.length, model.config.embedDim];
  if (a.out!.endsWith('.npy')) {
    await writeNpy(a.out!, embeddings, shape);
  } else {
    await writeSafetensors(a.out!, [{ name: 'image_embed_norm', dtype: 'F32', shape, data: embeddings }],
      { images: JSON.stringify(positionals.map((p) => path.resolve(p))) });
  }
  console.log(`${a.out}: ${shape.join('×')} embeddings`);
  model.dispose();
}

async function evaluate(argv: string[]): Promise<void> {
  const { values: a } = parseArgs({
    args: argv,
    options: { weights: { type: 'string' }, vocab: { type: 'string' }, device: { type: 'string' }, data: { type: 'string', default: 'mnist' } },
  });
  if (a.data !== 'mnist') fail('eval supports --data mnist (labelled test digits)');
  const model = await loadModel(a);
  const train = loadMnist('train'), test = loadMnist('test');
  const { top1, top5 } = await mnistZeroShot(model, test);
  const { knn, fewShot10, linearProbe } = await mnistFrozenFeatures(model, train, test);
  console.log(JSON.stringify({ zeroShotTop1: top1, zeroShotTop5: top5, knn20: knn, fewShot10, linearProbe }));
  model.dispose();
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: string[]) => Promise<void>> = { info, train, zeroshot, embed, eval: evaluate };
const run = command ? commands[command] : undefined;
if (!run) {
  console.log(USAGE);
  process.exit(command && command !== 'help' && command !== '--help' ? 2 : 0);
}
run(rest).catch((error: unknown) => {
  if (error instanceof RilsError || (error as { code?: string })?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    fail((error as Error).message);
  }
  throw error;
});
