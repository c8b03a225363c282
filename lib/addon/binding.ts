/**
 * The only file that loads the native addon; it types the addon's surface.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

import { findCudaLibTorch, listPrebuilds, planAddon } from './loader.js';
import type { RuntimeInfo } from './runtime.js';
import type { AddonCandidate } from './loader.js';
import type { ParameterInfo } from '../types.js';

/** Model config fields, in the PyTorch reference's snake_case (a choice field as its name). */
export type NativeConfig = Record<string, number | string>;
/** Training options, in the PyTorch reference's snake_case. */
export type NativeTrainOptions = Record<string, number | boolean | string>;
/** Step statistics, in snake_case (RILS_STEP_STATS). */
export type NativeStats = Record<string, number | boolean>;

/** One row of a native field table (native/model/fields.h). */
export interface NativeFieldInfo {
  name: string;
  type: 'int' | 'real' | 'bool' | 'choice';
  default: number | boolean | string;
  /** A choice field's allowed names. */
  choices?: string[];
  min: number;
  max: number;
  minOpen: boolean;
  maxOpen: boolean;
}

export interface NativeSchema {
  config: NativeFieldInfo[];
  train: NativeFieldInfo[];
  stats: { name: string; type: 'int' | 'real' | 'bool' | 'choice'; reduce: 'mean' | 'sum' | 'none' }[];
  /** How a model runs (precision). */
  run: NativeFieldInfo[];
  /** A data-parallel job's numeric options. */
  distributed: NativeFieldInfo[];
  presets: Record<string, NativeConfig>;
}

export interface NativeBatch {
  images: Float32Array | Uint8Array;
  tokens: Int32Array;
  batchSize: number;
  maskNoise?: Float32Array | undefined;
}

export interface NativeTensorEntry {
  name: string;
  shape: number[];
  data: ArrayBuffer;
}

/** One tensor's bytes (in `dtype`) and where they go: a parameter, or rows of it, transposed first when asked. */
export interface NativeTensorLoad {
  name: string;
  data: Uint8Array;
  dtype: string;
  shape: number[];
  rows?: [number, number];
  transpose?: boolean;
}

export interface NativeModel {
  trainStep(batch: NativeBatch): Promise<NativeStats>;
  evaluateLoss(batch: NativeBatch): Promise<NativeStats>;
  getState(): Promise<NativeTensorEntry[]>;
  setState(entries: { name: string; data: Float32Array }[]): Promise<void>;
  getTrainingState(): Promise<{ moments: NativeTensorEntry[]; rng: ArrayBuffer; step: number }>;
  /** Pretrained tensors (raw bytes in `dtype`) into parameters or rows of them, cast to fp32. */
  loadTensors(entries: NativeTensorLoad[]): Promise<void>;
  /** A checkpoint's content, all checked before any of it is applied. */
  setTrainingState(state: {
    weights?: { name: string; data: Float32Array }[];
    moments: { name: string; data: Float32Array }[];
    rng: Uint8Array;
    step: number;
  }): Promise<void>;
  parameters(): ParameterInfo[];
  info(): {
    config: NativeConfig;
    train: NativeTrainOptions;
    device: string;
    precision: 'fp32' | 'bf16';
    step: number;
    distributed?: { rank: number; worldSize: number; peers: string[] };
  };
  /** Every rank's bytes, in rank order (a collective: every rank calls it in the same sequence). */
  allGatherBytes(bytes: Uint8Array): Promise<ArrayBuffer[]>;
  /** LibTorch's operator profiler on this model's thread until stopProfile(), which writes `file`. */
  startProfile(file: string): Promise<void>;
  stopProfile(): Promise<void>;
  dispose(): void;
  encodeImages(
    args: NativeImages & { normalize: boolean; patchTokens: boolean; clsToken: boolean; patchEmbeddings: boolean },
  ): Promise<NativeOutputs>;
  encodeTexts(args: { tokens: Int32Array; batchSize: number; normalize: boolean }): Promise<NativeOutputs>;
  classEmbeddings(args: { tokens: Int32Array; numClasses: number; templatesPerClass: number }): Promise<NativeOutputs>;
  zeroShot(args: NativeImages & { classWeights: Float32Array; numClasses: number }): Promise<NativeOutputs>;
  patchSemantics(
    args: NativeImages & { textEmbeddings: Float32Array; numTexts: number; temperature: number },
  ): Promise<NativeOutputs>;
}

export interface NativeImages {
  images: Float32Array | Uint8Array;
  batchSize: number;
}

/** Named float32 outputs, each an external ArrayBuffer owning its tensor. */
export type NativeOutputs = Partial<Record<string, ArrayBuffer>>;

export interface NativeAddon {
  createModel(options: {
    preset?: string | undefined;
    config: NativeConfig;
    train: NativeTrainOptions;
    seed: number;
    device: string;
    /** RILS_RUN_FIELDS. */
    run: Record<string, number | string>;
    /** The rendezvous host, and RILS_DISTRIBUTED_FIELDS. */
    distributed?: { master_addr: string; fields: Record<string, number> } | undefined;
  }): Promise<NativeModel>;
  schema(): NativeSchema;
  /** How many numbers the model of these options holds (and of them its feature decoder's), nothing allocated. */
  parameterCount(options: { preset?: string | undefined; config: NativeConfig }): { total: number; decoder: number };
  /** {@link RuntimeInfo} but for what lib/ adds (the JPEG decoder, the addon chosen). */
  runtimeInfo(): Omit<RuntimeInfo, 'jpegCrops' | 'addon'>;
  setNumThreads(n: number): void;
  /** Drops queued native work and waits for the running work (at process exit only). */
  shutDown(): void;
  retrievalRanks(args: {
    imageEmbeddings: Float32Array;
    textEmbeddings: Float32Array;
    textImage: Int32Array;
    images: number;
    texts: number;
    dim: number;
    blockElements: number;
  }): Promise<{ imageToText: ArrayBuffer; textToImage: ArrayBuffer }>;
  isTensorBacked(buffer: ArrayBuffer): boolean;
  /** Every parameter and buffer of a TorchScript archive, read by LibTorch. */
  readTorchScript(path: string): Promise<{ name: string; dtype: string; shape: number[]; data: ArrayBuffer }[]>;
  /** Width and height from a JPEG's header; null for another format, or one libjpeg does not give as RGB. */
  jpegSize?(data: Uint8Array): [number, number] | null;
  /** Whether this build decodes JPEG training crops itself (libjpeg-turbo). */
  jpegAvailable?(): boolean;
  /** Image i's box `boxes[4i … 4i+3]` (x, y, w, h) resized to size², written into `out` at slot `slots[i]`; "" or why not, per image. */
  decodeJpegCrops?(
    images: Uint8Array[],
    boxes: Int32Array,
    out: Uint8Array,
    slots: Int32Array,
    size: number,
    threads: number,
  ): Promise<string[]>;
  /** The eval transform of decoded RGB images: uint8 `[n, size, size, 3]`. */
  resizeImages(args: {
    images: { data: Uint8Array; width: number; height: number }[];
    size: number;
    interpolation: 'bilinear' | 'bicubic';
  }): Promise<ArrayBuffer>;
  topKByDot(args: {
    queries: Float32Array;
    keys: Float32Array;
    queryCount: number;
    keyCount: number;
    dim: number;
    k: number;
    blockElements: number;
  }): Promise<ArrayBuffer>;
  classifyFeatures(args: {
    train: Float32Array;
    trainLabels: Int32Array;
    query: Float32Array;
    trainCount: number;
    queryCount: number;
    dim: number;
    numClasses: number;
    method: 'knn' | 'prototype' | 'linear';
    k: number;
    weightDecay: number;
    iterations: number;
  }): Promise<ArrayBuffer>;
}

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The addon that was loaded and why (printed by `rils info`). */
export interface AddonChoice {
  /** The loaded `.node` file. */
  file: string;
  /** `'cuda'` or `'cpu'` prebuild, `'source'` (build/Release), or `'override'` (RILS_ADDON). */
  variant: AddonCandidate['variant'];
  /** Candidates passed over or that failed to load, with the reason. */
  notes: string[];
}

function load(): { addon: NativeAddon; choice: AddonChoice } {
  const plan = planAddon(root, process.env, () => findCudaLibTorch(process.env));
  const notes = [...plan.notes];
  for (const c of plan.candidates) {
    try {
      return { addon: require(c.file) as NativeAddon, choice: { file: c.file, variant: c.variant, notes } };
    } catch (error) {
      notes.push(
        `${path.relative(root, c.file)} (${c.variant}) failed to load: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
      );
    }
  }
  const found = listPrebuilds(root);
  throw new Error(
    `rils: no usable native addon${found.length ? ` (prebuilds: ${found.join(', ')})` : ''}:\n  ${notes.join('\n  ')}\n` +
      'Build one with `npx rils build` (or `npm run build:native` in a checkout); it needs LibTorch: ' +
      'apt-get install libtorch-dev libopenblas0-openmp, or LIBTORCH=/path/to/libtorch.',
  );
}

const loaded = load();
/** The loaded addon. @internal */
export const native: NativeAddon = loaded.addon;
/** Which addon file was loaded, and why. @internal */
export const addonChoice: AddonChoice = loaded.choice;

// Exiting while a step runs would destroy LibTorch under it (a segfault): wait for it first. Only
// the main thread's exit ends the process; a worker thread's models may outlive it elsewhere.
if (isMainThread) process.once('exit', () => native.shutDown());
