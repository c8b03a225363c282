/**
 * The names of CLIP's tensors in the two layouts users download: OpenAI's (also open_clip's and
 * what TorchScript archives hold), which are rils's own parameter names for a CLIP model, and
 * Hugging Face's `CLIPModel`, with the packed in-projection split in q, k, v and the two projections
 * stored transposed. One table, read both ways.
 * @internal
 * @module
 */

/** Where a Hugging Face tensor goes: an OpenAI name, one third of it (q, k, v) or the whole, transposed or not. */
export interface NamePlacement {
  /** OpenAI's name, the model's parameter. */
  name: string;
  /** Which third of a packed in-projection (q 0, k 1, v 2), or undefined for the whole tensor. */
  part?: 0 | 1 | 2 | undefined;
  /** The file holds it as [out, in] where OpenAI's is [in, out] (the projections). */
  transpose?: boolean | undefined;
}

interface NameRule extends Omit<NamePlacement, 'name'> {
  /** OpenAI's name; `{i}` stands for a block index. */
  openai: string;
  /** Hugging Face's name, same `{i}`. */
  hf: string;
}

const pair = (openai: string, hf: string): NameRule[] =>
  ['weight', 'bias'].map((p) => ({ openai: `${openai}.${p}`, hf: `${hf}.${p}` }));

/** One tower's residual block; `tower` is OpenAI's prefix, `hf` Hugging Face's. */
function blockRules(tower: string, hf: string): NameRule[] {
  const o = `${tower}.resblocks.{i}`,
    h = `${hf}.encoder.layers.{i}`;
  const qkv = (['q', 'k', 'v'] as const).flatMap((x, part) =>
    ['weight', 'bias'].map((p) => ({
      openai: `${o}.attn.in_proj_${p}`,
      hf: `${h}.self_attn.${x}_proj.${p}`,
      part: part as 0 | 1 | 2,
    })),
  );
  return [
    ...qkv,
    ...pair(`${o}.attn.out_proj`, `${h}.self_attn.out_proj`),
    ...pair(`${o}.ln_1`, `${h}.layer_norm1`),
    ...pair(`${o}.mlp.c_fc`, `${h}.mlp.fc1`),
    ...pair(`${o}.mlp.c_proj`, `${h}.mlp.fc2`),
    ...pair(`${o}.ln_2`, `${h}.layer_norm2`),
  ];
}

const RULES: readonly NameRule[] = [
  { openai: 'token_embedding.weight', hf: 'text_model.embeddings.token_embedding.weight' },
  { openai: 'positional_embedding', hf: 'text_model.embeddings.position_embedding.weight' },
  ...blockRules('transformer', 'text_model'),
  ...pair('ln_final', 'text_model.final_layer_norm'),
  { openai: 'text_projection', hf: 'text_projection.weight', transpose: true },
  { openai: 'visual.class_embedding', hf: 'vision_model.embeddings.class_embedding' },
  { openai: 'visual.conv1.weight', hf: 'vision_model.embeddings.patch_embedding.weight' },
  { openai: 'visual.positional_embedding', hf: 'vision_model.embeddings.position_embedding.weight' },
  ...pair('visual.ln_pre', 'vision_model.pre_layrnorm'), // sic: Hugging Face's spelling
  ...blockRules('visual.transformer', 'vision_model'),
  ...pair('visual.ln_post', 'vision_model.post_layernorm'),
  { openai: 'visual.proj', hf: 'visual_projection.weight', transpose: true },
  { openai: 'logit_scale', hf: 'logit_scale' },
];

const pattern = (template: string) => new RegExp(`^${template.replace(/\./g, '\\.').replace('{i}', '(\\d+)')}$`);
const FROM_HF = RULES.map((r) => ({ rule: r, re: pattern(r.hf) }));
const TO_HF = RULES.map((r) => ({ rule: r, re: pattern(r.openai) }));

/** rils's addition to a CLIP model, in no CLIP checkpoint: the feature decoder (decoderDepth > 0). */
export const isFeatureDecoderTensor = (name: string): boolean => /^visual\.(decoder_|mask_token$)/.test(name);

/** Tensors a checkpoint may hold that are no weights (token positions, OpenAI's scalars, a mask). */
export function isExtraTensor(name: string): boolean {
  return (
    /(^|\.)position_ids$/.test(name) || ['input_resolution', 'context_length', 'vocab_size', 'attn_mask'].includes(name)
  );
}

/** Where a Hugging Face tensor goes, or undefined for a name the table does not know. */
export function fromHfName(name: string): NamePlacement | undefined {
  for (const { rule, re } of FROM_HF) {
    const m = re.exec(name);
    if (m) return { name: rule.openai.replace('{i}', m[1] ?? ''), part: rule.part, transpose: rule.transpose };
  }
  return undefined;
}

/** The Hugging Face tensors an OpenAI-named tensor becomes: one, or three parts of a packed in-projection. */
export function toHfNames(name: string): (NamePlacement & { hf: string })[] {
  const out: (NamePlacement & { hf: string })[] = [];
  for (const { rule, re } of TO_HF) {
    const m = re.exec(name);
    if (m) out.push({ name, hf: rule.hf.replace('{i}', m[1] ?? ''), part: rule.part, transpose: rule.transpose });
  }
  return out;
}

/** Every parameter of a CLIP model with these depths, by OpenAI's name (the feature decoder's aside). */
export function clipParameterNames(visionDepth: number, textLayers: number): string[] {
  const names = new Set<string>();
  for (const { openai } of RULES) {
    if (!openai.includes('{i}')) names.add(openai);
    const blocks = openai.startsWith('visual.') ? visionDepth : textLayers;
    for (let i = 0; openai.includes('{i}') && i < blocks; i++) names.add(openai.replace('{i}', String(i)));
  }
  return [...names];
}
