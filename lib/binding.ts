/**
 * The only file that loads the native addon; it types the addon's surface.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Model config fields, in the PyTorch reference's snake_case. */
export type NativeConfig = Record<string, number>;
/** Training options, in the PyTorch reference's snake_case. */
export type NativeTrainOptions = Record<string, number | boolean>;

export interface NativeStats {
  loss: number;
  clipLoss: number;
  reconLoss: number;
  reconKl: number;
  clipAcc: number;
  gatedFraction: number;
  maskedPatches: number;
  gatedPatches: number;
  lr: number;
  logitScale: number;
  gradNorm: number;
  step: number;
  updated: boolean;
  nonFinite: boolean;
}

export interface NativeBatch {
  images: Float32Array | Uint8Array;
  tokens: Int32Array;
  batchSize: number;
  maskNoise?: Float32Array | undefined;
}

export interface NativeParameter {
  name: string;
  shape: number[];
  numel: number;
  trainable: boolean;
  weightDecay: boolean;
}

export interface NativeTensorEntry {
  name: string;
  shape: number[];
  data: ArrayBuffer;
}

export interface NativeModel {
  trainStep(batch: NativeBatch): Promise<NativeStats>;
  evaluateLoss(batch: NativeBatch): Promise<NativeStats>;
  getState(): Promise<NativeTensorEntry[]>;
  setState(entries: { name: string; data: Float32Array }[]): Promise<void>;
  parameters(): NativeParameter[];
  info(): { config: NativeConfig; train: NativeTrainOptions; device: string; step: number };
  dispose(): void;
}

export interface NativeAddon {
  createModel(options: {
    preset?: string | undefined;
    config: NativeConfig;
    train: NativeTrainOptions;
    seed: number;
    device: string;
  }): Promise<NativeModel>;
  presets(): Record<string, NativeConfig>;
  runtimeInfo(): {
    libtorchVersion: string;
    cudaAvailable: boolean;
    cudaDeviceCount: number;
    threads: number;
    parallelInfo: string;
  };
  setNumThreads(n: number): void;
}

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function load(): NativeAddon {
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  try {
    return nodeGypBuild(root) as NativeAddon;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `rils: the native addon could not be loaded (${why}). Build it with \`npm run build:native\` ` +
        '(needs LibTorch: apt-get install libtorch-dev libopenblas0-openmp, or LIBTORCH=/path/to/libtorch).',
    );
  }
}

/** The loaded addon. @internal */
export const native: NativeAddon = load();
