// What a user gets: `npm pack` (with the CPU prebuild made by scripts/prebuild.mjs), installed into
// an empty project with npm (from its cache where it can: npm ci caches tarballs but not the registry
// metadata that installing a .tgz needs), then imported from ESM and from CommonJS, and trained.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import test from 'ava';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const exec = promisify(execFile);
// Without RILS_ADDON (scripts/asan.sh sets it): the installed package must find its own prebuild.
const sh = (cmd: string, args: string[], cwd: string) =>
  exec(cmd, args, { cwd, timeout: 600_000, maxBuffer: 1 << 26, env: { ...process.env, RILS_ADDON: '' } });
const source = path.join(root, 'build', 'Release', 'rils.node');
const prebuilds = path.join(root, 'prebuilds');

// prebuildify moves build/Release/rils.node into prebuilds/; put the tree back as it was.
test.after.always(() => {
  const made = path.join(prebuilds, `${process.platform}-${process.arch}`, 'rils.node');
  if (!existsSync(source) && existsSync(made)) copyFileSync(made, source);
  rmSync(prebuilds, { recursive: true, force: true });
});

test('npm pack → install in an empty project → import (ESM and CJS) → trainStep', async (t) => {
  t.false(existsSync(prebuilds), 'no prebuilds/ in the tree before the test');
  const made = await sh(process.execPath, [path.join(root, 'scripts', 'prebuild.mjs')], root);
  t.regex(made.stdout, /prebuild: prebuilds\/linux-x64\/rils\.node \(cpu, LibTorch 1\.13/);
  const work = mkdtempSync(path.join(os.tmpdir(), 'rils-pack-'));
  const packed = await sh('npm', ['pack', '--pack-destination', work, '--json'], root);
  const { filename, files } = (JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[])[0]!;
  const paths = files.map((f) => f.path);
  t.true(paths.includes('prebuilds/linux-x64/rils.node') && paths.includes('prebuilds/linux-x64/rils.node.json'));
  t.true(paths.includes('dist/index.d.ts'), 'type declarations ship');
  t.false(paths.some((p) => p.startsWith('test/') || p.startsWith('build/')));

  const app = path.join(work, 'app');
  await sh('mkdir', ['-p', app], work);
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, filename)], app);
  t.deepEqual(readdirSync(path.join(app, 'node_modules', 'rils')).filter((f) => f === 'build'), [], 'nothing was compiled');

  writeFileSync(path.join(app, 'esm.mjs'), `
    import { Rils, runtimeInfo } from 'rils';
    const model = await Rils.create({ preset: 'micro', vocabSize: 300, contextLength: 16, seed: 0 });
    const B = 4, n = 3 * 32 * 32;
    const images = new Float32Array(B * n).map((_, i) => Math.sin(i));
    const tokens = new Int32Array(B * 16);
    for (let b = 0; b < B; b++) tokens.set([298, 5 + b, 299], b * 16);
    const s = await model.trainStep({ images, tokens, batchSize: B });
    console.log(JSON.stringify({ loss: s.loss, updated: s.updated, addon: runtimeInfo().addon.variant }));
    model.dispose();`);
  const esm = JSON.parse((await sh(process.execPath, ['esm.mjs'], app)).stdout) as { loss: number; updated: boolean; addon: string };
  t.true(Number.isFinite(esm.loss) && esm.updated);
  t.is(esm.addon, 'cpu', 'the installed package loads its CPU prebuild');

  // CommonJS consumers use import() (the package is ESM; see the README).
  writeFileSync(path.join(app, 'cjs.cjs'), `
    import('rils').then(async ({ presetConfig }) => console.log(presetConfig('micro').imageSize));`);
  t.is((await sh(process.execPath, ['cjs.cjs'], app)).stdout.trim(), '32');
  rmSync(work, { recursive: true, force: true });
});
