#!/usr/bin/env node
// Makes the prebuilt addon for this platform with prebuildify (through scripts/prebuild-shim.mjs,
// which builds with cmake-js) and writes its manifest: what LibTorch (and CUDA) it was built
// against, which lib/addon/loader.ts checks before loading it.
//   CPU  (Debian's libtorch-dev):               node scripts/prebuild.mjs → prebuilds/linux-x64/
//   CUDA (LIBTORCH=… or a CUDA pip torch, GPU): node scripts/prebuild.mjs → prebuilds/linux-x64-cuda/
// `npm pack` runs it (prepack) so that the tarball carries the CPU prebuild, and `--clean` after it
// (postpack) removes that prebuild again: in a checkout, the loader must not prefer a stale prebuild
// to the build/Release that `npm run build` keeps current.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const platform = `${process.platform}-${process.arch}`;
if (process.argv.includes('--clean')) {
  rmSync(path.join(root, 'prebuilds', platform), { recursive: true, force: true });
  try {
    rmdirSync(path.join(root, 'prebuilds')); // when nothing else (a CUDA prebuild) is left in it
  } catch {
    /* not empty, or gone */
  }
  process.exit(0);
}
const prebuildify = path.join(path.dirname(require.resolve('prebuildify/package.json')), 'bin.js');
const r = spawnSync(
  process.execPath,
  [prebuildify, '--napi', '--strip', '--node-gyp', path.join(root, 'scripts', 'prebuild-shim.mjs')],
  { stdio: 'inherit', cwd: root },
);
if (r.status !== 0) process.exit(r.status ?? 1);

let file = path.join(root, 'prebuilds', platform, 'rils.node');
// prebuildify moved the build out of build/Release: leave the checkout's own build in place.
mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
copyFileSync(file, path.join(root, 'build', 'Release', 'rils.node'));
// What it links and reports: a CUDA build needs libtorch_cuda; the version is LibTorch's own.
const needed = execFileSync('readelf', ['-d', file], { encoding: 'utf-8' });
const cuda = /libtorch_cuda\.so/.test(needed);
const info = JSON.parse(
  execFileSync(
    process.execPath,
    ['-e', `const a = require(${JSON.stringify(file)}); console.log(JSON.stringify(a.runtimeInfo()))`],
    { encoding: 'utf-8' },
  ),
);
let cudaVersion = null;
if (cuda) {
  const { findCudaLibTorch } = await import(path.join(root, 'dist', 'addon', 'loader.js'));
  cudaVersion = findCudaLibTorch(process.env)?.cuda ?? null;
  const dir = path.join(root, 'prebuilds', `${platform}-cuda`);
  mkdirSync(dir, { recursive: true });
  renameSync(file, path.join(dir, 'rils.node'));
  file = path.join(dir, 'rils.node');
}
// The shared libraries it links (readelf's NEEDED): the loader checks them before trying it.
const needs = [...needed.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
const manifest = {
  variant: cuda ? 'cuda' : 'cpu',
  libtorch: info.libtorchVersion,
  cuda: cudaVersion,
  napi: 8,
  platform,
  needs,
  built: new Date().toISOString(),
};
writeFileSync(`${file}.json`, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(
  `prebuild: ${path.relative(root, file)} (${manifest.variant}, LibTorch ${manifest.libtorch}${cuda ? `, CUDA ${cudaVersion}` : ''})`,
);
