/**
 * The options of `rils train`: the run's own (data, steps, outputs, processes) declared here, and one
 * option per model and training field generated from the addon's field tables (lib/model/schema.ts), with
 * the library's types, ranges and defaults. Every value is checked before anything starts.
 * @internal
 * @module
 */
import { PRECISIONS, checkRunOption, presetConfig } from '../model/options.js';
import type { Precision, PresetName, RilsOptions } from '../model/options.js';
import { RilsInputError } from '../errors.js';
import { CONFIG_FIELDS, PRESETS, TRAIN_FIELDS, checkField, expected } from '../model/schema.js';
import type { FieldSpec } from '../model/schema.js';
import { ByteTokenizer, ClipTokenizer, WordTokenizer } from '../tokenizer/index.js';
import type { OpenDatasetOptions, TokenizerFactory } from '../data/dataset.js';
import { FOLDER_LAYOUTS, LAYOUTS, SAVE_LAYOUTS, SAVE_LAYOUTS_HELP } from '../weights/layouts.js';
import type { SaveLayout } from '../weights/layouts.js';
import { invalid, snakeCase } from '../validate.js';
import type { OptionSpec, OptionSpecs } from './args.js';
import {
  MODEL_OPTIONS,
  actOption,
  choiceOption,
  deviceOption,
  integerOption,
  numberOption,
  optionalInteger,
  outputFolderOption,
  outputOption,
  runOptionSpec,
} from './common.js';
import { checkOutputs } from './outputs.js';

/** `--kebab-name` of a field (`maskRatio` → `mask-ratio`). */
const kebab = (key: string) => snakeCase(key).replaceAll('_', '-');

/** Model fields the tokenizer (or the --init checkpoint) fixes: refused as options. */
const FROM_TOKENIZER = new Set(['vocabSize', 'contextLength']);

/** A field as an option: its value's type and range, and its default (the preset's, for model fields). */
function fieldOption(f: FieldSpec, model: boolean): OptionSpec {
  const value =
    f.type === 'bool' ? 'true|false' : f.type === 'choice' ? (f.choices ?? []).join('|') : f.type === 'int' ? 'N' : 'X';
  if (FROM_TOKENIZER.has(f.key))
    return {
      type: 'string',
      value: 'N',
      help: "given by the tokenizer (--tokenizer, --context), or by --init's checkpoint",
    };
  // Defaults are shown, not passed to parseArgs: a field not given is left to the library (or to --init's schedule).
  const help = model
    ? `${expected(f)}; default: the preset's (micro: ${String(presetConfig('micro')[f.key as never])})`
    : f.key === 'totalSteps'
      ? `${expected(f)}; default: --steps, so that the schedule ends with the run`
      : `${expected(f)} (default ${String(f.default)})`;
  return { type: 'string', value, ...(f.type === 'bool' ? { flag: true } : {}), help };
}

/** One option per model field and training field (`betas` as `--beta1`, `--beta2`, the native fields). */
const FIELD_OPTIONS: OptionSpecs = Object.fromEntries([
  ...[...CONFIG_FIELDS.values()].map((f) => [kebab(f.key), fieldOption(f, true)]),
  ...[...TRAIN_FIELDS.values()].map((f) => [kebab(f.key), fieldOption(f, false)]),
]);

const { weights: _weights, ...LOAD_OPTIONS } = MODEL_OPTIONS;

/** The run's own options, then every field. */
export const TRAIN_OPTIONS: OptionSpecs = {
  data: {
    type: 'string',
    value: 'DATA',
    help:
      'mnist, a folder of x.jpg + x.txt, FILE.jsonl, FILE.csv, or WebDataset shards: .tar paths, ' +
      'http(s):// URLs or pipe:COMMAND (its stdout is the tar), with braces ({00000..01023}, {a,b}), several joined by ::',
  },
  init: {
    type: 'string',
    value: 'CHECKPOINT',
    help: "start from these weights (rils's, or a CLIP checkpoint in any layout) with a fine-tuning schedule (below)",
  },
  ...LOAD_OPTIONS,
  preset: {
    type: 'string',
    value: Object.keys(PRESETS).join('|'),
    help: "the model, without --init (default micro; the library's is vit_b16: micro keeps a first run on a CPU to minutes)",
  },
  steps: {
    type: 'string',
    value: 'N',
    default: '500',
    help: 'optimizer steps of the run (a resumed run continues to this total)',
  },
  batch: { type: 'string', value: 'N', default: '64', help: 'the global batch, split evenly over the processes' },
  seed: {
    type: 'string',
    value: 'N',
    default: '0',
    help: "seeds the init, the masks and the data order (the library's default: random)",
  },
  'on-non-finite': runOptionSpec('onNonFinite'),
  tokenizer: {
    type: 'string',
    value: 'word|byte|clip|clip:VOCAB.gz',
    help: "without --init: the captions' tokenizer (default word)",
  },
  context: { type: 'string', value: 'N', help: 'tokens per caption, without --init (word: 16, others: 32)' },
  checkpoint: {
    type: 'string',
    value: 'FILE',
    help: 'resumable checkpoint, every 100 steps and at the end (the run resumes from it)',
  },
  metrics: { type: 'string', value: 'FILE.jsonl', help: 'one JSON line of statistics per step' },
  out: {
    type: 'string',
    value: 'WEIGHTS',
    default: 'rils.safetensors',
    help: `the trained weights (a folder for --layout ${FOLDER_LAYOUTS.join('|')})`,
  },
  layout: {
    type: 'string',
    value: SAVE_LAYOUTS.join('|'),
    default: 'rils',
    help: `how --out is written: ${SAVE_LAYOUTS_HELP} (all but rils for CLIP towers only)`,
  },
  report: { type: 'string', value: 'REPORT.html', help: 'an HTML report of the run' },
  threads: { type: 'string', value: 'N', help: "LibTorch's threads" },
  'on-error': {
    type: 'string',
    value: 'skip|throw',
    default: 'skip',
    help: 'unreadable images: skipped and counted, or the end of the run',
  },
  'max-pixels': { type: 'string', value: 'N', help: 'images over this many pixels are skipped (default 100 MP)' },
  workers: {
    type: 'string',
    value: 'N',
    help: 'shard readers, each its own shards every epoch and its own shuffle buffer (default 1)',
  },
  shuffle: {
    type: 'string',
    value: 'N',
    help: "samples in each shard reader's shuffle buffer; 0 reads in shard order (default 1000)",
  },
  resampled: {
    type: 'string',
    value: 'true|false',
    flag: true,
    help: 'draw shards at random with replacement instead of epochs of disjoint shares (default false)',
  },
  'read-timeout': {
    type: 'string',
    value: 'SECONDS',
    help: "longest wait for a shard's next bytes before the read is retried (default 60)",
  },
  'read-retries': {
    type: 'string',
    value: 'N',
    help: 'retries of a failed shard read, with a doubling backoff, before it is skipped (default 3)',
  },
  'decode-threads': { type: 'string', value: 'N', help: 'threads decoding JPEG training crops (default: every core)' },
  nproc: {
    type: 'string',
    value: 'N',
    help: 'data-parallel processes on this machine (c10d/Gloo), each with 1/N of the data and batch',
  },
  'master-port': { type: 'string', value: 'P', help: 'the rendezvous port of --nproc' },
  set: {
    type: 'string',
    multiple: true,
    value: 'field=value',
    default: [],
    help: 'a model or training field by its library name (camelCase)',
  },
  ...FIELD_OPTIONS,
};

/** The checked settings of a run. */
export interface Settings {
  data: string;
  init: string | undefined;
  /** The options of the model, as the library takes them (the job's adds distributed). */
  model: RilsOptions & { act?: 'gelu' | 'quick_gelu'; vocabPath?: string };
  out: string;
  layout: SaveLayout;
  checkpoint: string | undefined;
  metrics: string | undefined;
  report: string | undefined;
  steps: number;
  globalBatch: number;
  threads: number | undefined;
  nproc: number;
  masterPort: number | undefined;
  onError: 'skip' | 'throw';
  maxPixels: number | undefined;
  /** WebDataset: workers, shuffle buffer, resampling, read timeout and retries, decode threads (those given). */
  shards: NonNullable<OpenDatasetOptions['shards']>;
  /** Without --init: the tokenizer, made from the captions. */
  tokenizer: TokenizerFactory | undefined;
}

/** A field's value from its text: a number, `true`/`false`, or a choice; checked against the field. */
function fieldValue(f: FieldSpec, raw: string, what: string): number | boolean | string {
  const value =
    f.type === 'bool'
      ? raw === 'true'
        ? true
        : raw === 'false'
          ? false
          : raw
      : f.type === 'choice'
        ? raw
        : raw.trim() === ''
          ? NaN
          : Number(raw);
  try {
    return checkField(f, value, what);
  } catch {
    throw invalid(expected(f), what, raw);
  }
}

/** The field options given, and `--set field=value`, as library options (camelCase). */
function fieldsOf(a: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of [...CONFIG_FIELDS.values(), ...TRAIN_FIELDS.values()]) {
    const raw = a[kebab(f.key)];
    if (typeof raw === 'string') out[f.key] = fieldValue(f, raw, `--${kebab(f.key)}`);
  }
  for (const key of FROM_TOKENIZER) {
    if (out[key] !== undefined)
      throw new RilsInputError(
        `--${kebab(key)} is given by the tokenizer (--tokenizer, --context) or the --init checkpoint`,
      );
  }
  for (const kv of (a.set as string[] | undefined) ?? []) {
    const [, key = '', text = ''] = /^([^=]*)=(.*)$/.exec(kv) ?? [];
    const f = CONFIG_FIELDS.get(key) ?? TRAIN_FIELDS.get(key); // own entries of a Map: no 'constructor'
    if (!f) throw invalid('field=value (a model or training field)', '--set', kv);
    out[key] = fieldValue(f, text, `--set ${key}`);
  }
  const { beta1, beta2, ...rest } = out;
  if (beta1 === undefined && beta2 === undefined) return rest;
  const defaults = (name: string) => TRAIN_FIELDS.get(name)!.default as number;
  return { ...rest, betas: [beta1 ?? defaults('beta1'), beta2 ?? defaults('beta2')] };
}

/** `--tokenizer word|byte|clip|clip:PATH` with `--context`; a word vocabulary comes from the captions. */
function tokenizerOf(spec: string, contextOption: string | undefined): TokenizerFactory {
  const context =
    contextOption === undefined ? (spec === 'word' ? 16 : 32) : integerOption(contextOption, 'context', 2);
  if (spec === 'word') return (captions) => WordTokenizer.fromTexts(captions(), { contextLength: context });
  if (spec === 'byte') return () => new ByteTokenizer({ contextLength: context });
  if (spec === 'clip') return () => ClipTokenizer.load(undefined, { contextLength: context });
  if (spec.startsWith('clip:')) return () => ClipTokenizer.load(spec.slice(5), { contextLength: context });
  throw invalid('word, byte, clip or clip:PATH', '--tokenizer', spec);
}

/** The model's options: the run's, the fields, and with --init what loading a checkpoint takes. */
function modelOf(
  a: Record<string, string | undefined>,
  fields: Record<string, unknown>,
  steps: number,
): Settings['model'] {
  const common = {
    seed: integerOption(a.seed!, 'seed', 0),
    device: deviceOption(a.device!),
    precision: choiceOption(a.precision!, 'precision', PRECISIONS) as Precision,
    onNonFinite: checkRunOption('onNonFinite', a['on-non-finite'], '--on-non-finite') as 'skip' | 'throw',
    totalSteps: steps,
    ...fields,
  };
  if (a.init === undefined)
    return { preset: choiceOption(a.preset ?? 'micro', 'preset', Object.keys(PRESETS) as PresetName[]), ...common };
  return {
    ...common,
    ...(a.act ? { act: actOption(a.act) } : {}),
    ...(a.vocab ? { vocabPath: a.vocab } : {}),
  };
}

/** Every option checked, in the order a user reads them. */
/** `--workers`, `--shuffle`, `--resampled`, `--read-timeout`, `--read-retries`, `--decode-threads`: those given. */
function shardOptions(s: Record<string, string | undefined>): Settings['shards'] {
  const workers = optionalInteger(s.workers, 'workers', 1),
    shuffle = optionalInteger(s.shuffle, 'shuffle', 0);
  const retries = optionalInteger(s['read-retries'], 'read-retries', 0),
    decodeThreads = optionalInteger(s['decode-threads'], 'decode-threads', 1);
  const timeoutSeconds =
    s['read-timeout'] === undefined ? undefined : numberOption(s['read-timeout'], 'read-timeout', 0.001);
  const resampled =
    s.resampled === undefined
      ? undefined
      : choiceOption(s.resampled, 'resampled', ['true', 'false'] as const) === 'true';
  return {
    ...(workers !== undefined ? { workers } : {}),
    ...(shuffle !== undefined ? { shuffle } : {}),
    ...(resampled ? { resampled } : {}),
    ...(retries !== undefined ? { retries } : {}),
    ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
    ...(decodeThreads !== undefined ? { decodeThreads } : {}),
  };
}

export function settingsOf(a: Record<string, string | string[] | undefined>, data: string): Settings {
  const s = a as Record<string, string | undefined>;
  const layout = choiceOption(s.layout!, 'layout', SAVE_LAYOUTS);
  const folder = LAYOUTS[layout].save.folder;
  for (const option of ['out', 'checkpoint', 'metrics', 'report'] as const)
    if (option !== 'out' || !folder) outputOption(s[option], option);
  if (folder) outputFolderOption(s.out!, 'out');
  checkOutputs(
    { '--out': s.out, '--checkpoint': s.checkpoint, '--metrics': s.metrics, '--report': s.report },
    {
      '--data': data,
      '--init': s.init,
      '--vocab': s.vocab,
      '--tokenizer': s.tokenizer?.startsWith('clip:') ? s.tokenizer.slice(5) : undefined,
    },
  );
  for (const option of ['preset', 'tokenizer', 'context']) {
    if (s.init !== undefined && s[option] !== undefined) {
      throw new RilsInputError(
        `--${option} cannot be used with --init: the checkpoint gives the model and its tokenizer`,
      );
    }
  }
  const steps = integerOption(s.steps!, 'steps', 1);
  return {
    data,
    init: s.init,
    model: modelOf(s, fieldsOf(a), steps),
    out: s.out!,
    layout,
    checkpoint: s.checkpoint,
    metrics: s.metrics,
    report: s.report,
    steps,
    globalBatch: integerOption(s.batch!, 'batch', 1),
    threads: optionalInteger(s.threads, 'threads', 1),
    nproc: optionalInteger(s.nproc, 'nproc', 1) ?? 1,
    masterPort: optionalInteger(s['master-port'], 'master-port', 1, 65535),
    onError: choiceOption(s['on-error']!, 'on-error', ['skip', 'throw'] as const),
    maxPixels: optionalInteger(s['max-pixels'], 'max-pixels', 1),
    shards: shardOptions(s),
    tokenizer: s.init === undefined ? tokenizerOf(s.tokenizer ?? 'word', s.context) : undefined,
  };
}
