#!/usr/bin/env node
// What binding.gyp (node-gyp) needs, found as CMakeLists.txt finds it: the native sources (the same
// glob), and LibTorch through $LIBTORCH, $Torch_DIR, $CMAKE_PREFIX_PATH, a pip torch, then the
// system (Debian's libtorch-dev).
// Usage: node scripts/gyp-config.mjs sources|include|libdir|libs|defines
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
if (process.argv[2] === 'sources') {
  for (const dir of ['native/model', 'native/train', 'native/napi']) {
    for (const f of readdirSync(path.join(root, dir)).sort()) if (f.endsWith('.cpp')) console.log(`${dir}/${f}`);
  }
  process.exit(0);
}

function pipTorchPrefix() {
  try {
    const out = execFileSync('python3', ['-c', 'import torch, os; print(os.path.dirname(torch.__file__))'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const dir = out.toString().trim();
    return existsSync(path.join(dir, 'include', 'torch')) ? dir : null;
  } catch {
    return null;
  }
}

function find() {
  const candidates = [];
  if (process.env.LIBTORCH) candidates.push(process.env.LIBTORCH);
  // Torch_DIR = <prefix>/share/cmake/Torch
  if (process.env.Torch_DIR) candidates.push(path.resolve(process.env.Torch_DIR, '../../..'));
  for (const p of (process.env.CMAKE_PREFIX_PATH ?? '').split(':').filter(Boolean)) candidates.push(p);
  const pip = pipTorchPrefix();
  if (pip) candidates.push(pip);
  for (const prefix of candidates) {
    if (existsSync(path.join(prefix, 'include', 'torch', 'csrc', 'api', 'include'))) {
      return { include: [path.join(prefix, 'include'), path.join(prefix, 'include/torch/csrc/api/include')], libdir: path.join(prefix, 'lib'), cmake: path.join(prefix, 'share/cmake/Torch/TorchConfig.cmake') };
    }
  }
  if (existsSync('/usr/include/torch/csrc/api/include')) {
    return { include: ['/usr/include', '/usr/include/torch/csrc/api/include'], libdir: '/usr/lib/x86_64-linux-gnu', cmake: '/usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake' };
  }
  console.error('rils: LibTorch was not found. Set LIBTORCH, Torch_DIR or CMAKE_PREFIX_PATH, install a pip torch, ' +
    'or apt-get install libtorch-dev libopenblas0-openmp.');
  process.exit(1);
}

const torch = find();
const what = process.argv[2];
if (what === 'include') console.log(torch.include.join(' '));
else if (what === 'libdir') console.log(torch.libdir);
else if (what === 'libs') {
  const libs = ['torch', 'torch_cpu', 'c10', 'torch_cuda', 'c10_cuda'].filter((l) => existsSync(path.join(torch.libdir, `lib${l}.so`)));
  console.log([`-L${torch.libdir}`, `-Wl,-rpath,${torch.libdir}`, ...libs.map((l) => `-l${l}`)].join(' '));
} else if (what === 'defines') {
  // pip wheels before 2.7 use the pre-C++11 libstdc++ ABI; the headers must be compiled to match.
  let abi = '1';
  try {
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readFileSync(torch.cmake, 'utf-8'));
    if (m) abi = m[1];
  } catch { /* no TorchConfig.cmake: assume the system default */ }
  console.log(`_GLIBCXX_USE_CXX11_ABI=${abi}`);
  // Training across processes (c10d + Gloo) when Gloo's headers are there (CMakeLists.txt alike).
  // The Gloo headers must be those of the LibTorch's own Gloo: Debian's for the system LibTorch.
  if (torch.include.some((d) => existsSync(path.join(d, 'gloo', 'config.h')))) {
    console.log('USE_C10D_GLOO');
    console.log('RILS_HAVE_GLOO');
  }
} else {
  console.error('usage: gyp-config.mjs sources|include|libdir|libs|defines');
  process.exit(2);
}
