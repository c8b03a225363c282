/**
 * A CLIP checkpoint's model config: inferred from its tensors' shapes as OpenAI's `build_model`
 * does, completed by a Hugging Face `config.json` where there is one (activation, heads, LayerNorm
 * eps); and that config written back as Hugging Face's.
 * @internal
 * @module
 */
import { RilsWeightsError } from '../errors.js';
import type { Activation, ModelConfig } from '../options.js';

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
export type ClipConfig = Pick<ModelConfig,
  'visionTower' | 'imageSize' | 'patchSize' | 'visionWidth' | 'visionDepth' | 'visionHeads' | 'visionAct' | 'mlpRatio' |
  'visionLnEps' | 'textWidth' | 'textLayers' | 'textHeads' | 'textAct' | 'textLnEps' | 'contextLength' |
  'vocabSize' | 'embedDim'>;

/** Hugging Face's activation names → rils's (the tanh approximations are other functions: refused). */
const HF_ACTS: Readonly<Record<string, Activation>> = { quick_gelu: 'quick_gelu', gelu: 'gelu' };

/** The distinct block indices under `prefix` (`visual.transformer.resblocks`), which must run 0 … n − 1. */
function blockCount(names: Iterable<string>, prefix: string, where: string): number {
  const seen = new Set<number>();
  for (const n of names) {
    const m = new RegExp(`^${prefix.replace(/\./g, '\\.')}\\.(\\d+)\\.`).exec(n);
    if (m) seen.add(Number(m[1]));
  }
  for (let i = 0; i < seen.size; i++) {
    if (!seen.has(i)) throw new RilsWeightsError(`${where}: block ${i} of ${prefix} is missing (the file has ${seen.size} others)`);
  }
  if (seen.size === 0) throw new RilsWeightsError(`${where}: no ${prefix}.N blocks`);
  return seen.size;
}

function act(given: Activation | undefined, hf: HfTowerConfig | undefined, where: string): Activation {
  if (given) return given;
  const name = hf?.hidden_act;
  if (name === undefined) return 'quick_gelu';  // OpenAI's; the weights themselves do not say
  const a = HF_ACTS[name];
  if (!a) throw new RilsWeightsError(`${where}: config.json's hidden_act '${name}' is not one rils implements (gelu, quick_gelu)`);
  return a;
}

function heads(width: number, hf: HfTowerConfig | undefined, tower: string, where: string): number {
  const h = hf?.num_attention_heads ?? width / 64;  // OpenAI's rule; open_clip's largest models break it
  if (!Number.isSafeInteger(h) || h < 1 || width % h !== 0) {
    throw new RilsWeightsError(`${where}: the ${tower} tower's heads are unknown (width ${width}); pass ${tower}Heads`);
  }
  return h;
}

/**
 * The config of a checkpoint whose tensors `shapes` holds under OpenAI's names (the in-projections
 * may be absent: they are split in Hugging Face's files). `where` names the file and layout in errors.
 */
export function inferClipConfig(
  shapes: ReadonlyMap<string, number[]>, hf: HfClipConfig | undefined, given: Activation | undefined, where: string,
): ClipConfig {
  const shape = (name: string) => {
    const s = shapes.get(name);
    if (!s) throw new RilsWeightsError(`${where}: no '${name}'`);
    return s;
  };
  const [W = 0, inChans, P = 0] = shape('visual.conv1.weight');
  if (inChans !== 3) throw new RilsWeightsError(`${where}: 'visual.conv1.weight' takes ${inChans} channels, not 3`);
  const patches = shape('visual.positional_embedding')[0]! - 1, grid = Math.round(Math.sqrt(patches));
  if (grid * grid !== patches) throw new RilsWeightsError(`${where}: ${patches} patch positions make no square grid`);
  const D = shape('ln_final.weight')[0]!;
  // The MLPs' hidden widths: the vision tower's any multiple of its width, the text tower's 4 (all CLIPs').
  const hidden = (prefix: string) => shapes.get(`${prefix}.resblocks.0.mlp.c_fc.weight`)?.[0];
  const textHidden = hidden('transformer');
  if (textHidden !== undefined && textHidden !== 4 * D) {
    throw new RilsWeightsError(`${where}: the text tower's MLP is ${textHidden} wide, not 4 × ${D} (rils's text tower has CLIP's)`);
  }
  const vision = hf?.vision_config, text = hf?.text_config, names = shapes.keys();
  return {
    visionTower: 'clip', imageSize: P * grid, patchSize: P, visionWidth: W,
    visionDepth: blockCount(names, 'visual.transformer.resblocks', where), visionHeads: heads(W, vision, 'vision', where),
    mlpRatio: (hidden('visual.transformer') ?? 4 * W) / W,
    visionAct: act(given, vision ?? text, where), visionLnEps: vision?.layer_norm_eps ?? 1e-5,
    textWidth: D, textLayers: blockCount(shapes.keys(), 'transformer.resblocks', where), textHeads: heads(D, text, 'text', where),
    textAct: act(given, text ?? vision, where), textLnEps: text?.layer_norm_eps ?? 1e-5,
    contextLength: shape('positional_embedding')[0]!, vocabSize: shape('token_embedding.weight')[0]!,
    embedDim: shape('text_projection')[1]!,
  };
}

/** A Hugging Face `config.json` for a CLIP model of this config. */
export function hfClipConfig(c: ModelConfig, logitScale: number): HfClipConfig {
  return {
    architectures: ['CLIPModel'], model_type: 'clip', projection_dim: c.embedDim, logit_scale_init_value: logitScale,
    text_config: {
      hidden_size: c.textWidth, intermediate_size: 4 * c.textWidth, num_attention_heads: c.textHeads,
      num_hidden_layers: c.textLayers, max_position_embeddings: c.contextLength, vocab_size: c.vocabSize,
      hidden_act: c.textAct, layer_norm_eps: c.textLnEps,
    },
    vision_config: {
      hidden_size: c.visionWidth, intermediate_size: Math.round(c.mlpRatio * c.visionWidth), num_attention_heads: c.visionHeads,
      num_hidden_layers: c.visionDepth, image_size: c.imageSize, patch_size: c.patchSize, num_channels: 3,
      hidden_act: c.visionAct, layer_norm_eps: c.visionLnEps,
    },
  };
}
