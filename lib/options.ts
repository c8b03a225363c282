/**
 * Options of {@link Rils.create}: a preset, overrides of its model fields, and training options.
 * @module
 */
import { native } from './binding.js';
import type { NativeConfig, NativeTrainOptions } from './binding.js';
import { RilsInputError } from './errors.js';
import type { Tokenizer } from './tokenizer.js';
import { toNativeDistributed } from './distributed.js';
import type { DistributedOptions } from './distributed.js';
import { camelCase, checkBoolean, checkInteger, checkNumber, invalid, snakeCase } from './validate.js';

/** The model presets of the RILS spec (§5). */
export type PresetName = 'vit_l16' | 'vit_b16' | 'vit_s16' | 'vit_ti16' | 'micro';

/** Where the model lives and runs: `'cpu'`, `'cuda'` (= `'cuda:0'`) or `'cuda:N'`. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/**
 * Every field of a model preset; each can be overridden in {@link RilsOptions}.
 * `vit_b16` is the official RILS ViT-B/16; `micro` (32×32 images, 4×4 patches) is for tests and demos.
 */
export interface ModelConfig {
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
  /** MLP hidden size as a multiple of the width. Default 4. */
  mlpRatio: number;
  /** Feature-decoder width. vit_b16: 768. */
  decoderWidth: number;
  /** Feature-decoder blocks. Default 1. */
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

const MODEL_INT_FIELDS = [
  'imageSize', 'patchSize', 'inChans', 'visionWidth', 'visionDepth', 'visionHeads', 'decoderWidth',
  'decoderDepth', 'decoderHeads', 'textWidth', 'textLayers', 'textHeads', 'contextLength', 'vocabSize', 'embedDim',
] as const;
const MODEL_REAL_FIELDS = ['mlpRatio', 'visionLnEps', 'textLnEps', 'logitScaleInit', 'logitScaleMax'] as const;
const TRAIN_INT_FIELDS = ['warmupSteps', 'totalSteps', 'accumulationSteps', 'klChunkElements'] as const;
const TRAIN_REAL_FIELDS = [
  'lr', 'minLr', 'warmupStartLr', 'weightDecay', 'eps', 'gradClipNorm', 'reconWeight', 'tauStudent', 'tauTeacher',
  'maskRatio',
] as const;
const TRAIN_BOOL_FIELDS = ['retrievalGate', 'detachTextPrototypes', 'clipLocalGrad', 'gatherGrad'] as const;
const OTHER_FIELDS = ['preset', 'seed', 'device', 'betas', 'tokenizer', 'onNonFinite', 'distributed'] as const;
const KNOWN = new Set<string>([
  ...MODEL_INT_FIELDS, ...MODEL_REAL_FIELDS, ...TRAIN_INT_FIELDS, ...TRAIN_REAL_FIELDS, ...TRAIN_BOOL_FIELDS,
  ...OTHER_FIELDS,
]);
const PRESETS: readonly PresetName[] = ['vit_l16', 'vit_b16', 'vit_s16', 'vit_ti16', 'micro'];
/** @internal */
export const PRESET_NAMES = PRESETS;
/** Whether `name` is an option of {@link RilsOptions}. @internal */
export function isOptionName(name: string): boolean {
  return KNOWN.has(name);
}

/** The resolved fields of a preset. */
export function presetConfig(preset: PresetName): ModelConfig {
  const table = native.presets()[preset];
  if (!table) throw invalid(`one of ${PRESETS.join(', ')}`, 'preset', preset);
  return fromNativeConfig(table);
}

/** @internal */
export function fromNativeConfig(c: NativeConfig): ModelConfig {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [camelCase(k), v])) as unknown as ModelConfig;
}

/** Checks every option's type and splits them into what the addon takes. @internal */
export function toNativeOptions(options: RilsOptions): {
  preset: PresetName;
  config: NativeConfig;
  train: NativeTrainOptions;
  seed: number;
  device: string;
  distributed?: ReturnType<typeof toNativeDistributed>;
} {
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new RilsInputError(`Unknown option '${key}'`);
  }
  const o = options as Record<string, unknown>;
  const preset = (o.preset ?? 'vit_b16') as PresetName;
  if (!PRESETS.includes(preset)) throw invalid(`one of ${PRESETS.join(', ')}`, 'preset', o.preset);
  const config: NativeConfig = {};
  const train: NativeTrainOptions = {};
  for (const k of MODEL_INT_FIELDS) if (o[k] !== undefined) config[snakeCase(k)] = checkInteger(o[k], k, 1);
  for (const k of MODEL_REAL_FIELDS) if (o[k] !== undefined) config[snakeCase(k)] = checkNumber(o[k], k);
  for (const k of TRAIN_INT_FIELDS) if (o[k] !== undefined) train[snakeCase(k)] = checkInteger(o[k], k, 0);
  for (const k of TRAIN_REAL_FIELDS) if (o[k] !== undefined) train[snakeCase(k)] = checkNumber(o[k], k);
  for (const k of TRAIN_BOOL_FIELDS) if (o[k] !== undefined) train[snakeCase(k)] = checkBoolean(o[k], k);
  if (o.betas !== undefined) {
    const b = o.betas;
    if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => typeof x === 'number' && x >= 0 && x < 1)) {
      throw invalid('two numbers in [0, 1)', 'betas', b);
    }
    train.beta1 = b[0] as number;
    train.beta2 = b[1] as number;
  }
  const maskRatio = train.mask_ratio;
  if (typeof maskRatio === 'number' && !(maskRatio >= 0 && maskRatio < 1)) throw invalid('a number in [0, 1)', 'maskRatio', maskRatio);
  if (train.accumulation_steps === 0) throw invalid('an integer >= 1', 'accumulationSteps', 0);
  for (const k of ['lr', 'minLr', 'warmupStartLr', 'weightDecay', 'eps', 'gradClipNorm', 'reconWeight'] as const) {
    if (typeof o[k] === 'number' && (o[k] as number) < 0) throw invalid('a number >= 0', k, o[k]);
  }
  for (const k of ['tauStudent', 'tauTeacher'] as const) {
    if (typeof o[k] === 'number' && !((o[k] as number) > 0)) throw invalid('a number > 0', k, o[k]);
  }
  const seed = o.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : checkInteger(o.seed, 'seed', 0);
  if (o.onNonFinite !== undefined && o.onNonFinite !== 'skip' && o.onNonFinite !== 'throw') {
    throw invalid("'skip' or 'throw'", 'onNonFinite', o.onNonFinite);
  }
  const device = o.device ?? 'cpu';
  if (typeof device !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(device)) {
    throw invalid("'cpu', 'cuda' or 'cuda:N'", 'device', device);
  }
  if (o.distributed !== undefined) {
    if (device !== 'cpu') throw invalid("'cpu' with distributed (training across processes runs on Gloo)", 'device', device);
    return { preset, config, train, seed, device, distributed: toNativeDistributed(o.distributed) };
  }
  return { preset, config, train, seed, device };
}

/** Training options as the addon reports them, in camelCase. @internal */
export function fromNativeTrainOptions(t: NativeTrainOptions): Required<TrainingOptions> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) if (k !== 'beta1' && k !== 'beta2') out[camelCase(k)] = v;
  out.betas = [t.beta1, t.beta2];
  return out as unknown as Required<TrainingOptions>;
}
