// The loader's choice among the CUDA prebuild, the CPU prebuild and the source build (lib/addon/loader.ts),
// on fake package roots: the policy without the binaries.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { findCudaLibTorch, planAddon } from '../lib/addon/loader.js';
import type { FoundLibTorch, PrebuildManifest } from '../lib/addon/loader.js';

const platform = `${process.platform}-${process.arch}`;

function fakeRoot(files: {
  cuda?: PrebuildManifest;
  cpu?: PrebuildManifest | 'no-manifest';
  source?: boolean;
}): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'rils-addon-'));
  const put = (dir: string, manifest?: PrebuildManifest) => {
    mkdirSync(path.join(root, dir), { recursive: true });
    writeFileSync(path.join(root, dir, 'rils.node'), 'not a real addon');
    if (manifest) writeFileSync(path.join(root, dir, 'rils.node.json'), JSON.stringify(manifest));
  };
  if (files.cuda) put(`prebuilds/${platform}-cuda`, files.cuda);
  if (files.cpu) put(`prebuilds/${platform}`, files.cpu === 'no-manifest' ? undefined : files.cpu);
  if (files.source) {
    mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
    writeFileSync(path.join(root, 'build', 'Release', 'rils.node'), 'not a real addon');
  }
  return root;
}

const cuda124: PrebuildManifest = { variant: 'cuda', libtorch: '2.5.1+cu124', cuda: '12.4', napi: 8, platform };
const cpu113: PrebuildManifest = { variant: 'cpu', libtorch: '1.13.0', cuda: null, napi: 8, platform };
const torch = (version: string, cuda: string | null): FoundLibTorch => ({
  libDir: '/opt/torch/lib',
  version,
  cuda,
  from: 'LIBTORCH=/opt/torch',
});
const variants = (root: string, env: NodeJS.ProcessEnv, found?: FoundLibTorch) => {
  const plan = planAddon(root, env, () => found);
  return { order: plan.candidates.map((c) => c.variant), notes: plan.notes.join('\n') };
};

test('CUDA prebuild first when a matching CUDA LibTorch is on the loader path, then CPU, then source', (t) => {
  const root = fakeRoot({ cuda: cuda124, cpu: cpu113, source: true });
  const onPath = { LD_LIBRARY_PATH: '/opt/torch/lib' };
  const hasSystemTorch = variants(root, {}).order.includes('cpu'); // this machine: Debian's LibTorch 1.13
  t.deepEqual(variants(root, onPath, torch('2.5.1+cu124', '12.4')).order, [
    'cuda',
    ...(hasSystemTorch ? ['cpu'] : []),
    'source',
  ]);
  rmSync(root, { recursive: true });
});

test('the CUDA prebuild is passed over, saying why', (t) => {
  const root = fakeRoot({ cuda: cuda124, source: true });
  t.regex(variants(root, {}, undefined).notes, /no CUDA LibTorch found/);
  t.regex(
    variants(root, { LD_LIBRARY_PATH: '/opt/torch/lib' }, torch('2.3.0+cu121', '12.1')).notes,
    /is LibTorch 2\.3\.0\+cu121 with CUDA 12\.1/,
  );
  t.regex(variants(root, { LD_LIBRARY_PATH: '/opt/torch/lib' }, torch('2.5.1+cu118', '11.8')).notes, /with CUDA 11\.8/);
  const off = variants(root, {}, torch('2.5.1+cu124', '12.4'));
  t.regex(off.notes, /not on LD_LIBRARY_PATH \(export LD_LIBRARY_PATH=\/opt\/torch\/lib/);
  t.deepEqual(off.order, ['source']);
  rmSync(root, { recursive: true });
});

test('a CPU prebuild needs its manifest and its LibTorch', (t) => {
  const foreign = fakeRoot({ cpu: { ...cpu113, libtorch: '9.9.0' }, source: true });
  const r = variants(foreign, {});
  t.deepEqual(r.order, ['source']);
  t.regex(r.notes, /libtorch_cpu\.so\.9\.9 is not installed/);
  // Every library the prebuild links is checked (its manifest lists them), each with how to get it.
  const jpeg = fakeRoot({ cpu: { ...cpu113, needs: ['libc.so.6', 'libjpeg.so.99'] }, source: true });
  const j = variants(jpeg, {});
  t.deepEqual(j.order, ['source']);
  t.regex(j.notes, /CPU prebuild \(LibTorch 1\.13\.0\) skipped: libjpeg\.so\.99 is not installed$/m);
  const torchMissing = variants(fakeRoot({ cpu: { ...cpu113, needs: ['libtorch_cpu.so.7.7'] } }), {});
  t.regex(
    torchMissing.notes,
    /libtorch_cpu\.so\.7\.7 is not installed \(Debian\/Ubuntu: apt-get install libtorch-dev libopenblas0-openmp\)/,
  );
  rmSync(jpeg, { recursive: true });
  const bare = fakeRoot({ cpu: 'no-manifest' });
  const b = variants(bare, {});
  t.deepEqual(b.order, []);
  t.regex(b.notes, /has no manifest/);
  t.regex(b.notes, /no source build/);
  const override = variants(bare, { RILS_ADDON: '/x/rils.node' });
  t.deepEqual(override.order, ['override']);
  rmSync(foreign, { recursive: true });
  rmSync(bare, { recursive: true });
});

test('a libtorch zip or a pip torch tells its version and CUDA', (t) => {
  const zip = mkdtempSync(path.join(os.tmpdir(), 'rils-libtorch-'));
  mkdirSync(path.join(zip, 'lib'));
  writeFileSync(path.join(zip, 'lib', 'libtorch_cuda.so'), '');
  writeFileSync(path.join(zip, 'build-version'), '2.5.1+cu124\n');
  t.like(findCudaLibTorch({ LIBTORCH: zip }), { version: '2.5.1+cu124', cuda: '12.4', libDir: path.join(zip, 'lib') });
  rmSync(path.join(zip, 'build-version'));
  writeFileSync(path.join(zip, 'version.py'), "__version__ = '2.11.0+cu128'\ncuda: Optional[str] = '12.8'\n");
  t.like(findCudaLibTorch({ LIBTORCH: zip }), { version: '2.11.0+cu128', cuda: '12.8' });
  rmSync(path.join(zip, 'lib', 'libtorch_cuda.so'));
  t.is(findCudaLibTorch({ LIBTORCH: zip }), undefined, 'a CPU-only LibTorch is not a CUDA one');
  rmSync(zip, { recursive: true });
});
