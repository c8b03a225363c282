/**
 * A CLIP checkpoint's model config: inferred from its tensors' shapes as OpenAI's `build_model`
 * does, completed by a Hugging Face `config.json` where there is one (activation, heads, LayerNorm
 * eps); and that config written back as Hugging Face's.
 * @internal
 * @module
 */
import { RilsWeightsError } from '../errors.js';
import type { Activation, ModelConfig } from '../model/options.js';
import { CONFIG_FIELDS, checkField, expected, fieldAllows } from '../model/schema.js';
import { invalid, own } from '../validate.js';

/** The parts of a Hugging Face `CLIPConfig` that rils reads and writes. */
export interface HfClipConfig {
  projection_dim?: number;
  text_config?: HfTowerConfig;
  vision_config?: HfTowerConfig;
  [key: string]: unknown;
}

interface HfTowerConfig {
  hidden_size?: number;
  num_attention_heads?: number;
  num_hidden_layers?: number;
  hidden_act?: string;
  layer_norm_eps?: number;
  [key: string]: unknown;
}

/** The config fields a CLIP checkpoint determines. */
export type ClipConfig = Pick<
  ModelConfig,
  | 'visionTower'
  | 'imageSize'
  | 'patchSize'
  | 'visionWidth'
  | 'visionDepth'
  | 'visionHeads'
  | 'visionAct'
  | 'mlpRatio'
  | 'visionLnEps'
  | 'textWidth'
  | 'textLayers'
  | 'textHeads'
  | 'textAct'
  | 'textLnEps'
  | 'contextLength'
  | 'vocabSize'
  | 'embedDim'
>;

/** Hugging Face's activation names → rils's (the tanh approximations are other functions: refused). */
const HF_ACTS: ReadonlyMap<string, Activation> = new Map([
  ['quick_gelu', 'quick_gelu'],
  ['gelu', 'gelu'],
]);

/** What rils reads of one tower of a Hugging Face `config.json`, checked. */
export interface HfTowerSettings {
  act?: Activation | undefined;
  heads?: number | undefined;
  lnEps?: number | undefined;
}

/** What rils reads of a Hugging Face `config.json`: each tower's settings. */
export interface HfClipSettings {
  vision?: HfTowerSettings | undefined;
  text?: HfTowerSettings | undefined;
}

/** A config.json value that is not what rils needs, as a RilsWeightsError naming the file and field. */
const badField = (file: string, expectedValue: string, field: string, value: unknown) =>
  new RilsWeightsError(`${file}: ${invalid(expectedValue, field, value).message}`);

/** One tower of a parsed config.json: own properties only, each of the type and range rils needs. */
function towerSettings(
  json: Record<string, unknown>,
  key: 'vision_config' | 'text_config',
  file: string,
): HfTowerSettings | undefined {
  const tower = own(json, key);
  if (tower === undefined) return undefined;
  if (typeof tower !== 'object' || tower === null || Array.isArray(tower))
    throw badField(file, 'an object', key, tower);
  const t = tower as Record<string, unknown>;
  const [actName, heads, lnEps] = [own(t, 'hidden_act'), own(t, 'num_attention_heads'), own(t, 'layer_norm_eps')];
  const act = typeof actName === 'string' ? HF_ACTS.get(actName) : undefined;
  if (actName !== undefined && !act) {
    throw badField(
      file,
      `${[...HF_ACTS.keys()].map((a) => `'${a}'`).join(' or ')} (the activations rils implements)`,
      `${key}.hidden_act`,
      actName,
    );
  }
  if (heads !== undefined && !(Number.isSafeInteger(heads) && (heads as number) >= 1)) {
    throw badField(file, 'an integer >= 1', `${key}.num_attention_heads`, heads);
  }
  const eps = CONFIG_FIELDS.get('visionLnEps')!;
  if (lnEps !== undefined && !fieldAllows(eps, lnEps))
    throw badField(file, expected(eps), `${key}.layer_norm_eps`, lnEps);
  return { act, heads: heads as number | undefined, lnEps: lnEps as number | undefined };
}

/** The settings of a Hugging Face `config.json` (its parsed JSON); `file` names it in errors. */
export function readHfClipConfig(json: unknown, file: string): HfClipSettings {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new RilsWeightsError(`${file}: ${invalid('a JSON object', 'config.json', json).message}`);
  }
  const o = json as Record<string, unknown>;
  return { vision: towerSettings(o, 'vision_config', file), text: towerSettings(o, 'text_config', file) };
}

/** The distinct block indices under `prefix` (`visual.transformer.resblocks`), which must run 0 … n − 1. */
function blockCount(names: Iterable<string>, prefix: string, where: string): number {
  const seen = new Set<number>();
  for (const n of names) {
    const m = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)\\.`).exec(n);
    if (m) seen.add(Number(m[1]));
  }
  for (let i = 0; i < seen.size; i++) {
    if (!seen.has(i))
      throw new RilsWeightsError(`${where}: block ${i} of ${prefix} is missing (the file has ${seen.size} others)`);
  }
  if (seen.size === 0) throw new RilsWeightsError(`${where}: no ${prefix}.N blocks`);
  return seen.size;
}

function heads(width: number, hf: HfTowerSettings | undefined, tower: string, where: string): number {
  const h = hf?.heads ?? width / 64; // OpenAI's rule; open_clip's largest models break it
  if (!Number.isSafeInteger(h) || h < 1 || width % h !== 0) {
    throw new RilsWeightsError(`${where}: the ${tower} tower's heads are unknown (width ${width}); pass ${tower}Heads`);
  }
  return h;
}

/** Where each inferred field comes from, for errors. */
const SOURCES: Readonly<Partial<Record<keyof ClipConfig, string>>> = {
  imageSize: "'visual.conv1.weight' and 'visual.positional_embedding'",
  patchSize: "'visual.conv1.weight' dim 2",
  visionWidth: "'visual.conv1.weight' dim 0",
  textWidth: "'ln_final.weight'",
  contextLength: "'positional_embedding' dim 0",
  vocabSize: "'token_embedding.weight' dim 0",
  embedDim: "'text_projection' dim 1",
  mlpRatio: "'visual.transformer.resblocks.0.mlp.c_fc.weight' dim 0",
};

/** Each inferred field checked against the model's field table: a RilsWeightsError naming the tensor it came from. */
function checkInferred(config: ClipConfig, where: string): ClipConfig {
  for (const [key, value] of Object.entries(config)) {
    try {
      checkField(CONFIG_FIELDS.get(key)!, value, key);
    } catch (error) {
      const from = SOURCES[key as keyof ClipConfig];
      throw new RilsWeightsError(`${where}: ${(error as Error).message}${from ? ` (from ${from})` : ''}`);
    }
  }
  return config;
}

/**
 * The config of a checkpoint whose tensors `shapes` holds under OpenAI's names (the in-projections
 * may be absent: they are split in Hugging Face's files). `where` names the file and layout in errors.
 */
export function inferClipConfig(
  shapes: ReadonlyMap<string, number[]>,
  hf: HfClipSettings | undefined,
  given: Activation | undefined,
  where: string,
): ClipConfig {
  const shape = (name: string) => {
    const s = shapes.get(name);
    if (!s) throw new RilsWeightsError(`${where}: no '${name}'`);
    return s;
  };
  const [W = 0, inChans, P = 0] = shape('visual.conv1.weight');
  if (inChans !== 3) throw new RilsWeightsError(`${where}: 'visual.conv1.weight' takes ${inChans} channels, not 3`);
  const patches = shape('visual.positional_embedding')[0]! - 1,
    grid = Math.round(Math.sqrt(patches));
  if (grid * grid !== patches) throw new RilsWeightsError(`${where}: ${patches} patch positions make no square grid`);
  const D = shape('ln_final.weight')[0]!;
  // The MLPs' hidden widths: the vision tower's any multiple of its width, the text tower's 4 (all CLIPs').
  const hidden = (prefix: string) => shapes.get(`${prefix}.resblocks.0.mlp.c_fc.weight`)?.[0];
  const textHidden = hidden('transformer');
  if (textHidden !== undefined && textHidden !== 4 * D) {
    throw new RilsWeightsError(
      `${where}: the text tower's MLP is ${textHidden} wide, not 4 × ${D} (rils's text tower has CLIP's)`,
    );
  }
  const vision = hf?.vision,
    text = hf?.text,
    names = shapes.keys();
  // The tower's own activation, else the other's; OpenAI's when config.json says nothing (the weights do not).
  const act = (tower: HfTowerSettings | undefined, other: HfTowerSettings | undefined) =>
    given ?? (tower ?? other)?.act ?? 'quick_gelu';
  return checkInferred(
    {
      visionTower: 'clip',
      imageSize: P * grid,
      patchSize: P,
      visionWidth: W,
      visionDepth: blockCount(names, 'visual.transformer.resblocks', where),
      visionHeads: heads(W, vision, 'vision', where),
      mlpRatio: (hidden('visual.transformer') ?? 4 * W) / W,
      visionAct: act(vision, text),
      visionLnEps: vision?.lnEps ?? 1e-5,
      textWidth: D,
      textLayers: blockCount(shapes.keys(), 'transformer.resblocks', where),
      textHeads: heads(D, text, 'text', where),
      textAct: act(text, vision),
      textLnEps: text?.lnEps ?? 1e-5,
      contextLength: shape('positional_embedding')[0]!,
      vocabSize: shape('token_embedding.weight')[0]!,
      embedDim: shape('text_projection')[1]!,
    },
    where,
  );
}

/** A Hugging Face `config.json` for a CLIP model of this config. */
export function hfClipConfig(c: ModelConfig, logitScale: number): HfClipConfig {
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: c.embedDim,
    logit_scale_init_value: logitScale,
    text_config: {
      hidden_size: c.textWidth,
      intermediate_size: 4 * c.textWidth,
      num_attention_heads: c.textHeads,
      num_hidden_layers: c.textLayers,
      max_position_embeddings: c.contextLength,
      vocab_size: c.vocabSize,
      hidden_act: c.textAct,
      layer_norm_eps: c.textLnEps,
    },
    vision_config: {
      hidden_size: c.visionWidth,
      intermediate_size: Math.round(c.mlpRatio * c.visionWidth),
      num_attention_heads: c.visionHeads,
      num_hidden_layers: c.visionDepth,
      image_size: c.imageSize,
      patch_size: c.patchSize,
      num_channels: 3,
      hidden_act: c.visionAct,
      layer_norm_eps: c.visionLnEps,
    },
  };
}
