#!/usr/bin/env node
/**
 * The `rils` executable. `rils build` compiles the addon from source and so must run without one;
 * every other command loads the addon through the CLI module.
 * @internal
 * @module
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === 'build') {
  // cmake-js against the LibTorch found through LIBTORCH, Torch_DIR, CMAKE_PREFIX_PATH, a pip torch
  // or the system (CPU or CUDA, whichever that LibTorch is); extra arguments go to cmake-js.
  const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'scripts', 'build-native.mjs');
  const r = spawnSync(process.execPath, [script, ...process.argv.slice(3)], {
    stdio: 'inherit',
    cwd: path.dirname(path.dirname(script)),
  });
  process.exit(r.status ?? 1);
} else {
  await import('./cli/index.js');
}
