/**
 * `rils info`: which addon was loaded and why, LibTorch, CUDA, BLAS and threads.
 * @internal
 * @module
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { runtimeInfo } from '../index.js';
import { parseCommand } from './args.js';
import type { Command } from './args.js';

/** The BLAS and LAPACK libraries mapped into this process. */
function blasInfo(): string {
  try {
    const maps = readFileSync('/proc/self/maps', 'utf-8');
    const libs = [
      ...new Set(
        maps
          .split('\n')
          .map((l) => l.split(/\s+/).pop() ?? '')
          .filter((l) => /blas|lapack/.test(l)),
      ),
    ];
    return libs.length ? libs.join(', ') : 'none mapped';
  } catch {
    return 'unknown';
  }
}

async function info(argv: string[]): Promise<void> {
  parseCommand(argv, infoCommand);
  const r = runtimeInfo();
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
  console.log(`rils ${pkg.version}`);
  console.log(
    `LibTorch ${r.libtorchVersion}; CUDA ${r.cudaAvailable ? `yes (${r.cudaDeviceCount} device(s))` : 'no'}; threads ${r.threads}`,
  );
  console.log(`BLAS: ${blasInfo()}`);
  console.log(
    `addon: ${r.addon.variant} (${r.addon.file}); training across processes: ${r.distributedAvailable ? 'yes (c10d/Gloo)' : 'no (built without Gloo)'}`,
  );
  for (const note of r.addon.notes) console.log(`  ${note}`);
  console.log(r.parallelInfo.trim());
}

export const infoCommand: Command<Record<string, never>> = {
  name: 'info',
  summary: 'Prints which addon was loaded and why, LibTorch, CUDA, BLAS and threads.',
  synopsis: '',
  options: {},
  run: info,
};
