#!/usr/bin/env node
// Where LibTorch is: the one discovery that the CMake build (CMakeLists.txt), the node-gyp build
// (scripts/gyp-config.mjs) and the addon loader (lib/addon/loader.ts) share. Looked for, in order:
//   1. $LIBTORCH                  an unzipped libtorch from pytorch.org
//   2. $Torch_DIR                 the folder holding TorchConfig.cmake
//   3. $CMAKE_PREFIX_PATH         each prefix in turn
//   4. a pip torch                importable by $RILS_PYTHON or python3 (found without importing it)
//   5. the system                 Debian's libtorch-dev
// Usage: node scripts/libtorch.mjs [--cmake]   (--cmake: KEY=VALUE lines that CMakeLists.txt reads)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SYSTEM = {
  prefix: '/usr',
  cmakeDir: `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/cmake/Torch`,
};

function read(file) {
  try {
    return readFileSync(file, 'utf-8');
  } catch {
    return '';
  }
}

/** The pip torch's package folder, without importing torch (which takes seconds). */
function pipTorchDir(env) {
  const r = spawnSync(
    env.RILS_PYTHON ?? 'python3',
    ['-c', 'import importlib.util as u; s = u.find_spec("torch"); print(s.submodule_search_locations[0] if s else "")'],
    { encoding: 'utf-8', timeout: 10_000 },
  );
  return r.status === 0 ? r.stdout.trim() : '';
}

/** Candidate prefixes, in the order above, with where each came from. */
function candidates(env) {
  const out = [];
  // Named explicitly: used or refused, never passed over for another LibTorch.
  if (env.LIBTORCH) out.push({ prefix: env.LIBTORCH, from: `LIBTORCH=${env.LIBTORCH}`, explicit: true });
  if (env.Torch_DIR) {
    out.push({
      prefix: path.resolve(env.Torch_DIR, '../../..'),
      from: `Torch_DIR=${env.Torch_DIR}`,
      cmakeDir: env.Torch_DIR,
      explicit: true,
    });
  }
  for (const p of (env.CMAKE_PREFIX_PATH ?? '').split(':').filter(Boolean))
    out.push({ prefix: p, from: `CMAKE_PREFIX_PATH=${p}` });
  const pip = pipTorchDir(env);
  if (pip) out.push({ prefix: pip, from: `pip torch (${pip})` });
  out.push({ ...SYSTEM, from: 'system', system: true });
  return out;
}

/** The version ("2.5.1+cu124", "1.13.0") and CUDA version ("12.4" or null) of a LibTorch. */
function versions(prefix, cmakeDir, libDir) {
  const buildVersion = read(path.join(prefix, 'build-version')).trim(); // a libtorch zip
  const py = read(path.join(prefix, 'version.py')); // a pip torch
  const cmake = /PACKAGE_VERSION "([^"]+)"/.exec(read(path.join(cmakeDir, 'TorchConfigVersion.cmake')))?.[1] ?? '';
  const version = buildVersion || /__version__\s*=\s*'([^']+)'/.exec(py)?.[1] || cmake;
  let cuda = /\bcuda\s*(?::\s*[^=]+)?=\s*'([^']+)'/.exec(py)?.[1] ?? null;
  cuda ??= /\+cu(\d+?)(\d)$/.exec(version)?.slice(1, 3).join('.') ?? null;
  if (!existsSync(path.join(libDir, 'libtorch_cuda.so'))) cuda = null;
  else cuda ??= 'unknown';
  return { version, cuda };
}

const LIBRARIES = ['libtorch.so', 'libtorch_cpu.so', 'libtorch_cuda.so'];

/**
 * The first LibTorch found: {prefix, includeDirs, libDir, cmakeDir, from, system, version, cuda},
 * or undefined. A build (`forBuild`) needs a candidate's C++ API headers; the loader only its
 * libraries. One named by $LIBTORCH or $Torch_DIR without them is an error (an Error saying so),
 * never passed over for another.
 */
export function findLibTorch(env = process.env, { forBuild = true } = {}) {
  for (const c of candidates(env)) {
    const include = path.join(c.prefix, 'include');
    const libDir = c.system ? path.dirname(path.dirname(SYSTEM.cmakeDir)) : path.join(c.prefix, 'lib');
    const needed = forBuild
      ? [path.join(include, 'torch', 'csrc', 'api', 'include')]
      : LIBRARIES.map((l) => path.join(libDir, l));
    if (!needed.some((p) => existsSync(p))) {
      if (c.explicit) throw new Error(`rils: ${c.from} holds no LibTorch (no ${needed.join(' or ')})`);
      continue;
    }
    const cmakeDir = c.cmakeDir ?? path.join(c.prefix, 'share', 'cmake', 'Torch');
    return {
      prefix: c.prefix,
      includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
      libDir,
      cmakeDir,
      from: c.from,
      system: !!c.system,
      ...versions(c.prefix, cmakeDir, libDir),
    };
  }
  return undefined;
}

export const NOT_FOUND =
  'rils: LibTorch was not found. Make it findable in one of these ways, tried in this order:\n' +
  '  1. LIBTORCH=/path/to/libtorch            (an unzipped libtorch from pytorch.org)\n' +
  '  2. Torch_DIR=/path/to/share/cmake/Torch  (the folder holding TorchConfig.cmake)\n' +
  '  3. CMAKE_PREFIX_PATH=/path/to/prefix\n' +
  "  4. a pip torch importable by python3      (python3 -c 'import torch')\n" +
  '  5. the system: apt-get install libtorch-dev libopenblas0-openmp (Debian/Ubuntu)';

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let found;
  try {
    found = findLibTorch();
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
  if (!found) {
    console.error(NOT_FOUND);
    process.exit(1);
  }
  if (process.argv[2] === '--cmake') {
    // One KEY=VALUE a line; CMake reads them (a path may hold '=' only after the first one).
    console.log(`PREFIX=${found.system ? '' : found.prefix}\nCMAKE_DIR=${found.cmakeDir}\nFROM=${found.from}`);
  } else {
    console.log(JSON.stringify(found, null, 2));
  }
}
