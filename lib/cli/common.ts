/**
 * What the commands share: checked option values ("Expected X for --option but received Z"), the
 * options of loading a model from a weight file, and prompt templates.
 * @internal
 * @module
 */
import { statSync } from 'node:fs';
import path from 'node:path';

import { RilsInputError } from '../errors.js';
import { readRegularFileSync } from '../io/regular-file.js';
import type { OptionSpec, OptionSpecs } from './args.js';
import { PRECISIONS, RUN_OPTIONS, checkRunOption } from '../model/options.js';
import type { Activation, Device } from '../model/options.js';
import { CONFIG_FIELDS, RUN_FIELDS } from '../model/schema.js';
import type { FieldSpec } from '../model/schema.js';
import type { Templates } from '../eval/templates.js';
import { Rils } from '../rils.js';
import type { PretrainedOptions } from '../weights/pretrained.js';
import { invalid, isFiniteNumber, isInteger } from '../validate.js';

/** Prints `rils: message` and exits with status 2 (a usage or input error). */
export function fail(message: string): never {
  console.error(`rils: ${message}`);
  process.exit(2);
}

/** `--name`'s value as an integer in [min, max]. */
export function integerOption(raw: string, name: string, min: number, max = Infinity): number {
  const value = raw.trim() === '' ? NaN : Number(raw);
  if (!isInteger(value) || value < min || value > max) {
    throw invalid(max === Infinity ? `an integer >= ${min}` : `an integer ${min} … ${max}`, `--${name}`, raw);
  }
  return value;
}

/** {@link integerOption} of an option that may be left out (then undefined). */
export function optionalInteger(
  raw: string | undefined,
  name: string,
  min: number,
  max = Infinity,
): number | undefined {
  return raw === undefined ? undefined : integerOption(raw, name, min, max);
}

/** `--name`'s value as a finite number >= min. */
export function numberOption(raw: string, name: string, min: number): number {
  const value = raw.trim() === '' ? NaN : Number(raw);
  if (!isFiniteNumber(value) || value < min) throw invalid(`a number >= ${min}`, `--${name}`, raw);
  return value;
}

/** `--name`'s value, one of `choices`. */
export function choiceOption<T extends string>(raw: string, name: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw))
    throw invalid(choices.map((c) => `'${c}'`).join(' or '), `--${name}`, raw);
  return raw as T;
}

/** `--device`: cpu, cuda or cuda:N. */
export function deviceOption(raw: string): Device {
  return checkRunOption('device', raw, '--device') as Device;
}

/** An option that takes a value (parseArgs types it a string). */
type StringOption = OptionSpec & { type: 'string'; multiple?: false };

/** A CLI option of a {@link RUN_OPTIONS} row: its values, default and help. */
export function runOptionSpec(name: keyof typeof RUN_OPTIONS): StringOption {
  const row = RUN_OPTIONS[name];
  return { type: 'string', value: row.values.join('|'), default: row.default, help: row.help };
}

/** A CLI option of a choice field (precision, the activations): its choices and the library's default. */
export function choiceFieldSpec(f: FieldSpec, help: string, withDefault = true): StringOption {
  return { type: 'string', value: f.choices!.join('|'), ...(withDefault ? { default: String(f.default) } : {}), help };
}

/** Checks that `--name FILE` can be written: its folder exists and it is not a folder itself. */
export function outputOption(file: string | undefined, name: string): void {
  if (file === undefined) return;
  const folder = path.dirname(path.resolve(file));
  const isFolder = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory();
  if (!isFolder(folder))
    throw new RilsInputError(
      `${invalid('a file in an existing folder', `--${name}`, file).message} (no folder ${folder})`,
    );
  if (isFolder(file))
    throw new RilsInputError(`Expected a file path for --${name} but received a folder, ${JSON.stringify(file)}`);
}

/** Checks that `--name DIR` can be written as a folder: its parent exists and it is a folder or a new path. */
export function outputFolderOption(dir: string, name: string): void {
  const parent = path.dirname(path.resolve(dir));
  const info = statSync(dir, { throwIfNoEntry: false });
  if (!statSync(parent, { throwIfNoEntry: false })?.isDirectory()) {
    throw new RilsInputError(
      `${invalid('a folder in an existing folder', `--${name}`, dir).message} (no folder ${parent})`,
    );
  }
  if (info && !info.isDirectory())
    throw new RilsInputError(
      `Expected a folder or a new path for --${name} but received the file ${JSON.stringify(dir)}`,
    );
}

/** The options every command that loads a model takes. */
export const MODEL_OPTIONS = {
  weights: {
    type: 'string',
    value: 'W',
    help:
      "rils's weights (they carry their config and tokenizer) or a CLIP checkpoint: OpenAI/open_clip safetensors, " +
      "a Hugging Face folder or OpenAI's TorchScript .pt",
  },
  act: choiceFieldSpec(
    CONFIG_FIELDS.get('visionAct')!,
    "a CLIP checkpoint's MLP activation (OpenAI's: quick_gelu, the default; most open_clip models: gelu)",
    false,
  ),
  vocab: {
    type: 'string',
    value: 'FILE',
    help: "CLIP's BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) when not the bundled one",
  },
  device: runOptionSpec('device'),
  precision: choiceFieldSpec(
    RUN_FIELDS.get('precision')!,
    "the towers' arithmetic (auto: bf16 on CUDA, fp32 on the CPU)",
  ),
} as const satisfies OptionSpecs;

/**
 * The model of `--weights`: rils's own weights, or a CLIP checkpoint (OpenAI/open_clip safetensors,
 * a Hugging Face folder, a TorchScript .pt) with `--act` for its MLP activation; `--vocab` for a
 * CLIP vocabulary other than the bundled one; on `--device`, in `--precision` (auto, fp32 or bf16).
 */
type ModelArgs = {
  weights?: string | undefined;
  vocab?: string | undefined;
  device?: string | undefined;
  precision?: string | undefined;
  act?: string | undefined;
};

/** `--act`: an activation the towers have. */
export function actOption(raw: string): Activation {
  return choiceOption(raw, 'act', CONFIG_FIELDS.get('visionAct')!.choices as Activation[]);
}

/** The options of MODEL_OPTIONS, checked (call it first, so a bad value fails before other work). */
export function modelOptions(a: ModelArgs): PretrainedOptions {
  return {
    ...(a.vocab ? { vocabPath: a.vocab } : {}),
    ...(a.device ? { device: deviceOption(a.device) } : {}),
    ...(a.precision ? { precision: choiceOption(a.precision, 'precision', PRECISIONS) } : {}),
    ...(a.act ? { act: actOption(a.act) } : {}),
  };
}

/** The model of `--weights` (any layout {@link Rils.fromPretrained} reads, with a fine-tuning schedule). */
export async function loadModel(a: ModelArgs): Promise<Rils> {
  if (!a.weights) fail('needs --weights FILE');
  return Rils.fromPretrained(a.weights, modelOptions(a));
}

/**
 * `--templates`: `slip7`, `clip80`, a `.txt` (one template per line) or `.json` (a list) file, or
 * the templates themselves (each with `{}` for the class name); `fallback` when not given.
 */
export function templatesOption<F extends Templates | undefined>(
  values: readonly string[] | undefined,
  fallback: F,
): Templates | F {
  if (!values || values.length === 0) return fallback;
  if (values.length === 1 && (values[0] === 'slip7' || values[0] === 'clip80')) return values[0];
  if (values.length === 1 && /\.(txt|json)$/.test(values[0]!) && !values[0]!.includes('{}')) {
    const file = values[0]!;
    let list: unknown;
    try {
      const text = readRegularFileSync(file, 'a templates file').toString('utf-8');
      list = file.endsWith('.json')
        ? JSON.parse(text)
        : text
            .split(/\r?\n/)
            .map((l) => l.trim())
            .filter(Boolean);
    } catch (error) {
      throw new RilsInputError(`Cannot read the templates in ${file}: ${(error as Error).message}`);
    }
    if (!Array.isArray(list) || list.length === 0 || !list.every((t) => typeof t === 'string' && t.includes('{}'))) {
      throw new RilsInputError(`Expected templates containing {} in ${file} (one per line, or a JSON list)`);
    }
    return list as string[];
  }
  const bad = values.find((t) => !t.includes('{}'));
  if (bad !== undefined)
    throw invalid('slip7, clip80, a .txt/.json file, or templates containing {}', '--templates', bad);
  return [...values];
}

/** `--templates`, as {@link templatesOption} reads it: several templates may follow one `--templates`. */
export const TEMPLATES_OPTION = {
  type: 'string',
  multiple: true,
  value: 'slip7|clip80|FILE|TEMPLATE...',
  takes: (arg: string) => arg.includes('{}'),
  help:
    'prompt templates: slip7, clip80, a .txt (one per line) or .json (a list) file, or the templates themselves, ' +
    'each with {} for the class name (all after one --templates)',
} as const satisfies OptionSpec;
