#!/usr/bin/env node
// What binding.gyp (node-gyp) needs, found as CMakeLists.txt finds it: the native sources (the same
// folders), and the LibTorch that scripts/libtorch.mjs finds.
// Usage: node scripts/gyp-config.mjs sources|include|libdir|libs|defines
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { NOT_FOUND, findLibTorch } from './libtorch.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv[2] === 'sources') {
  for (const dir of [
    'native/model',
    'native/kernels',
    'native/kernels/cpu',
    'native/eval',
    'native/train',
    'native/data',
    'native/napi',
  ]) {
    for (const f of readdirSync(path.join(root, dir)).sort()) if (f.endsWith('.cpp')) console.log(`${dir}/${f}`);
  }
  process.exit(0);
}

function find() {
  try {
    const found = findLibTorch();
    if (found)
      return {
        include: found.includeDirs,
        libdir: found.libDir,
        cmake: path.join(found.cmakeDir, 'TorchConfig.cmake'),
      };
    console.error(NOT_FOUND);
  } catch (error) {
    console.error(error.message);
  }
  process.exit(1);
}

const torch = find();
const what = process.argv[2];
if (what === 'include') console.log(torch.include.join(' '));
else if (what === 'libdir') console.log(torch.libdir);
else if (what === 'libs') {
  const libs = ['torch', 'torch_cpu', 'c10', 'torch_cuda', 'c10_cuda'].filter((l) =>
    existsSync(path.join(torch.libdir, `lib${l}.so`)),
  );
  const jpeg = existsSync('/usr/include/jpeglib.h') ? ['-ljpeg'] : []; // JPEG training crops (CMakeLists.txt alike)
  console.log([`-L${torch.libdir}`, `-Wl,-rpath,${torch.libdir}`, ...libs.map((l) => `-l${l}`), ...jpeg].join(' '));
} else if (what === 'defines') {
  // pip wheels before 2.7 use the pre-C++11 libstdc++ ABI; the headers must be compiled to match.
  let abi = '1';
  try {
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readFileSync(torch.cmake, 'utf-8'));
    if (m) abi = m[1];
  } catch {
    /* no TorchConfig.cmake: assume the system default */
  }
  console.log(`_GLIBCXX_USE_CXX11_ABI=${abi}`);
  // Training across processes (c10d + Gloo) when Gloo's headers are there (CMakeLists.txt alike).
  // The Gloo headers must be those of the LibTorch's own Gloo: Debian's for the system LibTorch.
  if (existsSync('/usr/include/jpeglib.h')) console.log('RILS_HAVE_JPEG');
  if (torch.include.some((d) => existsSync(path.join(d, 'gloo', 'config.h')))) {
    console.log('USE_C10D_GLOO');
    console.log('RILS_HAVE_GLOO');
  }
} else {
  console.error('usage: gyp-config.mjs sources|include|libdir|libs|defines');
  process.exit(2);
}
