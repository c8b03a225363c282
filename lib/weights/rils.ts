/**
 * rils's weight files: safetensors with the PyTorch reference's tensor names, F32, and metadata
 * (preset, config, training options, tokenizer) that lets the reference load them without flags.
 * What a file says about its model is read and checked here, before any model is allocated (the
 * 'rils' entry of lib/weights/layouts.ts; lib/weights/load.ts streams the tensors in). loadWeights
 * and training checkpoints read a file whole: they replace a live model's weights all or nothing.
 * @internal
 * @module
 */
import { RilsWeightsError } from '../errors.js';
import { CONFIG_FIELDS, camelKeys } from '../model/schema.js';
import { isOptionName, isPresetName, presetConfig } from '../model/options.js';
import { actingFields } from '../model/native-options.js';
import type { ModelConfig, PresetName, RilsOptions, TrainingOptions } from '../model/options.js';
import { asFloat32, readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { SafetensorsEntry } from '../io/safetensors.js';
import { tokenizerFromSpec, tokenizerSpec } from '../tokenizer/index.js';
import type { Tokenizer, TokenizerSpec } from '../tokenizer/index.js';
import { snakeCase } from '../validate.js';
import type { LoadRequest, SavedModel } from './layouts.js';
import type { Checkpoint } from './open.js';
import type { Placed } from './place.js';
import { checkFileConfig } from './size.js';

/** The `format` metadata of a weight file. */
export const WEIGHTS_FORMAT = 'rils-ref-v1';

/**
 * The reference's metadata `config` carries four training options under its own names: metadata
 * key → the training option's name. Used both ways.
 */
const REFERENCE_CONFIG_KEYS: Readonly<Record<string, string>> = {
  mask_ratio: 'mask_ratio',
  tau_s: 'tau_student',
  tau_t: 'tau_teacher',
  recon_weight: 'recon_weight',
};

/** One F32 tensor of a weight file (`data` a view of the file's bytes). */
export interface WeightTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** What a model's weight file holds about it besides the tensors. */
export interface ModelDescription {
  preset: PresetName;
  config: Readonly<ModelConfig>;
  trainingOptions: Readonly<Required<TrainingOptions>>;
  tokenizer: Tokenizer | undefined;
}

/** The metadata strings of a weight file or checkpoint. */
export function weightsMetadata(m: ModelDescription): Record<string, string> {
  const { betas, ...rest } = m.trainingOptions;
  const train: Record<string, unknown> = { beta1: betas[0], beta2: betas[1] };
  for (const [k, v] of Object.entries(rest)) train[snakeCase(k)] = v;
  let config: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m.config)) config[snakeCase(k)] = v;
  config = actingFields(config); // only what ran (no decoder width without a decoder)
  for (const [key, option] of Object.entries(REFERENCE_CONFIG_KEYS)) config[key] = train[option];
  const tokenizer = m.tokenizer && tokenizerSpec(m.tokenizer);
  return {
    preset: m.preset,
    config: JSON.stringify(config),
    train: JSON.stringify(train),
    ...(tokenizer ? { tokenizer: JSON.stringify(tokenizer) } : {}),
  };
}

function parseJson(text: string | undefined, path: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text ?? '{}');
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  throw new RilsWeightsError(`${path}: unreadable ${what} in the metadata (expected a JSON object)`);
}

/** The options a file's metadata gives (preset, model fields, training options); unknown fields are dropped. */
export function optionsFromMetadata(meta: Record<string, string>, path: string): RilsOptions {
  const config = actingFields(parseJson(meta.config, path, 'config')); // files written before kept every field
  const train = parseJson(meta.train, path, 'training options');
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config))
    fields[(Object.hasOwn(REFERENCE_CONFIG_KEYS, k) ? REFERENCE_CONFIG_KEYS[k] : undefined) ?? k] = v;
  const { beta1, beta2, ...rest } = train;
  const options: Record<string, unknown> = camelKeys({ ...fields, ...rest });
  if (typeof beta1 === 'number' && typeof beta2 === 'number') options.betas = [beta1, beta2];
  for (const k of Object.keys(options)) if (!isOptionName(k) || k === 'preset') delete options[k];
  return { ...(isPresetName(meta.preset) ? { preset: meta.preset } : {}), ...options } as RilsOptions;
}

/** The tokenizer a file's metadata describes, checked to fit the model's vocabulary and context. */
export async function tokenizerFromMetadata(
  meta: Record<string, string>,
  path: string,
  config: Pick<ModelConfig, 'vocabSize' | 'contextLength'>,
  clipVocabPath?: string,
): Promise<Tokenizer | undefined> {
  if (meta.tokenizer === undefined) return undefined;
  const spec = parseJson(meta.tokenizer, path, 'tokenizer') as unknown as TokenizerSpec;
  if (!['word', 'byte', 'clip'].includes(spec.type) || !Number.isSafeInteger(spec.contextLength)) {
    throw new RilsWeightsError(
      `${path}: the metadata's tokenizer is not one rils knows (${meta.tokenizer.slice(0, 80)})`,
    );
  }
  const tokenizer = await tokenizerFromSpec(spec, clipVocabPath);
  if (tokenizer.vocabSize > config.vocabSize || tokenizer.contextLength !== config.contextLength) {
    throw new RilsWeightsError(
      `${path}: the metadata's tokenizer (vocabulary ${tokenizer.vocabSize}, context ${tokenizer.contextLength}) does ` +
        `not fit the model (vocabSize ${config.vocabSize}, contextLength ${config.contextLength})`,
    );
  }
  return tokenizer;
}

/** The F32 tensors of a weight file and its metadata, read whole (for loadWeights, which changes nothing unless all of it loads). */
export async function readWeights(
  path: string,
): Promise<{ tensors: WeightTensor[]; metadata: Record<string, string> }> {
  const file = await readSafetensors(path);
  const tensors = [...file.tensors].map(([name, t]: [string, SafetensorsEntry]) => {
    if (t.dtype !== 'F32') throw new RilsWeightsError(`${path}: '${name}' is ${t.dtype}; expected F32`);
    return { name, shape: t.shape, data: asFloat32(t.bytes) };
  });
  return { tensors, metadata: file.metadata };
}

/** Writes every parameter (F32, the reference's names) with the model's metadata, atomically. */
export async function writeWeights(path: string, model: SavedModel): Promise<void> {
  await writeSafetensors(
    path,
    model.state.map((e) => ({ name: e.name, dtype: 'F32' as const, shape: e.shape, data: new Float32Array(e.data) })),
    { format: WEIGHTS_FORMAT, ...weightsMetadata(model) },
  );
}

/** Checks tensors against a model's parameter names and shapes (a RilsWeightsError naming the first at fault). */
export function checkAgainstParameters(
  path: string,
  tensors: readonly WeightTensor[],
  parameters: readonly { name: string; shape: number[] }[],
): void {
  const expected = new Map(parameters.map((p) => [p.name, p.shape]));
  for (const t of tensors) {
    const shape = expected.get(t.name);
    if (!shape)
      throw new RilsWeightsError(`${path} has '${t.name}', which this model does not (weights of another model?)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new RilsWeightsError(
        `${path}: '${t.name}' has shape [${t.shape.join(', ')}] but this model needs [${shape.join(', ')}] ` +
          '(weights of another preset or config?)',
      );
    }
  }
}

/**
 * The model fields that the tensors' shapes fix, read from one tensor each (as OpenAI's build_model
 * infers CLIP's): checked against the metadata's config before a model of that config is built, so
 * a file whose metadata disagrees with its tensors never allocates the metadata's model.
 */
const SHAPE_FIELDS: readonly [keyof ModelConfig, string, (s: number[]) => number | undefined][] = [
  ['visionWidth', 'visual.cls_token', (s) => s[2]],
  ['patchSize', 'visual.patch_embed.proj.weight', (s) => s[2]],
  ['inChans', 'visual.patch_embed.proj.weight', (s) => s[1]],
  ['decoderWidth', 'visual.decoder_embed.weight', (s) => s[0]],
  ['textWidth', 'token_embedding.weight', (s) => s[1]],
  ['vocabSize', 'token_embedding.weight', (s) => s[0]],
  ['contextLength', 'positional_embedding', (s) => s[0]],
  ['embedDim', 'image_projection', (s) => s[1]],
];

/** Checks the config a file's metadata gives against its tensors' shapes. */
export function checkConfigAgainstTensors(
  path: string,
  options: RilsOptions,
  tensors: readonly { name: string; shape: number[] }[],
): void {
  const config = { ...presetConfig(options.preset ?? 'vit_b16'), ...pickConfig(options) };
  const shapes = new Map(tensors.map((t) => [t.name, t.shape]));
  for (const [field, name, dim] of SHAPE_FIELDS) {
    const shape = shapes.get(name);
    const actual = shape && dim(shape);
    if (actual !== undefined && actual !== config[field]) {
      throw new RilsWeightsError(
        `${path}: the metadata says ${field} ${String(config[field])} but '${name}' has shape [${shape!.join(', ')}]`,
      );
    }
  }
}

function pickConfig(options: RilsOptions): Partial<ModelConfig> {
  return Object.fromEntries(Object.entries(options).filter(([k]) => CONFIG_FIELDS.has(k))) as Partial<ModelConfig>;
}

/** A file without rils's metadata: a CLIP checkpoint goes through fromPretrained, anything else is not a model rils knows. */
export function notRilsWeights(c: Checkpoint): RilsWeightsError | undefined {
  if (c.layout === 'rils') return undefined;
  const names = new Set(c.tensors.map((t) => t.name));
  const clip = names.has('visual.conv1.weight') || names.has('vision_model.embeddings.patch_embedding.weight');
  return new RilsWeightsError(
    `${c.path} is not a rils weight file (its metadata has no format '${WEIGHTS_FORMAT}')` +
      (clip
        ? ': it holds a CLIP checkpoint; load it with Rils.fromPretrained(path) (or rils … --weights, which reads either)'
        : '; Rils.fromPretrained(path) reads CLIP checkpoints in the OpenAI/open_clip, Hugging Face and TorchScript layouts'),
  );
}

/**
 * The options of the model a weight file describes: its metadata's (preset, config, training
 * options), the request's schedule and options over them; the config checked to be a valid model
 * and to agree with the tensors' shapes, before any model is built. rils writes F32 only.
 */
export async function rilsModelOptions(
  c: Checkpoint,
  _placed: readonly Placed[],
  request: LoadRequest,
): Promise<RilsOptions> {
  const other = c.tensors.find((t) => t.dtype !== 'F32');
  if (other)
    throw new RilsWeightsError(
      `${c.where}: '${other.name}' is ${other.dtype}; expected F32 (rils writes its weights in F32)`,
    );
  const fromFile = optionsFromMetadata(c.metadata, c.where);
  checkFileConfig(c.where, fromFile);
  const options: RilsOptions = { seed: 0, ...fromFile, ...request.schedule, ...request.options };
  checkConfigAgainstTensors(c.where, options, c.tensors);
  return options;
}

/** The tokenizer a weight file's metadata describes, fitted to its tensors' vocabulary and context. */
export function rilsTokenizer(
  c: Checkpoint,
  _options: RilsOptions,
  request: LoadRequest,
): Promise<Tokenizer | undefined> {
  const rows = (name: string) => c.tensors.find((t) => t.name === name)?.shape[0] ?? 0;
  const fit = { vocabSize: rows('token_embedding.weight'), contextLength: rows('positional_embedding') };
  return tokenizerFromMetadata(c.metadata, c.where, fit, request.vocabPath);
}
