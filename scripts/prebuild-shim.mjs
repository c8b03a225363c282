#!/usr/bin/env node
// prebuildify calls node-gyp (`rebuild --target=… --devdir=… --arch=… --release`); this stands in
// for it and builds with cmake-js instead (scripts/build-native.mjs → build/Release/rils.node),
// which is where prebuildify then collects the binary. Node-API builds do not depend on the target.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-native.mjs'), '--out', 'build'], {
  stdio: 'inherit',
  cwd: root,
});
process.exit(r.status ?? 1);
