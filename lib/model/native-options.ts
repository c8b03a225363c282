/**
 * The options of {@link Rils.create} checked and split into what the addon takes (lib/model/options.ts
 * declares them): the field tables' values, the fields that act only under a condition, the
 * precision and the device; and the training options back from the addon.
 * @internal
 * @module
 */
import { native } from '../addon/binding.js';
import type { NativeConfig, NativeTrainOptions } from '../addon/binding.js';
import { RilsDeviceError, RilsInputError } from '../errors.js';
import { isTokenizer } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { toNativeDistributed } from '../train/distributed.js';
import { camelCase, checkInteger, checkPlainObject, invalid } from '../validate.js';
import { ALIASED, OPTION_ALIASES, RUN_OPTIONS, checkRunOption, isOptionName, isPresetName } from './options.js';
import type { PresetName, Precision, RilsOptions, TrainingOptions } from './options.js';
import { CONFIG_FIELDS, PRESETS, RUN_FIELDS, TRAIN_FIELDS, camelKeys, checkField } from './schema.js';
import type { FieldSpec } from './schema.js';

/** Options of a table (model or training fields) checked and converted to snake_case. */
function tableOptions(
  o: Record<string, unknown>,
  fields: ReadonlyMap<string, FieldSpec>,
): Record<string, number | boolean | string> {
  const out: Record<string, number | boolean | string> = {};
  for (const [key, f] of fields)
    if (o[key] !== undefined && !ALIASED.has(key)) out[f.name] = checkField(f, o[key], key);
  return out;
}

/**
 * Model fields that act only under a condition on the rest of the config: given where they cannot
 * act, they are refused (a weight file's metadata would record a value that never ran). Every other
 * field acts on either vision tower.
 */
const APPLIES_WHEN: readonly [field: string, when: (c: NativeConfig) => boolean, what: string][] = [
  [
    'decoder_width',
    (c) => c.decoder_depth === undefined || Number(c.decoder_depth) > 0,
    'a feature decoder (decoderDepth >= 1)',
  ],
  [
    'decoder_heads',
    (c) => c.decoder_depth === undefined || Number(c.decoder_depth) > 0,
    'a feature decoder (decoderDepth >= 1)',
  ],
];

/** A config (snake_case) without the fields that do not act in it: what a weight file records. @internal */
export function actingFields<T extends Record<string, unknown>>(config: T): T {
  const out: Record<string, unknown> = { ...config };
  for (const [field, when] of APPLIES_WHEN) if (!when(config as NativeConfig)) delete out[field];
  return out as T;
}

/** Checks the given model fields (snake_case) against {@link APPLIES_WHEN}, over the preset's. */
function checkApplies(given: NativeConfig, preset: NativeConfig): void {
  const config = { ...preset, ...given };
  for (const [field, when, what] of APPLIES_WHEN) {
    if (Object.hasOwn(given, field) && !when(config)) {
      throw new RilsInputError(`${camelCase(field)} acts only with ${what}: leave it out, or add one`);
    }
  }
}

/** `betas: [b1, b2]` → beta1, beta2, each checked against its field. */
function betaOptions(betas: unknown): Record<string, number> {
  if (betas === undefined) return {};
  if (!Array.isArray(betas) || betas.length !== 2) throw invalid('two numbers', 'betas', betas);
  const names = OPTION_ALIASES.betas!;
  return Object.fromEntries(
    names.map((n, i) => [n, checkField(TRAIN_FIELDS.get(camelCase(n))!, betas[i], `betas[${i}]`) as number]),
  );
}

/**
 * The precision the addon is asked for: `'bf16'` where it cannot run becomes a RilsDeviceError, or
 * `'fp32'` with a warning (onUnsupportedPrecision). The addon checks again.
 */
function checkPrecision(precision: unknown, onUnsupported: unknown, device: string): Precision {
  checkField(RUN_FIELDS.get('precision')!, precision, 'precision');
  checkRunOption('onUnsupportedPrecision', onUnsupported);
  if (precision !== 'bf16' || device !== 'cpu') return precision as Precision;
  const bf16 = native.runtimeInfo().cpuBf16;
  if (bf16.available) return precision;
  const message = `Precision 'bf16' cannot run on cpu: ${bf16.reason}`;
  if (onUnsupported === 'throw') throw new RilsDeviceError(message);
  process.emitWarning(`${message}; running in fp32 (onUnsupportedPrecision: 'fp32')`, { code: 'RILS_PRECISION' });
  return 'fp32';
}

function checkDevice(value: unknown, distributed: boolean): string {
  const device = checkRunOption('device', value);
  if (distributed && device !== 'cpu') {
    throw invalid("'cpu' with distributed (training across processes runs on Gloo)", 'device', device);
  }
  return device;
}

/** Checks every option's type and range and splits them into what the addon takes. @internal */
export function toNativeOptions(options: RilsOptions): {
  preset: PresetName;
  config: NativeConfig;
  train: NativeTrainOptions;
  seed: number;
  device: string;
  run: { precision: Precision };
  distributed?: ReturnType<typeof toNativeDistributed>;
  /** Not the addon's: the checked own values of these options. */
  tokenizer: Tokenizer | undefined;
  onNonFinite: 'skip' | 'throw';
} {
  checkPlainObject(options, 'the options');
  // Own properties only: none inherited (an options object made with Object.create(base)) is read.
  const o = Object.assign(Object.create(null) as Record<string, unknown>, options);
  for (const key of Object.keys(o)) if (!isOptionName(key)) throw new RilsInputError(`Unknown option '${key}'`);
  const preset = o.preset ?? 'vit_b16';
  if (!isPresetName(preset)) throw invalid(`one of ${Object.keys(PRESETS).join(', ')}`, 'preset', o.preset);
  const config = tableOptions(o, CONFIG_FIELDS) as NativeConfig;
  checkApplies(config, PRESETS[preset]!);
  const train = { ...tableOptions(o, TRAIN_FIELDS), ...betaOptions(o.betas) };
  const seed = o.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : checkInteger(o.seed, 'seed', 0);
  const onNonFinite = checkRunOption('onNonFinite', o.onNonFinite ?? RUN_OPTIONS.onNonFinite.default) as
    'skip' | 'throw';
  if (o.tokenizer !== undefined && !isTokenizer(o.tokenizer)) {
    throw invalid(
      'a tokenizer (ClipTokenizer, WordTokenizer, ByteTokenizer or one with encodeBatch)',
      'tokenizer',
      o.tokenizer,
    );
  }
  const device = checkDevice(o.device ?? RUN_OPTIONS.device.default, o.distributed !== undefined);
  const precision = checkPrecision(
    o.precision ?? RUN_FIELDS.get('precision')!.default,
    o.onUnsupportedPrecision ?? RUN_OPTIONS.onUnsupportedPrecision.default,
    device,
  );
  const checked = { tokenizer: o.tokenizer as Tokenizer | undefined, onNonFinite };
  if (o.distributed !== undefined) {
    return {
      preset,
      config,
      train,
      seed,
      device,
      run: { precision },
      distributed: toNativeDistributed(o.distributed),
      ...checked,
    };
  }
  return { preset, config, train, seed, device, run: { precision }, ...checked };
}

/** Training options as the addon reports them, in camelCase, with `betas`. @internal */
export function fromNativeTrainOptions(t: NativeTrainOptions): Required<TrainingOptions> {
  const { beta1, beta2, ...rest } = t;
  return { ...camelKeys<Omit<Required<TrainingOptions>, 'betas'>>(rest), betas: [beta1 as number, beta2 as number] };
}
