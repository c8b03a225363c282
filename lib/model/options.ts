/**
 * Options of {@link Rils.create}: a preset, overrides of its model fields, and training options.
 * @module
 */
import { CONFIG_FIELDS, PRESETS, RUN_FIELDS, TRAIN_FIELDS, camelKeys } from './schema.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { DistributedOptions } from '../train/distributed.js';
import { camelCase, invalid } from '../validate.js';

/**
 * The model presets: RILS's of spec §5 (`vit_*`, and `micro`, 32×32 images, for tests and demos)
 * and OpenAI CLIP's ViTs (`clip_*`; `clip_micro` for tests), which {@link Rils.fromPretrained}
 * fills with a checkpoint's weights.
 */
export type PresetName =
  | 'vit_l16'
  | 'vit_b16'
  | 'vit_s16'
  | 'vit_ti16'
  | 'micro'
  | 'clip_vit_b32'
  | 'clip_vit_b16'
  | 'clip_vit_l14'
  | 'clip_vit_l14_336'
  | 'clip_micro';

/** The MLP activation: exact (erf) GELU, or QuickGELU x·σ(1.702x) (OpenAI's CLIP). */
export type Activation = 'gelu' | 'quick_gelu';

/** Where the model lives and runs: `'cpu'`, `'cuda'` (= `'cuda:0'`) or `'cuda:N'`. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/**
 * The arithmetic of the towers: `'fp32'`, `'bf16'` (mixed precision), or `'auto'`: bf16 on CUDA,
 * fp32 on the CPU.
 */
export type Precision = 'auto' | 'fp32' | 'bf16';
/** Every {@link Precision}, as the addon's run table declares them. @internal */
export const PRECISIONS = RUN_FIELDS.get('precision')!.choices as readonly Precision[];

/**
 * Every field of a model preset; each can be overridden in {@link RilsOptions}.
 * `vit_b16` is the official RILS ViT-B/16; `micro` (32×32 images, 4×4 patches) is for tests and demos.
 */
export interface ModelConfig {
  /**
   * The image tower: `'rils'`, RILS's MAE-style ViT with its feature decoder (the `vit_*` presets),
   * or `'clip'`, OpenAI CLIP's ViT (`clip_*`: class-token pooling through `ln_post` and `proj`).
   */
  visionTower: 'rils' | 'clip';
  /** Input image side in pixels (square). vit_*: 224, micro: 32. */
  imageSize: number;
  /** Patch side in pixels. vit_*: 16, micro: 4. */
  patchSize: number;
  /** Image channels. Default 3. */
  inChans: number;
  /** ViT width D. vit_b16: 768. */
  visionWidth: number;
  /** ViT blocks. vit_b16: 12. */
  visionDepth: number;
  /** ViT attention heads. vit_b16: 12. */
  visionHeads: number;
  /** The vision tower's MLP hidden size as a multiple of its width (either tower). Default 4. */
  mlpRatio: number;
  /**
   * The vision tower's MLP activation (either tower; RILS's feature decoder keeps MAE's GELU).
   * vit_*: `'gelu'`; OpenAI's CLIP: `'quick_gelu'`.
   */
  visionAct: Activation;
  /** Feature-decoder width. vit_b16: 768. */
  decoderWidth: number;
  /**
   * Feature-decoder blocks. vit_*: 1. clip_*: 0, no decoder (set >= 1 to fine-tune with RILS's
   * reconstruction term: a new decoder is initialised).
   */
  decoderDepth: number;
  /** Feature-decoder heads. vit_b16: 12. */
  decoderHeads: number;
  /** Text transformer width. vit_b16: 512. */
  textWidth: number;
  /** Text transformer layers. vit_b16: 12. */
  textLayers: number;
  /** Text attention heads. vit_b16: 8. */
  textHeads: number;
  /** Tokens per caption (SOT … EOT, zero-padded). vit_*: 77, micro: 16. */
  contextLength: number;
  /** Vocabulary size V; SOT = V − 2 and EOT = V − 1 (EOT is the largest id). CLIP BPE: 49408. */
  vocabSize: number;
  /** The text tower's MLP activation. Default `'quick_gelu'` (OpenAI's); most open_clip models: `'gelu'`. */
  textAct: Activation;
  /** Joint embedding size E. vit_b16: 512. */
  embedDim: number;
  /** LayerNorm eps of the vision tower. Default 1e-6. */
  visionLnEps: number;
  /** LayerNorm eps of the text tower. Default 1e-5. */
  textLnEps: number;
  /** Initial log logit scale. Default ln(1/0.07). */
  logitScaleInit: number;
  /** Upper clamp of the log logit scale after every step. Default 4.6052 (SLIP's ln 100). */
  logitScaleMax: number;
  /**
   * How image files are resized (shorter side to `imageSize`, antialiased, then a centre crop).
   * vit_*: `'bilinear'`; clip_*: `'bicubic'` (OpenAI's transform).
   */
  interpolation: 'bilinear' | 'bicubic';
  /** Per-channel mean of the input normalisation, red. vit_*: ImageNet's 0.485; clip_*: 0.48145466. */
  imageMeanR: number;
  /** Green mean. vit_*: 0.456; clip_*: 0.4578275. */
  imageMeanG: number;
  /** Blue mean. vit_*: 0.406; clip_*: 0.40821073. */
  imageMeanB: number;
  /** Per-channel standard deviation, red. vit_*: 0.229; clip_*: 0.26862954. */
  imageStdR: number;
  /** Green standard deviation. vit_*: 0.224; clip_*: 0.26130258. */
  imageStdG: number;
  /** Blue standard deviation. vit_*: 0.225; clip_*: 0.27577711. */
  imageStdB: number;
}

/** Optimiser, schedule and loss options (spec §2–3). All optional. */
export interface TrainingOptions {
  /** Peak learning rate. Default 5e-4. */
  lr?: number;
  /** Learning rate at the end of the cosine decay. Default 1e-5. */
  minLr?: number;
  /** Learning rate at the start of the linear warmup. Default 1e-6. */
  warmupStartLr?: number;
  /** Optimizer steps of linear warmup. Default 0. */
  warmupSteps?: number;
  /** Warmup + cosine length in optimizer steps; 0 keeps `lr` constant after warmup. Default 0. */
  totalSteps?: number;
  /** AdamW weight decay of the decay group (no decay for biases, norms, scalars). Default 0.5. */
  weightDecay?: number;
  /** AdamW betas. Default [0.9, 0.98]. */
  betas?: [number, number];
  /** AdamW eps. Default 1e-8. */
  eps?: number;
  /** Clip the global gradient norm to this value; 0 turns clipping off. Default 0. */
  gradClipNorm?: number;
  /** Micro-batches (trainStep calls) per optimizer step. Default 1. */
  accumulationSteps?: number;
  /** Weight of the reconstruction term: L = L_clip + reconWeight · L_rec. Default 0.5. */
  reconWeight?: number;
  /** Student temperature τ_s of the patch–sentence logits. Default 0.1. */
  tauStudent?: number;
  /** Teacher temperature τ_t. Default 0.04. */
  tauTeacher?: number;
  /** Fraction of patches hidden from the encoder's masked branch. Default 0.75. */
  maskRatio?: number;
  /** Only images whose image→text top-1 is correct contribute to L_rec. Default true. */
  retrievalGate?: boolean;
  /** Text prototypes are constants inside L_rec (official multi-GPU behaviour). Default true. */
  detachTextPrototypes?: boolean;
  /** Each tower learns only from its own InfoNCE term (official multi-GPU gradients). Default false. */
  clipLocalGrad?: boolean;
  /**
   * Across processes ({@link RilsOptions.distributed}): gathered embeddings carry gradient back to
   * their rank and L_rec is normalised over the global batch, so N processes × B/N train exactly
   * like one process × B. Default false: the official runs, where gathered copies are constants
   * (as if `clipLocalGrad` and `detachTextPrototypes`) and each rank normalises its own L_rec.
   */
  gatherGrad?: boolean;
  /** Largest [rows, N, B] logit block of the chunked KL, in elements. Default 4 194 304. */
  klChunkElements?: number;
}

/** Options of {@link Rils.create}. */
export interface RilsOptions extends Partial<ModelConfig>, TrainingOptions {
  /** The preset the model fields start from. Default `'vit_b16'`. */
  preset?: PresetName;
  /** Seeds the parameter init (same numbers as the PyTorch reference for the same seed) and the mask noise. Default: random. */
  seed?: number;
  /** Default `'cpu'`. */
  device?: Device;
  /**
   * The towers' arithmetic, in training and inference. `'bf16'`: the GEMMs and attention run in
   * bf16 (LibTorch's autocast; oneDNN on the CPU), with fp32 master weights and AdamW, LayerNorm,
   * softmax statistics and the loss in fp32: losses stay within ~1e-2 relative of fp32's. On the CPU
   * it needs bf16 units (the CPU flags `avx512_bf16` or `amx_bf16`) and an addon built against
   * LibTorch >= 2 (`runtimeInfo().cpuBf16` says whether this one can); see
   * {@link RilsOptions.onUnsupportedPrecision}. Default `'auto'`: bf16 on CUDA, fp32 on the CPU.
   *
   * @example
   * ```ts
   * const model = await Rils.create({ preset: 'vit_s16', precision: 'bf16', onUnsupportedPrecision: 'fp32' });
   * console.log(model.precision); // 'bf16', or 'fp32' (with a warning) where bf16 cannot run
   * ```
   */
  precision?: Precision;
  /**
   * What `precision: 'bf16'` does where it cannot run: `'throw'` rejects with a
   * {@link RilsDeviceError} saying why; `'fp32'` runs in fp32 and emits a process warning
   * (`RILS_PRECISION`). Default `'throw'`.
   */
  onUnsupportedPrecision?: 'throw' | 'fp32';
  /** Tokenizer for texts given as strings (zero-shot, encodeTexts, patchSemantics). */
  tokenizer?: Tokenizer;
  /**
   * A step whose loss or gradient is NaN/inf is always skipped (weights unchanged). `'skip'`
   * reports it in `TrainStats.nonFinite`; `'throw'` also rejects the call. Default `'skip'`.
   */
  onNonFinite?: 'skip' | 'throw';
  /**
   * Makes this model one rank of a data-parallel job (e.g. `distributedFromEnv()`); `create`
   * resolves once every rank has joined. Training across processes runs on the CPU (Gloo).
   */
  distributed?: DistributedOptions | undefined;
}

/** TS options that stand for several native fields. @internal */
export const OPTION_ALIASES: Readonly<Record<string, readonly string[]>> = { betas: ['beta1', 'beta2'] };
/**
 * The options of {@link RilsOptions} that choose how a run goes but are not native fields (a device
 * names itself with an index; the others are the library's policy): each declared once, with its
 * values, default and help, checked by {@link toNativeOptions} and offered by the CLI. @internal
 */
export const RUN_OPTIONS = {
  device: {
    values: ['cpu', 'cuda', 'cuda:N'],
    pattern: /^(cpu|cuda(:\d+)?)$/,
    default: 'cpu',
    help: 'where the model runs',
  },
  onUnsupportedPrecision: {
    values: ['throw', 'fp32'],
    default: 'throw',
    help: 'bf16 where it cannot run: an error saying why, or fp32 with a warning',
  },
  onNonFinite: {
    values: ['skip', 'throw'],
    default: 'skip',
    help: 'a NaN/inf step: skipped and counted, or the end of the run',
  },
} as const;

/** `value` checked against its {@link RUN_OPTIONS} row (`what` names it in the error). @internal */
export function checkRunOption<K extends keyof typeof RUN_OPTIONS>(
  name: K,
  value: unknown,
  what: string = name,
): string {
  const row: { values: readonly string[]; pattern?: RegExp } = RUN_OPTIONS[name];
  const ok = typeof value === 'string' && (row.pattern ? row.pattern.test(value) : row.values.includes(value));
  if (!ok)
    throw invalid(
      row.values
        .map((v) => `'${v}'`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1'),
      what,
      value,
    );
  return value as string;
}

/** Options of {@link RilsOptions} that are not model or training fields. @internal */
export const OTHER_OPTIONS = [
  'preset',
  'seed',
  'precision',
  'tokenizer',
  'distributed',
  ...Object.keys(RUN_OPTIONS),
] as const;
/** The native fields that an alias stands for (beta1, beta2): not options of their own. @internal */
export const ALIASED = new Set(Object.values(OPTION_ALIASES).flat().map(camelCase));

/** Whether `name` is an option of {@link RilsOptions}. @internal */
export function isOptionName(name: string): boolean {
  return (
    (CONFIG_FIELDS.has(name) ||
      TRAIN_FIELDS.has(name) ||
      Object.hasOwn(OPTION_ALIASES, name) ||
      (OTHER_OPTIONS as readonly string[]).includes(name)) &&
    !ALIASED.has(name)
  );
}

/** Whether `name` is a preset of the addon. @internal */
export function isPresetName(name: unknown): name is PresetName {
  return typeof name === 'string' && Object.hasOwn(PRESETS, name);
}

/** The resolved fields of a preset. */
export function presetConfig(preset: PresetName): ModelConfig {
  if (!isPresetName(preset)) throw invalid(`one of ${Object.keys(PRESETS).join(', ')}`, 'preset', preset);
  return camelKeys<ModelConfig>(PRESETS[preset]!);
}
