/**
 * The shapes of what {@link Rils} takes and returns: batches, statistics, embeddings.
 * @module
 */
import type { Templates } from './eval/templates.js';
import type { Tokenizer } from './tokenizer/index.js';

/** One batch of image–caption pairs. */
export interface Batch {
  /**
   * `Float32Array` of `[batchSize, 3, imageSize, imageSize]` (NCHW), already normalised; or
   * `Uint8Array` (a `Buffer` works) of `[batchSize, imageSize, imageSize, 3]` RGB, which is
   * normalised natively with the model's own mean and std (its config's imageMeanR/G/B and imageStdR/G/B:
   * ImageNet's for the vit_* presets, CLIP's for clip_* and CLIP checkpoints). Copied when the call is made: changing or
   * transferring it afterwards does not affect the call.
   */
  images: Float32Array | Uint8Array;
  /** `Int32Array` of `[batchSize, contextLength]`: SOT, ids, EOT, zero padding (EOT = vocabSize − 1). */
  tokens: Int32Array;
  /** Number of pairs; at least 2 (the contrastive loss needs negatives). */
  batchSize: number;
  /**
   * Optional `Float32Array` of `[batchSize, numPatches]`: the `len_keep` smallest values of a row
   * are the visible patches. Makes masking deterministic (tests, parity). Default: drawn from the
   * model's seeded generator.
   */
  maskNoise?: Float32Array;
}

/** Statistics of one forward pass (the one whose gradient was applied, for {@link Rils.trainStep}). */
export interface LossStats {
  /** clipLoss + reconLoss. */
  loss: number;
  /** Symmetric InfoNCE. */
  clipLoss: number;
  /** reconWeight × the gated mean KL, the term as added to the loss. */
  reconLoss: number;
  /** The gated mean KL(teacher ‖ student) over masked patches, unweighted (NaN with reconWeight 0: not computed). */
  reconKl: number;
  /** Fraction (0..1) of images whose top-1 caption in the batch is their own. */
  clipAcc: number;
  /** Fraction (0..1) of masked patches that pass the retrieval gate and carry L_rec. */
  gatedFraction: number;
  /** Masked patches in the batch: batchSize × (numPatches − len_keep). */
  maskedPatches: number;
  /** Masked patches that pass the gate (all of them with `retrievalGate: false`). */
  gatedPatches: number;
  /** Learning rate of this update (of the next one, for evaluateLoss). */
  lr: number;
  /** The contrastive scale exp(logit_scale), after the update and clamp. */
  logitScale: number;
  /** Optimizer steps done so far. */
  step: number;
}

/** What {@link Rils.trainStep} reports. */
export interface TrainStats extends LossStats {
  /** Global gradient L2 norm before clipping; NaN while accumulating micro-batches. */
  gradNorm: number;
  /** Whether the weights changed (false while accumulating, or when the step was skipped). */
  updated: boolean;
  /** The loss or gradient was NaN/inf: the update was skipped, the weights are unchanged. */
  nonFinite: boolean;
}

/** One parameter tensor of the model. */
export interface ParameterInfo {
  /** The official state_dict name, e.g. `visual.blocks.0.attn.qkv.weight`. */
  name: string;
  /** Dimensions, e.g. `[2304, 768]`. */
  shape: number[];
  /** Number of elements. */
  numel: number;
  /** False for the two fixed sin-cos tables. */
  trainable: boolean;
  /** In AdamW's weight-decay group. */
  weightDecay: boolean;
}

/** What {@link Rils.encodeImages} returns besides the pooled embedding. */
export interface EncodeImagesOptions {
  /** L2-normalise the pooled embeddings. Default true. */
  normalize?: boolean;
  /** Also return the final patch tokens `[B, numPatches, visionWidth]`. */
  patchTokens?: boolean;
  /** Also return the final cls token `[B, visionWidth]`. */
  clsToken?: boolean;
  /** Also return the patch tokens through the image projection `[B, numPatches, embedDim]`. */
  patchEmbeddings?: boolean;
}

/** Image embeddings; every array is row-major float32, backed by native memory (no copy). */
export interface ImageEncoding {
  /** Images encoded. */
  batchSize: number;
  /** `[batchSize, embedDim]`. */
  embeddings: Float32Array;
  /** `[batchSize, numPatches, visionWidth]`, patches row-major over the grid. */
  patchTokens?: Float32Array;
  /** `[batchSize, visionWidth]`. */
  clsToken?: Float32Array;
  /** `[batchSize, numPatches, embedDim]`. */
  patchEmbeddings?: Float32Array;
}

/** What {@link Rils.classLogits} returns. */
export interface ClassLogits {
  /** Images classified. */
  batchSize: number;
  /** `[batchSize, numClasses]` exp(logit_scale) × cosine. */
  logits: Float32Array;
  /** `[batchSize, numClasses]` softmax over classes. */
  probabilities: Float32Array;
}

/** Text embeddings. */
export interface TextEncoding {
  /** Texts encoded. */
  batchSize: number;
  /** `[batchSize, embedDim]`, float32, backed by native memory. */
  embeddings: Float32Array;
}

/** Options of {@link Rils.patchSemantics}. */
export interface PatchSemanticsOptions {
  /** Softmax temperature. Default: the model's `tauTeacher` (0.04), the teacher view of training. */
  temperature?: number;
  /** Treat the texts as class names and expand them with these templates. */
  templates?: Templates;
  /** Tokenizer for the texts. Default: the model's. */
  tokenizer?: Tokenizer;
}

/** Per-patch probabilities over texts. */
export interface PatchSemantics {
  /** Images analysed. */
  batchSize: number;
  /** Patches per side: numPatches = gridSize². */
  gridSize: number;
  /** The texts, in the order of the last axis. */
  labels: string[];
  /** `[batchSize, gridSize², labels.length]`, each patch's row sums to 1. */
  probabilities: Float32Array;
}
