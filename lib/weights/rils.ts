/**
 * rils's weight files: safetensors with the PyTorch reference's tensor names, F32, and metadata
 * (preset, config, training options, tokenizer) that lets the reference load them without flags.
 * What a file says about its model is read and checked here, before any model is allocated.
 * @internal
 * @module
 */
import { RilsWeightsError } from '../errors.js';
import { CONFIG_FIELDS, camelKeys } from '../model/schema.js';
import { actingFields, isOptionName, isPresetName, presetConfig } from '../model/options.js';
import type { ModelConfig, PresetName, RilsOptions, TrainingOptions } from '../model/options.js';
import { asFloat32, readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { SafetensorsEntry } from '../io/safetensors.js';
import { tokenizerFromSpec, tokenizerSpec } from '../tokenizer/index.js';
import type { Tokenizer, TokenizerSpec } from '../tokenizer/index.js';
import { snakeCase } from '../validate.js';
import { checkFileConfig, checkModelFits } from './size.js';

/** The `format` metadata of a weight file. */
export const WEIGHTS_FORMAT = 'rils-ref-v1';

/**
 * The reference's metadata `config` carries four training options under its own names: metadata
 * key → the training option's name. Used both ways.
 */
const REFERENCE_CONFIG_KEYS: Readonly<Record<string, string>> = {
  mask_ratio: 'mask_ratio', tau_s: 'tau_student', tau_t: 'tau_teacher', recon_weight: 'recon_weight',
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
    preset: m.preset, config: JSON.stringify(config), train: JSON.stringify(train),
    ...(tokenizer ? { tokenizer: JSON.stringify(tokenizer) } : {}),
  };
}

function parseJson(text: string | undefined, path: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text ?? '{}');
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch { /* reported below */ }
  throw new RilsWeightsError(`${path}: unreadable ${what} in the metadata (expected a JSON object)`);
}

/** The options a file's metadata gives (preset, model fields, training options); unknown fields are dropped. */
export function optionsFromMetadata(meta: Record<string, string>, path: string): RilsOptions {
  const config = actingFields(parseJson(meta.config, path, 'config')); // files written before kept every field
  const train = parseJson(meta.train, path, 'training options');
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) fields[(Object.hasOwn(REFERENCE_CONFIG_KEYS, k) ? REFERENCE_CONFIG_KEYS[k] : undefined) ?? k] = v;
  const { beta1, beta2, ...rest } = train;
  const options: Record<string, unknown> = camelKeys({ ...fields, ...rest });
  if (typeof beta1 === 'number' && typeof beta2 === 'number') options.betas = [beta1, beta2];
  for (const k of Object.keys(options)) if (!isOptionName(k) || k === 'preset') delete options[k];
  return { ...(isPresetName(meta.preset) ? { preset: meta.preset } : {}), ...options } as RilsOptions;
}

/** The tokenizer a file's metadata describes, checked to fit the model's vocabulary and context. */
export async function tokenizerFromMetadata(
  meta: Record<string, string>, path: string, config: Pick<ModelConfig, 'vocabSize' | 'contextLength'>,
  clipVocabPath?: string,
): Promise<Tokenizer | undefined> {
  if (meta.tokenizer === undefined) return undefined;
  const spec = parseJson(meta.tokenizer, path, 'tokenizer') as unknown as TokenizerSpec;
  if (!['word', 'byte', 'clip'].includes(spec.type) || !Number.isSafeInteger(spec.contextLength)) {
    throw new RilsWeightsError(`${path}: the metadata's tokenizer is not one rils knows (${meta.tokenizer.slice(0, 80)})`);
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

/** The F32 tensors of a weight file and its metadata. */
export async function readWeights(path: string): Promise<{ tensors: WeightTensor[]; metadata: Record<string, string> }> {
  const file = await readSafetensors(path);
  const tensors = [...file.tensors].map(([name, t]: [string, SafetensorsEntry]) => {
    if (t.dtype !== 'F32') throw new RilsWeightsError(`${path}: '${name}' is ${t.dtype}; expected F32`);
    return { name, shape: t.shape, data: asFloat32(t.bytes) };
  });
  return { tensors, metadata: file.metadata };
}

/** Writes every parameter (F32, the reference's names) with the model's metadata, atomically. */
export async function writeWeights(
  path: string, tensors: readonly { name: string; shape: number[]; data: ArrayBuffer }[], model: ModelDescription,
): Promise<void> {
  await writeSafetensors(
    path,
    tensors.map((e) => ({ name: e.name, dtype: 'F32' as const, shape: e.shape, data: new Float32Array(e.data) })),
    { format: WEIGHTS_FORMAT, ...weightsMetadata(model) },
  );
}

/** Checks tensors against a model's parameter names and shapes (a RilsWeightsError naming the first at fault). */
export function checkAgainstParameters(
  path: string, tensors: readonly WeightTensor[], parameters: readonly { name: string; shape: number[] }[],
): void {
  const expected = new Map(parameters.map((p) => [p.name, p.shape]));
  for (const t of tensors) {
    const shape = expected.get(t.name);
    if (!shape) throw new RilsWeightsError(`${path} has '${t.name}', which this model does not (weights of another model?)`);
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
export function checkConfigAgainstTensors(path: string, options: RilsOptions, tensors: readonly WeightTensor[]): void {
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
function notRilsWeights(path: string, tensors: readonly WeightTensor[]): RilsWeightsError {
  const names = new Set(tensors.map((t) => t.name));
  const clip = names.has('visual.conv1.weight') || names.has('vision_model.embeddings.patch_embedding.weight');
  return new RilsWeightsError(`${path} is not a rils weight file (its metadata has no format '${WEIGHTS_FORMAT}')` + (clip
    ? ': it holds a CLIP checkpoint; load it with Rils.fromPretrained(path) (or rils … --weights, which reads either)'
    : '; Rils.fromPretrained(path) reads CLIP checkpoints in the OpenAI/open_clip, Hugging Face and TorchScript layouts'));
}

/** What {@link openWeights} needs of a model. */
export interface WeightsTarget {
  parameters(): { name: string; shape: number[] }[];
  setWeights(tensors: WeightTensor[]): Promise<void>;
  dispose(): void;
}

/**
 * A model built from a weight file's metadata (config, training options, tokenizer), `options`
 * overriding it, with its weights loaded. The metadata is checked against the tensors before the
 * model is built; a failure after disposes it.
 */
export async function openWeights<M extends WeightsTarget>(
  path: string, options: RilsOptions & { clipVocabPath?: string }, create: (options: RilsOptions) => Promise<M>,
): Promise<M> {
  const { tensors, metadata } = await readWeights(path);
  if (metadata.format !== WEIGHTS_FORMAT) throw notRilsWeights(path, tensors);
  const { clipVocabPath, ...rest } = options;
  const fromFile = optionsFromMetadata(metadata, path);
  checkFileConfig(path, fromFile);
  checkConfigAgainstTensors(path, { ...fromFile, ...rest }, tensors);
  checkModelFits(path, { ...fromFile, ...rest }, tensors.reduce((n, t) => n + t.data.length, 0), { decoder: true });
  const rows = (name: string) => tensors.find((t) => t.name === name)?.shape[0] ?? 0;
  const fit = { vocabSize: rows('token_embedding.weight'), contextLength: rows('positional_embedding') };
  const tokenizer = rest.tokenizer ?? await tokenizerFromMetadata(metadata, path, fit, clipVocabPath);
  const model = await create({ seed: 0, ...fromFile, ...rest, ...(tokenizer ? { tokenizer } : {}) });
  try {
    checkAgainstParameters(path, tensors, model.parameters());
    await model.setWeights(tensors);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}
