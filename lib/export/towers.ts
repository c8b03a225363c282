/**
 * rils's towers as ONNX graphs, from the model's config and weights, computing what native/model
 * computes: OpenAI CLIP's vision tower (conv1 without bias, class token, ln_pre, pre-LN blocks with
 * nn.MultiheadAttention's packed in-projection, ln_post on the class token, visual.proj); RILS's own
 * (patch embedding with bias, sin-cos positions, BEiT q/v biases, the final norm, the mean
 * of the patch tokens, image_projection; no masking at inference); and CLIP's text tower (causal
 * blocks, ln_final, the feature at the end-of-text token, text_projection).
 * @internal
 * @module
 */
import type { ModelConfig } from '../model/options.js';
import { FLOAT, INT32, INT64 } from './graph.js';
import type { Graph } from './graph.js';

/** One parameter as the model hands it over. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** The model's parameters by their names (rils's = OpenAI's for CLIP, WEIGHTS.md's for RILS). */
export type Weights = ReadonlyMap<string, Tensor>;

/** What a tower needs of the model: its config and weights. */
export interface TowerSource {
  config: Readonly<ModelConfig>;
  weights: Weights;
}

function get(w: Weights, name: string): Tensor {
  const t = w.get(name);
  if (!t) throw new Error(`rils export: the model has no parameter '${name}' (a bug: please report it)`);
  return t;
}

/** The activation of an MLP: QuickGELU x·σ(1.702x) (OpenAI) or exact GELU ½x(1 + erf(x/√2)). */
function activation(g: Graph, x: string, act: 'gelu' | 'quick_gelu'): string {
  if (act === 'quick_gelu') return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.floats([1.702], [])])])]);
  const erf = g.op('Erf', [g.op('Div', [x, g.floats([Math.SQRT2], [])])]);
  return g.op('Mul', [g.op('Mul', [x, g.floats([0.5], [])]), g.op('Add', [erf, g.floats([1], [])])]);
}

/**
 * Multi-head self-attention over x `[B, T, W]` with a packed in-projection `[3W, W]` (q | k | v) and
 * its bias: softmax((q/√d)·kᵀ + mask)·v, heads concatenated → `[B, T, W]` (before the out-projection).
 */
function selfAttention(
  g: Graph,
  x: string,
  inProj: Tensor,
  inBias: Float32Array,
  heads: number,
  mask?: string,
): string {
  const W = inProj.shape[1]!,
    d = W / heads;
  const qkv = g.linear(x, inProj, inBias); // [B, T, 3W]
  const split = g.op('Transpose', [g.op('Reshape', [qkv, g.ints([0, 0, 3, heads, d])])], { perm: [2, 0, 3, 1, 4] }); // [3, B, H, T, d]
  const part = (i: number) => g.op('Gather', [split, g.ints([i], [])], { axis: 0 }); // [B, H, T, d]
  const q = g.op('Mul', [part(0), g.floats([1 / Math.sqrt(d)], [])]);
  const k = g.op('Transpose', [part(1)], { perm: [0, 1, 3, 2] }); // [B, H, d, T]
  let scores = g.op('MatMul', [q, k]); // [B, H, T, T]
  if (mask) scores = g.op('Add', [scores, mask]);
  const out = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), part(2)]); // [B, H, T, d]
  return g.op('Reshape', [g.op('Transpose', [out], { perm: [0, 2, 1, 3] }), g.ints([0, 0, W])]); // [B, T, W]
}

/** OpenAI CLIP's residual block `{prefix}` (ln_1, attn, ln_2, mlp.c_fc/c_proj): x + attn(ln_1(x)), then + mlp(ln_2(x)). */
function clipBlock(
  g: Graph,
  w: Weights,
  x: string,
  prefix: string,
  o: { heads: number; eps: number; act: 'gelu' | 'quick_gelu'; mask?: string },
): string {
  const p = (n: string) => get(w, `${prefix}.${n}`);
  const h = g.layerNorm(x, p('ln_1.weight').data, p('ln_1.bias').data, o.eps);
  const a = selfAttention(g, h, p('attn.in_proj_weight'), p('attn.in_proj_bias').data, o.heads, o.mask);
  x = g.op('Add', [x, g.linear(a, p('attn.out_proj.weight'), p('attn.out_proj.bias').data)]);
  const m = activation(
    g,
    g.linear(
      g.layerNorm(x, p('ln_2.weight').data, p('ln_2.bias').data, o.eps),
      p('mlp.c_fc.weight'),
      p('mlp.c_fc.bias').data,
    ),
    o.act,
  );
  return g.op('Add', [x, g.linear(m, p('mlp.c_proj.weight'), p('mlp.c_proj.bias').data)]);
}

/** RILS's block `{prefix}` (norm1, attn with q/v biases and a zero k bias, norm2, mlp.fc1/fc2 with the tower's activation). */
function rilsBlock(
  g: Graph,
  w: Weights,
  x: string,
  prefix: string,
  o: { heads: number; eps: number; act: 'gelu' | 'quick_gelu' },
): string {
  const p = (n: string) => get(w, `${prefix}.${n}`);
  const D = p('attn.q_bias').data.length;
  const bias = new Float32Array(3 * D);
  bias.set(p('attn.q_bias').data, 0);
  bias.set(p('attn.v_bias').data, 2 * D);
  const a = selfAttention(
    g,
    g.layerNorm(x, p('norm1.weight').data, p('norm1.bias').data, o.eps),
    p('attn.qkv.weight'),
    bias,
    o.heads,
  );
  x = g.op('Add', [x, g.linear(a, p('attn.proj.weight'), p('attn.proj.bias').data)]);
  const m = activation(
    g,
    g.linear(
      g.layerNorm(x, p('norm2.weight').data, p('norm2.bias').data, o.eps),
      p('mlp.fc1.weight'),
      p('mlp.fc1.bias').data,
    ),
    o.act,
  );
  return g.op('Add', [x, g.linear(m, p('mlp.fc2.weight'), p('mlp.fc2.bias').data)]);
}

/**
 * The tokens `[B, 1 + N, W]` an image starts as: each p×p patch through the patch convolution (kernel
 * = stride = p), plus its position; the class token (with position 0) first.
 */
function imageTokens(
  g: Graph,
  pixels: string,
  conv: { weight: Tensor; bias?: Float32Array },
  cls: Float32Array,
  positions: Float32Array,
  patch: number,
): string {
  const W = cls.length,
    N = positions.length / W - 1;
  const convInputs = [pixels, g.weight('patch_weight', conv.weight.data, conv.weight.shape)];
  if (conv.bias) convInputs.push(g.weight('patch_bias', conv.bias, [W]));
  const grid = g.op('Conv', convInputs, { kernel_shape: [patch, patch], strides: [patch, patch] }); // [B, W, g, g]
  const patches = g.op('Transpose', [g.op('Reshape', [grid, g.ints([0, W, N])])], { perm: [0, 2, 1] }); // [B, N, W]
  const placed = g.op('Add', [patches, g.weight('positions', positions.subarray(W), [1, N, W])]);
  const first = cls.map((v, i) => v + positions[i]!);
  const batch = g.op('Concat', [g.dim(pixels, 0), g.ints([1, 1])], { axis: 0 }); // [B, 1, 1]
  const clsTokens = g.op('Expand', [g.weight('class_token', first, [1, 1, W]), batch]); // [B, 1, W]
  return g.op('Concat', [clsTokens, placed], { axis: 1 }); // [B, 1 + N, W]
}

/**
 * The vision tower on `pixels` `[B, 3, S, S]`: the pooled embedding `[B, E]` (not normalised) and the
 * tokens rils calls its features `[B, 1 + N, W]` (CLIP's before ln_post, RILS's after the final norm).
 */
export function visionTower(g: Graph, m: TowerSource, pixels: string): { embeds: string; hidden: string } {
  const c = m.config,
    w = m.weights,
    p = (n: string) => get(w, `visual.${n}`);
  if (c.visionTower === 'clip') {
    let x = imageTokens(
      g,
      pixels,
      { weight: p('conv1.weight') },
      p('class_embedding').data,
      p('positional_embedding').data,
      c.patchSize,
    );
    x = g.layerNorm(x, p('ln_pre.weight').data, p('ln_pre.bias').data, c.visionLnEps);
    for (let i = 0; i < c.visionDepth; i++) {
      x = clipBlock(g, w, x, `visual.transformer.resblocks.${i}`, {
        heads: c.visionHeads,
        eps: c.visionLnEps,
        act: c.visionAct,
      });
    }
    const cls = g.op('Gather', [x, g.ints([0], [])], { axis: 1 }); // [B, W]
    const pooled = g.layerNorm(cls, p('ln_post.weight').data, p('ln_post.bias').data, c.visionLnEps);
    return { embeds: g.linear(pooled, { ...p('proj'), transposed: true }), hidden: x };
  }
  let x = imageTokens(
    g,
    pixels,
    { weight: p('patch_embed.proj.weight'), bias: p('patch_embed.proj.bias').data },
    p('cls_token').data,
    p('pos_embed').data,
    c.patchSize,
  );
  for (let i = 0; i < c.visionDepth; i++)
    x = rilsBlock(g, w, x, `visual.blocks.${i}`, { heads: c.visionHeads, eps: c.visionLnEps, act: c.visionAct });
  x = g.layerNorm(x, p('norm.weight').data, p('norm.bias').data, c.visionLnEps);
  const pooled = g.mean(g.slice(x, 1, 1, Number.MAX_SAFE_INTEGER), 1); // the patch tokens' mean, cls excluded: [B, D]
  return { embeds: g.linear(pooled, { ...get(w, 'image_projection'), transposed: true }), hidden: x };
}

/**
 * Where each row's caption ends, and the ids the tower reads (`ids` `[B, L]` → `[B, min(L, C)]`), as
 * rils reads a row: the first end-of-text id (the largest id, found by argmax, as CLIP does). A row
 * cut at the context length C without one (transformers.js truncates after adding the special tokens)
 * is read as rils's tokenizer cuts a caption: its first C − 1 ids, then end-of-text.
 */
function captionEnds(g: Graph, ids: string, C: number, eot: number): { ids: string; ends: string } {
  const kept = g.slice(ids, 1, 0, C); // [B, L']
  const argmax = g.op('ArgMax', [g.op('Cast', [kept], { to: INT32 })], { axis: 1, keepdims: 1 }); // [B, 1]
  const hasEnd = g.op('Equal', [g.op('GatherElements', [kept, argmax], { axis: 1 }), g.ints([eot])]); // [B, 1]
  const full = g.op('Equal', [g.dim(kept, 1), g.ints([C])]); // [1]: L' = C
  const cut = g.op('And', [g.op('Not', [hasEnd]), full]); // [B, 1]
  const last = g.op('Equal', [
    g.slice(g.ints(Array.from({ length: C }, (_, i) => i)), 0, 0, g.dim(kept, 1)),
    g.ints([C - 1]),
  ]); // [L']
  return {
    ids: g.op('Where', [g.op('And', [cut, last]), g.ints([eot]), kept]),
    ends: g.op('Where', [cut, g.ints([C - 1]), argmax]), // [B, 1]
  };
}

/** The text tower on `ids` `[B, L]` (int64): the embedding at each caption's end `[B, E]` and the tokens `[B, L', W]`. */
export function textTower(g: Graph, m: TowerSource, inputIds: string): { embeds: string; hidden: string } {
  const c = m.config,
    w = m.weights,
    C = c.contextLength,
    W = c.textWidth;
  const { ids, ends } = captionEnds(g, inputIds, C, c.vocabSize - 1);
  const length = g.dim(ids, 1);
  const tokens = g.op('Gather', [
    g.weight('token_embedding', get(w, 'token_embedding.weight').data, [c.vocabSize, W]),
    ids,
  ]); // [B, L', W]
  let x = g.op('Add', [
    tokens,
    g.slice(g.weight('positional_embedding', get(w, 'positional_embedding').data, [C, W]), 0, 0, length),
  ]);
  // The causal mask: position i attends to positions ≤ i.
  const mask = Float32Array.from({ length: C * C }, (_, k) => (k % C > Math.floor(k / C) ? -Infinity : 0));
  const causal = g.slice(g.slice(g.weight('causal_mask', mask, [C, C]), 0, 0, length), 1, 0, length); // [L', L']
  for (let i = 0; i < c.textLayers; i++) {
    x = clipBlock(g, w, x, `transformer.resblocks.${i}`, {
      heads: c.textHeads,
      eps: c.textLnEps,
      act: c.textAct,
      mask: causal,
    });
  }
  x = g.layerNorm(x, get(w, 'ln_final.weight').data, get(w, 'ln_final.bias').data, c.textLnEps);
  const pooled = g.op('GatherND', [x, ends], { batch_dims: 1 }); // [B, W]
  return { embeds: g.linear(pooled, { ...get(w, 'text_projection'), transposed: true }), hidden: x };
}

/** `pixel_values` `[batch, 3, S, S]` float, as transformers' CLIP models name it. */
export function pixelInput(g: Graph, c: Readonly<ModelConfig>, batch = 'batch_size'): string {
  return g.input('pixel_values', FLOAT, [batch, 3, c.imageSize, c.imageSize]);
}

/** `input_ids` `[batch, sequence]` int64 and `attention_mask` (accepted for transformers.js; causal attention and end-of-text pooling make padding irrelevant). */
export function textInputs(g: Graph, batch = 'batch_size'): string {
  const ids = g.input('input_ids', INT64, [batch, 'sequence_length']);
  g.input('attention_mask', INT64, [batch, 'sequence_length']);
  return ids;
}
