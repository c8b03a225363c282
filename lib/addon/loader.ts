/**
 * Which compiled addon to load: the CUDA prebuild when a matching CUDA LibTorch is there, else the
 * CPU prebuild (node-gyp-build's pick) when the system has its LibTorch, else the source build in
 * build/Release. Each prebuild carries a manifest (`<file>.json`, written by scripts/prebuild.mjs)
 * saying what it was built against; `rils info` prints the choice and the reasons.
 * @internal
 * @module
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { findLibTorch } from '../../scripts/libtorch.mjs';

/** What scripts/prebuild.mjs writes beside each prebuild. */
export interface PrebuildManifest {
  variant: 'cpu' | 'cuda';
  /** LibTorch version built against, e.g. "1.13.1" or "2.5.1+cu124". */
  libtorch: string;
  /** CUDA version of that LibTorch, or null. */
  cuda: string | null;
  napi: number;
  platform: string;
  /** The shared libraries it links (sonames), checked before it is loaded. Older manifests lack it. */
  needs?: string[];
}

/** One addon the loader may try, in order. */
export interface AddonCandidate {
  file: string;
  variant: 'override' | 'cpu' | 'cuda' | 'source';
}

/** The loader's decision: candidates to try in order, and why others were passed over. */
export interface AddonPlan {
  candidates: AddonCandidate[];
  notes: string[];
}

/** A LibTorch found on this machine. */
export interface FoundLibTorch {
  libDir: string;
  version: string;
  cuda: string | null;
  from: string;
}

const majorMinor = (v: string) => /^(\d+)\.(\d+)/.exec(v)?.slice(1, 3).join('.') ?? v;
const major = (v: string | null) => (v ? v.split('.')[0] : null);

function readManifest(file: string): PrebuildManifest | undefined {
  try {
    return JSON.parse(readFileSync(`${file}.json`, 'utf-8')) as PrebuildManifest;
  } catch {
    return undefined;
  }
}

/** A CUDA LibTorch where scripts/libtorch.mjs (the builds' own discovery) finds one. */
export function findCudaLibTorch(env: NodeJS.ProcessEnv): FoundLibTorch | undefined {
  let found;
  try {
    found = findLibTorch(env, { forBuild: false });
  } catch {
    return undefined; // an explicitly named LibTorch that is not one: no CUDA prebuild either
  }
  return found?.cuda ? { libDir: found.libDir, version: found.version, cuda: found.cuda, from: found.from } : undefined;
}

/** Whether a shared library `name` (e.g. "libtorch_cpu.so.1.13") is where the dynamic loader looks. */
export function systemHasLibrary(name: string, env: NodeJS.ProcessEnv): boolean {
  const triple = `${process.arch === 'x64' ? 'x86_64' : 'aarch64'}-linux-gnu`;
  const dirs = [
    ...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    `/usr/lib/${triple}`,
    `/lib/${triple}`,
    '/usr/lib',
    '/usr/local/lib',
    '/lib',
    '/lib64',
  ];
  return dirs.some((d) => existsSync(path.join(d, name)));
}

/** The Debian/Ubuntu package of the libraries a CPU prebuild links, for the note that says one is missing. */
const PACKAGE_OF: readonly [RegExp, string][] = [
  [/^lib(torch|torch_cpu|c10)\.so/, 'libtorch-dev libopenblas0-openmp'],
  [/^libjpeg\.so\.62$/, 'libjpeg62-turbo'],
  [/^libgomp/, 'libgomp1'],
];

/** The first library a CPU prebuild links that this system lacks, with how to get it; undefined when none is missing. */
function missingLibrary(manifest: PrebuildManifest, env: NodeJS.ProcessEnv): string | undefined {
  const needs = manifest.needs ?? [`libtorch_cpu.so.${majorMinor(manifest.libtorch)}`];
  const missing = needs.find((soname) => !systemHasLibrary(soname, env));
  if (missing === undefined) return undefined;
  const pkg = PACKAGE_OF.find(([pattern]) => pattern.test(missing))?.[1];
  return `${missing} is not installed${pkg ? ` (Debian/Ubuntu: apt-get install ${pkg})` : ''}`;
}

/**
 * The addons to try, in order, with notes on the ones passed over. Pure apart from file-system
 * probes, so that the policy is testable with a fake package root.
 */
export function planAddon(
  root: string,
  env: NodeJS.ProcessEnv,
  cudaLibTorch: () => FoundLibTorch | undefined,
): AddonPlan {
  const notes: string[] = [];
  const candidates: AddonCandidate[] = [];
  if (env.RILS_ADDON)
    return { candidates: [{ file: path.resolve(env.RILS_ADDON), variant: 'override' }], notes: ['RILS_ADDON is set'] };
  const platform = `${process.platform}-${process.arch}`;

  const cudaFile = path.join(root, 'prebuilds', `${platform}-cuda`, 'rils.node');
  const cudaManifest = existsSync(cudaFile) ? readManifest(cudaFile) : undefined;
  if (cudaManifest) {
    const found = cudaLibTorch();
    const wanted = `LibTorch ${cudaManifest.libtorch} with CUDA ${cudaManifest.cuda}`;
    if (!found)
      notes.push(`CUDA prebuild (${wanted}) skipped: no CUDA LibTorch found (set LIBTORCH, or pip install torch)`);
    else if (
      majorMinor(found.version) !== majorMinor(cudaManifest.libtorch) ||
      major(found.cuda) !== major(cudaManifest.cuda)
    ) {
      notes.push(
        `CUDA prebuild (${wanted}) skipped: ${found.from} is LibTorch ${found.version} with CUDA ${found.cuda ?? 'none'}`,
      );
    } else if (!(env.LD_LIBRARY_PATH ?? '').split(':').includes(found.libDir)) {
      notes.push(
        `CUDA prebuild (${wanted}) skipped: it links to ${found.libDir} dynamically, which is not on LD_LIBRARY_PATH ` +
          `(export LD_LIBRARY_PATH=${found.libDir} to use it)`,
      );
    } else {
      candidates.push({ file: cudaFile, variant: 'cuda' });
    }
  }

  const picked = nodeGypBuildPrebuild(root);
  const source = path.join(root, 'build', 'Release', 'rils.node');
  if (picked) {
    const manifest = readManifest(picked);
    const missing = manifest?.variant === 'cpu' ? missingLibrary(manifest, env) : undefined;
    if (!manifest) notes.push(`prebuild ${path.relative(root, picked)} skipped: it has no manifest`);
    else if (missing) notes.push(`CPU prebuild (LibTorch ${manifest.libtorch}) skipped: ${missing}`);
    else candidates.push({ file: picked, variant: manifest.variant });
  }
  if (existsSync(source)) candidates.push({ file: source, variant: 'source' });
  else notes.push('no source build in build/Release (npx rils build, or npm run build:native)');
  return { candidates, notes };
}

interface Tags {
  file: string;
}
interface NodeGypBuild {
  parseTuple(name: string): unknown;
  matchTuple(platform: string, arch: string): (t: unknown) => boolean;
  compareTuples(a: unknown, b: unknown): number;
  parseTags(file: string): Tags | undefined;
  matchTags(runtime: string, abi: string): (t: Tags | undefined) => boolean;
  compareTags(runtime: string): (a: Tags, b: Tags) => number;
}

/**
 * node-gyp-build's pick among prebuilds/<platform>-<arch>/ (its own tag matching), leaving out
 * build/Release, which node-gyp-build would prefer: here a matching prebuild comes first.
 */
function nodeGypBuildPrebuild(root: string): string | undefined {
  const ngb = createRequire(import.meta.url)('node-gyp-build') as NodeGypBuild;
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  const tuple = list(path.join(root, 'prebuilds'))
    .map(ngb.parseTuple)
    .filter(ngb.matchTuple(process.platform, process.arch))
    .sort(ngb.compareTuples)[0] as { name: string } | undefined;
  if (!tuple) return undefined;
  const dir = path.join(root, 'prebuilds', tuple.name);
  const tagged = list(dir).map(ngb.parseTags).filter(ngb.matchTags('node', process.versions.modules)) as Tags[];
  const winner = tagged.sort(ngb.compareTags('node'))[0];
  return winner && path.join(dir, winner.file);
}

/** The `.node` files under the package's prebuilds/, for error messages. */
export function listPrebuilds(root: string): string[] {
  try {
    return readdirSync(path.join(root, 'prebuilds'), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.node'));
  } catch {
    return [];
  }
}
