/**
 * `rils eval`: classification on labelled images (zero-shot, k-NN, n-shot, linear probe; per-class
 * accuracy and confusion) and/or image↔text retrieval on captioned images; a summary on stdout,
 * every number in `--out` JSON and an HTML `--report`.
 * @internal
 * @module
 */
import { writeFile } from 'node:fs/promises';

import { openLabelledImages } from '../data/formats.js';
import type { LabelledImageSet } from '../data/labelled.js';
import { openCaptionedPairs } from '../data/formats.js';
import { evaluateClassification } from '../eval/classification.js';
import type { ClassificationResults } from '../eval/classification.js';
import { penalty, writeEvaluationReport } from '../report/evaluation.js';
import { evaluateRetrieval } from '../eval/retrieval.js';
import type { RetrievalResults } from '../eval/retrieval.js';
import { setNumThreads } from '../index.js';
import type { Rils } from '../rils.js';
import type { Templates } from '../eval/templates.js';
import { invalid } from '../validate.js';
import { parseCommand } from './args.js';
import type { Command } from './args.js';
import {
  MODEL_OPTIONS,
  TEMPLATES_OPTION,
  choiceOption,
  fail,
  integerOption,
  loadModel,
  modelOptions,
  numberOption,
  optionalInteger,
  outputOption,
  templatesOption,
} from './common.js';
import { checkOutputs } from './outputs.js';
import { encodeProgress } from './progress.js';

const OPTIONS = {
  ...MODEL_OPTIONS,
  data: {
    type: 'string',
    value: 'mnist|DIR',
    help: 'labelled images, one subfolder per class (without --train, a seeded split of it)',
  },
  train: {
    type: 'string',
    value: 'DIR',
    help: 'the training images of k-NN, n-shot and the linear probe (one subfolder per class)',
  },
  classes: {
    type: 'string',
    value: 'FILE.txt|FILE.json',
    help: 'class names for the folders (one per line, or a JSON list or object)',
  },
  templates: { ...TEMPLATES_OPTION, help: `${TEMPLATES_OPTION.help}; default: the dataset's, else slip7` },
  shots: {
    type: 'string',
    value: '1,5,10|none',
    default: '1,5,10',
    help: 'n-shot protocols (nearest class mean and linear probe)',
  },
  k: { type: 'string', value: 'N', default: '20', help: 'neighbours of k-NN' },
  'test-fraction': { type: 'string', value: 'X', default: '0.5', help: 'the test share of --data without --train' },
  retrieval: {
    type: 'string',
    value: 'DATA',
    help: 'captioned images (DIR, FILE.jsonl, FILE.csv or SHARD.tar[,…]): recall@1/5/10 both ways',
  },
  out: { type: 'string', value: 'RESULTS.json', help: 'every number, as JSON' },
  report: {
    type: 'string',
    value: 'REPORT.html',
    help: 'an HTML report: per-class accuracy, confusion, zero-shot mistakes',
  },
  seed: { type: 'string', value: 'N', default: '0', help: 'seeds the split and the n-shot draws' },
  batch: { type: 'string', value: 'N', default: '64', help: 'images decoded and encoded together' },
  threads: { type: 'string', value: 'N', help: "LibTorch's threads" },
  'on-error': {
    type: 'string',
    value: 'skip|throw',
    default: 'skip',
    help: 'unreadable images: skip and count them, or stop',
  },
} as const;

type EvalArgs = ReturnType<typeof parseCommand<typeof OPTIONS>>['values'];

/** The checked settings: every value is validated before the model loads. */
interface Settings {
  data: string | undefined;
  train: string | undefined;
  classes: string | undefined;
  templates: Templates | undefined;
  shots: number[];
  k: number;
  seed: number;
  testFraction: number;
  chunkSize: number;
  retrieval: string | undefined;
  out: string | undefined;
  report: string | undefined;
  threads: number | undefined;
  onError: 'skip' | 'throw';
}

/** `--shots 1,5,10` (or `none`). */
function shotsOption(raw: string): number[] {
  if (raw.trim() === 'none') return [];
  const values = raw.split(',').map((v) => v.trim());
  if (values.some((v) => !/^\d+$/.test(v) || Number(v) < 1))
    throw invalid('integers >= 1 separated by commas (or none)', '--shots', raw);
  return values.map(Number);
}

function settingsOf(a: EvalArgs): Settings {
  outputOption(a.out, 'out');
  outputOption(a.report, 'report');
  checkOutputs(
    { '--out': a.out, '--report': a.report },
    {
      '--weights': a.weights,
      '--vocab': a.vocab,
      '--data': a.data,
      '--train': a.train,
      '--retrieval': a.retrieval,
      '--classes': a.classes,
      '--templates': a.templates,
    },
  );
  const testFraction = numberOption(a['test-fraction'], 'test-fraction', 0);
  if (!(testFraction > 0 && testFraction < 1))
    throw invalid('a number between 0 and 1 (exclusive)', '--test-fraction', a['test-fraction']);
  return {
    data: a.data,
    train: a.train,
    classes: a.classes,
    templates: templatesOption(a.templates, undefined),
    shots: shotsOption(a.shots),
    k: integerOption(a.k, 'k', 1),
    seed: integerOption(a.seed, 'seed', 0),
    testFraction,
    chunkSize: integerOption(a.batch, 'batch', 1),
    retrieval: a.retrieval,
    out: a.out,
    report: a.report,
    threads: optionalInteger(a.threads, 'threads', 1),
    onError: choiceOption(a['on-error'], 'on-error', ['skip', 'throw'] as const),
  };
}

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function printClassification(r: ClassificationResults): void {
  const skipped = r.test.skipped.length + (r.train?.skipped.length ?? 0);
  console.log(
    `classification: ${r.classNames.length} classes, ${r.test.images} test images${r.train ? `, ${r.train.images} training images` : ''}` +
      `${skipped ? `, ${plural(skipped, 'unreadable image')} skipped (first: ${[...r.test.skipped, ...(r.train?.skipped ?? [])][0]!.name})` : ''}`,
  );
  console.log(
    `  zero-shot      top-1 ${pct(r.zeroShot.top1)}  top-5 ${pct(r.zeroShot.top5)}  (${plural(r.templates.length, 'template')})`,
  );
  if (r.knn) console.log(`  k-NN (k = ${r.knn.k})   top-1 ${pct(r.knn.top1)}`);
  for (const f of r.fewShot ?? []) {
    console.log(
      `  ${`${f.shots}-shot`.padEnd(13)}  nearest mean ${pct(f.nearestMean.mean)}  linear probe ${pct(f.linearProbe.mean)}  (mean of ${f.nearestMean.perSeed.length} draws)`,
    );
  }
  if (r.linearProbe)
    console.log(
      `  linear probe   top-1 ${pct(r.linearProbe.top1)}  (weight decay ${penalty(r.linearProbe.weightDecay)}, chosen on a validation split)`,
    );
  for (const note of r.notes) console.log(`  note: ${note}`);
}

function printRetrieval(r: RetrievalResults): void {
  const recall = (rec: Record<number, number>) =>
    Object.entries(rec)
      .map(([k, v]) => `R@${k} ${pct(v)}`)
      .join('  ');
  console.log(
    `retrieval: ${r.images} images, ${r.texts} captions${r.skipped.length ? `, ${plural(r.skipped.length, 'unreadable image')} skipped` : ''}`,
  );
  console.log(`  image → text   ${recall(r.imageToText)}`);
  console.log(`  text → image   ${recall(r.textToImage)}`);
  for (const note of r.notes) console.log(`  note: ${note}`);
}

async function classify(
  model: Rils,
  s: Settings & { data: string },
): Promise<{ test: LabelledImageSet; results: ClassificationResults }> {
  const data = await openLabelledImages(s.data, {
    ...(s.train ? { train: s.train } : {}),
    ...(s.classes ? { classNames: s.classes } : {}),
    testFraction: s.testFraction,
    seed: s.seed,
  });
  for (const note of data.notes) console.log(`note: ${note}`);
  if (data.skipped)
    console.log(`skipped ${plural(data.skipped, 'file')} that are not images, or of classes the test set lacks`);
  const bars = { test: encodeProgress('encoding test images'), train: encodeProgress('encoding training images') };
  try {
    const results = await evaluateClassification(model, data, {
      ...(s.templates ? { templates: s.templates } : {}),
      shots: s.shots,
      k: s.k,
      seed: s.seed,
      chunkSize: s.chunkSize,
      onError: s.onError,
      onProgress: (set, p) => bars[set].onProgress(p),
    });
    return { test: data.test, results };
  } finally {
    bars.test.stop();
    bars.train.stop();
  }
}

async function retrieve(model: Rils, spec: string, s: Settings): Promise<RetrievalResults> {
  const opened = await openCaptionedPairs(spec);
  const bar = encodeProgress('encoding images');
  try {
    const r = await evaluateRetrieval(model, opened.pairs, {
      chunkSize: s.chunkSize,
      onError: s.onError,
      onProgress: bar.onProgress,
      ...(opened.images !== undefined ? { images: opened.images } : {}),
    });
    if (opened.skipped())
      r.notes.push(
        `${opened.skipped()} ${opened.skipped() === 1 ? 'row or sample' : 'rows or samples'} without an image or a caption left out`,
      );
    return r;
  } finally {
    bar.stop();
  }
}

/** JSON with typed arrays as plain arrays (and NaN, a class without test images, as null). */
const toJson = (value: unknown) =>
  JSON.stringify(value, (_, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Int32Array) : v), 2);

async function evaluate(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, evalCommand);
  modelOptions(a); // bad model options fail first
  if (!a.data && !a.retrieval)
    fail('eval needs --data mnist|DIR (labelled images) and/or --retrieval DATA (captioned images)');
  if (a.train && !a.data) fail('--train needs --data (the test images)');
  const s = settingsOf(a);
  if (s.threads !== undefined) setNumThreads(s.threads);
  const model = await loadModel(a);
  const classification = s.data ? await classify(model, { ...s, data: s.data }) : undefined;
  const retrieval = s.retrieval ? await retrieve(model, s.retrieval, s) : undefined;
  if (classification) printClassification(classification.results);
  if (retrieval) printRetrieval(retrieval);
  if (s.out) {
    await writeFile(
      s.out,
      `${toJson({ weights: a.weights, data: s.data, train: s.train, retrievalData: s.retrieval, classification: classification?.results, retrieval })}\n`,
    );
    console.log(`results: ${s.out}`);
  }
  if (s.report) {
    await writeEvaluationReport(
      s.report,
      model,
      { ...(classification ? { classification } : {}), ...(retrieval ? { retrieval } : {}) },
      { title: `rils eval: ${[s.data, s.retrieval].filter(Boolean).join(', ')}` },
    );
    console.log(`report: ${s.report}`);
  }
  model.dispose();
}

export const evalCommand: Command<typeof OPTIONS> = {
  name: 'eval',
  summary:
    'Evaluates a model on your data: classification (zero-shot top-1/top-5, k-NN, n-shot, linear probe, per-class ' +
    'accuracy, confusion) on labelled images, and/or image↔text retrieval on captioned images.',
  synopsis: '--weights W (--data mnist|DIR [--train DIR] | --retrieval DATA) [options]',
  options: OPTIONS,
  run: evaluate,
};
