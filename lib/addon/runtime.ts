/**
 * What the loaded addon was built with and can use, and LibTorch's threads.
 * @module
 */
import { availableParallelism } from 'node:os';

import { fromNative } from '../errors.js';
import { checkInteger, invalid } from '../validate.js';
import { addonChoice, native } from './binding.js';
import type { AddonChoice } from './binding.js';

/** What the loaded addon was built with and can use. */
export interface RuntimeInfo {
  /** LibTorch version the addon was compiled against. */
  libtorchVersion: string;
  /** Whether this build can use a CUDA device. */
  cudaAvailable: boolean;
  /** Visible CUDA devices. */
  cudaDeviceCount: number;
  /** Intra-op threads LibTorch uses. */
  threads: number;
  /** LibTorch's own report (OpenMP, MKL-DNN, thread settings). */
  parallelInfo: string;
  /** Whether this build can train across processes (c10d with Gloo). */
  distributedAvailable: boolean;
  /** Native models not yet freed (by dispose(), or by the GC once unreachable). */
  liveModels: number;
  /** Output arrays still holding native tensor memory (freed when the GC collects them). */
  liveOutputs: number;
  /**
   * Bytes of freed CPU tensor memory the addon keeps for reuse: blocks of 1 MiB or more, handed out
   * again for tensors of their size or up to a fifth smaller (each step allocates the same ones),
   * instead of being unmapped and page-faulted in afresh. Capped at an eighth of the memory
   * (physical, or a container's cgroup limit); a model's `dispose()` returns them all to the system.
   * `RILS_CPU_ALLOCATOR=libtorch` in the environment turns the cache off.
   */
  cachedCpuBytes: number;
  /**
   * Whether `precision: 'bf16'` can run on the CPU: it needs bf16 units (the CPU flags
   * `avx512_bf16` or `amx_bf16`) and an addon built against LibTorch >= 2; `reason` says what is
   * missing ('' when available).
   */
  cpuBf16: {
    /** `precision: 'bf16'` can run on the CPU. */
    available: boolean;
    /** Why it cannot ('' when it can). */
    reason: string;
    /** The CPU has AVX512-BF16 (bf16 dot products). */
    avx512Bf16: boolean;
    /** The CPU has AMX-BF16 (bf16 tile matrix multiplies). */
    amxBf16: boolean;
  };
  /** Which GEMMs the CPU's linear layers and attention end in, in fp32 and bf16, with this addon. */
  cpuGemms: string;
  /** Whether this addon decodes JPEG training crops itself (built with libjpeg-turbo); else sharp does, slower. */
  jpegCrops: boolean;
  /** Which compiled addon was loaded (CUDA or CPU prebuild, or the source build) and why. */
  addon: AddonChoice;
}

/** LibTorch version, CUDA availability and threading. */
export function runtimeInfo(): RuntimeInfo {
  return { ...native.runtimeInfo(), jpegCrops: native.jpegAvailable?.() ?? false, addon: addonChoice };
}

/**
 * Sets LibTorch's intra-op thread count for every model in the process, at most 4 × the cores
 * (OpenMP's busy-waiting teams only get slower beyond). Default: every core.
 */
export function setNumThreads(threads: number): void {
  const cores = availableParallelism();
  checkInteger(threads, 'threads', 1);
  if (threads > 4 * cores)
    throw invalid(`an integer in [1, ${4 * cores}] (4 × the ${cores} cores)`, 'threads', threads);
  try {
    native.setNumThreads(threads);
  } catch (error) {
    throw fromNative(error);
  }
}
