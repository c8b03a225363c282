#!/usr/bin/env node
// npm install hook. A prebuilt or already-built addon is used as is; otherwise the addon is built
// from source with cmake-js (CMakeLists.txt finds LibTorch). In a git checkout of rils itself the
// build is left to `npm run build`, so `npm ci` does not compile twice.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

if (existsSync(path.join(root, '.git')) || process.env.RILS_SKIP_INSTALL_BUILD) process.exit(0);
try {
  // The loader's own choice (lib/addon.ts): a CUDA or CPU prebuild whose LibTorch is here, or build/Release.
  await import(path.join(root, 'dist', 'binding.js'));
  process.exit(0);
} catch (error) {
  console.log(`rils: no usable prebuilt addon, building from source (${String(error?.message ?? error).split('\n')[0]})`);
}
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
