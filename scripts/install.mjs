#!/usr/bin/env node
// npm install hook. A prebuilt or already-built addon is used as is; otherwise the addon is built
// from source with cmake-js (CMakeLists.txt finds LibTorch), and the build's intermediates (object
// files, the ~500 MB precompiled header) are removed: only build/Release/rils.node stays. In a git
// checkout of rils itself the build is left to `npm run build`, so `npm ci` does not compile twice.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

if (existsSync(path.join(root, '.git')) || process.env.RILS_SKIP_INSTALL_BUILD) process.exit(0);
try {
  // The loader's own choice (lib/addon/loader.ts): a CUDA or CPU prebuild whose LibTorch is here, or build/Release.
  await import(path.join(root, 'dist', 'addon', 'binding.js'));
  process.exit(0);
} catch (error) {
  // The loader's message: a first line, then one line per candidate passed over and why.
  const [, ...reasons] = String(error?.message ?? error).split('\n');
  console.log('rils: no usable prebuilt addon, building from source (about 3 minutes on 2 cores). Why:');
  for (const line of reasons.filter((l) => l.startsWith('  '))) console.log(`rils: ${line.trim()}`);
}
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs')], {
  stdio: 'inherit',
  cwd: root,
});
if (r.status === 0) removeIntermediates(path.join(root, 'build'));
process.exit(r.status ?? 1);

/** Everything under build/ but Release/rils.node. */
function removeIntermediates(build) {
  for (const entry of readdirSync(build)) {
    if (entry !== 'Release') rmSync(path.join(build, entry), { recursive: true, force: true });
  }
  const release = path.join(build, 'Release');
  for (const entry of readdirSync(release)) {
    if (entry !== 'rils.node') rmSync(path.join(release, entry), { recursive: true, force: true });
  }
}
