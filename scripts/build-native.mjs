#!/usr/bin/env node
// Builds the addon with cmake-js (Release, into build/Release/rils.node). CMakeLists.txt finds
// LibTorch ($LIBTORCH, $Torch_DIR, $CMAKE_PREFIX_PATH, a pip torch, then the system).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const cmakeJs = path.join(path.dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const args = [
  cmakeJs,
  'build',
  '--release',
  '--parallel',
  String(Number(process.env.RILS_BUILD_JOBS ?? 2)),
  ...process.argv.slice(2),
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
