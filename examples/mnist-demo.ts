// The main job: RILS pre-training of `micro` on MNIST digits with captions, then zero-shot
// classification of the MNIST test digits with prompt templates never seen in training; then the
// same budget with the reconstruction term off (CLIP only), compared on zero-shot, k-NN and
// few-shot accuracy. The evaluation is the library's general one (evaluateClassification), as for
// any labelled image folder. Everything comes from this repository and its npm dependencies.
// Run: npm run demo            (options: --steps N  --batch N  --precision fp32|bf16  --no-compare  --out DIR)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
  Rils,
  WordTokenizer,
  evaluateClassification,
  fit,
  openDataset,
  openLabelledImages,
  patchMaps,
  runtimeInfo,
  writeEvaluationReport,
  writeReport,
} from 'rils';
import type { Tokenizer } from 'rils';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '1150' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '6e-4' },
    precision: { type: 'string', default: 'fp32' },
    'no-compare': { type: 'boolean', default: false },
    out: { type: 'string', default: 'demo-output' },
  },
});
const steps = Number(args.steps),
  batchSize = Number(args.batch),
  lr = Number(args.lr);
const precision = args.precision as 'fp32' | 'bf16'; // checked by Rils.create
mkdirSync(args.out, { recursive: true });

// The built-in 'mnist' set: captioned digits for training (8 templates, the spec's crops), the same
// digits labelled for the evaluation, with zero-shot templates never used in training.
const digits = await openLabelledImages('mnist');
const { test } = digits;
const [classNames, templates] = [test.classNames, test.templates!];
/** The training batches; the first call makes the word vocabulary from the training captions only (eval-only words become UNK). */
const openTraining = (tokenizer: Tokenizer | undefined) =>
  openDataset('mnist', {
    tokenizer: tokenizer ?? ((captions) => WordTokenizer.fromTexts(captions(), { contextLength: 10 })), // the longest training caption is 8 words
    batchSize,
    seed: 1,
    size: 32,
  });
const { tokenizer } = await openTraining(undefined);
const info = runtimeInfo();
console.log(
  `rils demo: MNIST ${digits.train.images.length} train / ${test.images.length} test digits, LibTorch ${info.libtorchVersion}, ${info.threads} threads, ${precision}`,
);
console.log(`zero-shot templates (unseen in training): ${templates.map((t) => JSON.stringify(t)).join(', ')}`);

interface RunResult {
  name: string;
  /** Training. */
  seconds: number;
  /** Encoding the 10 000 digits once, and every protocol. */
  evalSeconds: number;
  zeroShotTop1: number;
  zeroShotTop5: number;
  knn: number;
  fewShot10: number;
  linearProbe: number;
  finalLoss: number;
}

async function run(name: string, reconWeight: number): Promise<RunResult> {
  const model = await Rils.create({
    preset: 'micro',
    vocabSize: tokenizer.vocabSize,
    contextLength: tokenizer.contextLength,
    tokenizer,
    seed: 0,
    lr,
    minLr: lr / 50,
    warmupSteps: 60,
    totalSteps: steps,
    weightDecay: 0.1,
    reconWeight,
    precision,
  });
  const { source } = await openTraining(tokenizer);
  const started = performance.now();
  const result = await fit(model, source, {
    steps,
    metrics: path.join(args.out, `${name}-metrics.jsonl`),
    onStep: (p) => {
      if (p.step % 40 === 0 || p.step === steps) {
        console.log(
          `[${name}] step ${p.step}/${steps} loss ${p.loss.toFixed(3)} clip-acc ${(100 * p.clipAcc).toFixed(0)}% ` +
            `gated ${(100 * p.gatedFraction).toFixed(0)}% ${p.imagesPerSecond.toFixed(0)} img/s data-wait ${(100 * p.dataWaitFraction).toFixed(1)}%`,
        );
      }
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const r = await evaluateClassification(model, digits, { templates, shots: [10] });
  const evalSeconds = (performance.now() - started) / 1000 - seconds;
  const [top1, top5, knn, few, linear] = [
    r.zeroShot.top1,
    r.zeroShot.top5,
    r.knn!.top1,
    r.fewShot![0]!.nearestMean.mean,
    r.linearProbe!.top1,
  ];
  console.log(
    `[${name}] zero-shot top-1 ${(100 * top1).toFixed(2)}% top-5 ${(100 * top5).toFixed(2)}% ` +
      `(trained in ${seconds.toFixed(0)} s, evaluated in ${evalSeconds.toFixed(0)} s); k-NN ${(100 * knn).toFixed(2)}%, ` +
      `10-shot ${(100 * few).toFixed(2)}%, linear probe ${(100 * linear).toFixed(2)}%`,
  );
  if (name === 'rils') {
    await model.saveWeights(path.join(args.out, 'rils-micro-mnist.safetensors'));
    await writeEvaluationReport(
      path.join(args.out, 'eval-report.html'),
      model,
      { classification: { test, results: r } },
      { title: 'RILS micro on MNIST: evaluation' },
    );
    // The language-semantic view: where each patch of a few test digits points in caption space.
    const picks = [0, 400, 1200];
    const maps = await patchMaps(
      model,
      picks.map((i) => test.images[i]!),
      picks.map((i) => test.labels[i]!),
      classNames,
      {
        templates,
        captions: picks.map((i) => `test digit ${i}: ${classNames[test.labels[i]!]}`),
      },
    );
    for (const map of maps) {
      writeFileSync(path.join(args.out, `patch-semantics-${map.caption.replace(/\W+/g, '-')}.png`), map.png);
      heatmaps.push(map);
    }
  }
  model.dispose();
  return {
    name,
    seconds,
    evalSeconds,
    zeroShotTop1: top1,
    zeroShotTop5: top5,
    knn,
    fewShot10: few,
    linearProbe: linear,
    finalLoss: result.last?.loss ?? NaN,
  };
}

const heatmaps: { caption: string; png: Uint8Array }[] = [];
const results = [await run('rils', 0.5)];
if (!args['no-compare']) results.push(await run('clip-only', 0));
console.log('\nrun        train s  eval s  zero-shot top-1  top-5    k-NN(20)  10-shot  linear');
for (const r of results) {
  console.log(
    `${r.name.padEnd(10)} ${r.seconds.toFixed(0).padStart(7)}  ${r.evalSeconds.toFixed(0).padStart(6)}  ${(100 * r.zeroShotTop1).toFixed(2).padStart(14)}%  ` +
      `${(100 * r.zeroShotTop5).toFixed(2).padStart(6)}%  ${(100 * r.knn).toFixed(2).padStart(7)}%  ${(100 * r.fewShot10).toFixed(2).padStart(6)}%  ` +
      `${(100 * r.linearProbe).toFixed(2).padStart(6)}%`,
  );
}
writeFileSync(path.join(args.out, 'results.json'), `${JSON.stringify({ steps, batchSize, lr, results }, null, 2)}\n`);
const readMetrics = (name: string) =>
  readFileSync(path.join(args.out, `${name}-metrics.jsonl`), 'utf-8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
await writeReport(path.join(args.out, 'report.html'), {
  title: `RILS micro on MNIST captions: ${steps} steps of batch ${batchSize}`,
  runs: results.map((r) => ({ name: r.name, steps: readMetrics(r.name) })),
  results: results.map((r) => ({
    run: r.name,
    'train s': r.seconds.toFixed(0),
    'eval s': r.evalSeconds.toFixed(0),
    'zero-shot top-1': `${(100 * r.zeroShotTop1).toFixed(2)}%`,
    'top-5': `${(100 * r.zeroShotTop5).toFixed(2)}%`,
    'k-NN (20)': `${(100 * r.knn).toFixed(2)}%`,
    '10-shot': `${(100 * r.fewShot10).toFixed(2)}%`,
    'linear probe': `${(100 * r.linearProbe).toFixed(2)}%`,
  })),
  images: heatmaps,
  imagesNote: "Per-patch probability of the digit's class among the ten class prompts (brighter = higher).",
});
console.log(
  `\nreports: ${args.out}/report.html, ${args.out}/eval-report.html (results, metrics, weights and patch-semantics maps in ${args.out}/)`,
);
