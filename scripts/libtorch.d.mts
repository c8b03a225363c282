// Types of scripts/libtorch.mjs for lib/addon/loader.ts.
export interface LibTorch {
  prefix: string;
  includeDirs: string[];
  libDir: string;
  cmakeDir: string;
  /** Where it was found, e.g. "LIBTORCH=/opt/libtorch", "pip torch (…)", "system". */
  from: string;
  system: boolean;
  /** e.g. "1.13.0", "2.5.1+cu124". */
  version: string;
  /** The CUDA version of a CUDA LibTorch ("12.4"), else null. */
  cuda: string | null;
}
export function findLibTorch(env?: NodeJS.ProcessEnv, options?: { forBuild?: boolean }): LibTorch | undefined;
export const NOT_FOUND: string;
