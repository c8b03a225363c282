// What a user gets, tested as a user: `npm pack` (whose prepack makes the CPU prebuild), installed into
// an empty project with npm (no network beyond the registries), then used from that project only:
// imported from ESM and CommonJS; a CLIP checkpoint with CLIP's real 49,408-token vocabulary, written
// by the reference in each of its layouts, loaded and run zero-shot on image files; fine-tuned from
// the CLI; saved and reloaded in every layout; and a strict TypeScript consumer type-checked with the
// TypeScript this project pins and the current one. Nothing is read from the checkout: a file the
// library needs at run time that the tarball lacks fails here.
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import test from 'ava';

import { clipRef } from './helpers/clip-ref.js';
import { writeCaptionedColours, writeColourFolder } from './helpers/colours.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const exec = promisify(execFile);
// Without RILS_ADDON (scripts/asan.sh sets it): the installed package must find its own prebuild.
const env = { ...process.env, RILS_ADDON: '', ONNXRUNTIME_NODE_INSTALL: 'skip' };
const sh = (cmd: string, args: string[], cwd: string) =>
  exec(cmd, args, { cwd, timeout: 600_000, maxBuffer: 1 << 26, env });
const npm = (args: string[], cwd: string) => sh('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], cwd);
const work = mkdtempSync(path.join(os.tmpdir(), 'rils-pack-'));
const app = path.join(work, 'app');
const pkg = path.join(app, 'node_modules', 'rils');
let packed: string[] = [];

/** `node -e` of an ES module in the app (the package as users import it); its stdout. */
const node = async (file: string, code: string) => {
  writeFileSync(path.join(app, file), code);
  return (await sh(process.execPath, [file], app)).stdout;
};
/** CLIP tokenizer cases whose ids fit clip_micro's 16-token rows, with OpenAI's tokenizer's ids. */
const CASES = (
  JSON.parse(readFileSync(path.join(root, '..', 'shared', 'data', 'clip_tokenizer_cases.json'), 'utf-8')) as {
    cases: { text: string; bpe_ids: number[] }[];
  }
).cases
  .filter((c) => c.bpe_ids.length <= 14)
  .slice(0, 12);
const rils = async (...args: string[]) =>
  (await sh(process.execPath, [path.join(app, 'node_modules', '.bin', 'rils'), ...args], app)).stdout;

test.before(async () => {
  const { stdout } = await npm(['pack', '--pack-destination', work, '--json'], root);
  // prepack's build prints on stdout too: npm's JSON is the last top-level array.
  const json = stdout.slice(stdout.lastIndexOf('\n[\n') + 1);
  const { filename, files } = (JSON.parse(json) as { filename: string; files: { path: string }[] }[])[0]!;
  packed = files.map((f) => f.path);
  mkdirSync(app);
  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }),
  );
  await npm(['install', path.join(work, filename)], app);
  // CLIP's checkpoint layouts as PyTorch writes them, with CLIP's vocabulary; captioned and labelled images.
  await clipRef(
    'init',
    '--preset',
    'clip_micro',
    '--seed',
    '4',
    '--set',
    'vocab_size=49408',
    '--out',
    path.join(work, 'clip.safetensors'),
  );
  await clipRef(
    'convert',
    '--weights',
    path.join(work, 'clip.safetensors'),
    '--to',
    'hf',
    '--out',
    path.join(work, 'clip-hf'),
  );
  await clipRef(
    'convert',
    '--weights',
    path.join(work, 'clip.safetensors'),
    '--to',
    'jit',
    '--out',
    path.join(work, 'clip.pt'),
  );
  await writeCaptionedColours(path.join(work, 'train'), 8, 1);
  await writeColourFolder(path.join(work, 'held-out'), 2, 2);
});
test.after.always(() => rmSync(work, { recursive: true, force: true }));

test.serial(
  'the tarball holds what the library reads at run time, its licences and examples, and no test data',
  (t) => {
    for (const file of [
      'prebuilds/linux-x64/rils.node',
      'prebuilds/linux-x64/rils.node.json',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/require.cjs',
      'dist/bin.js',
      'assets/bpe_simple_vocab_16e6.txt.gz',
      'assets/CLIP-LICENSE',
      'LICENSE',
      'README.md',
      'scripts/libtorch.mjs',
      'scripts/install.mjs',
      'scripts/build-native.mjs',
      'CMakeLists.txt',
      'examples/clip-finetune.ts',
      'docs/index.html',
    ]) {
      t.true(packed.includes(file), file);
    }
    t.false(
      packed.some((p) => /^(test|bench|build|build-[^/]*|\.ci)\//.test(p)),
      'no tests, builds or CI files',
    );
    // Every file outside dist/ that dist/ names relative to itself (assets, scripts) ships.
    for (const file of packed.filter((p) => p.startsWith('dist/') && p.endsWith('.js'))) {
      const code = readFileSync(path.join(pkg, file), 'utf-8');
      for (const [, rel] of code.matchAll(/(?:new URL\(|from |import\()['"](\.\.?\/[^'"]+)['"]/g)) {
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), rel!));
        t.true(packed.includes(target) || existsSync(path.join(pkg, target)), `${file} reads ${target}`);
      }
    }
    const size = (dir: string): number =>
      readdirSync(dir, { withFileTypes: true }).reduce(
        (n, e) => n + (e.isDirectory() ? size(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).size),
        0,
      );
    t.true(size(pkg) < 100e6, `the installed package is ${(size(pkg) / 1e6).toFixed(1)} MB`);
    t.false(existsSync(path.join(pkg, 'build')), 'nothing was compiled at install');
  },
);

test.serial('imported from ESM and CommonJS, the CPU prebuild loads and trains', async (t) => {
  const esm = JSON.parse(
    await node(
      'esm.mjs',
      `
    import { Rils, runtimeInfo } from 'rils';
    const model = await Rils.create({ preset: 'micro', vocabSize: 300, contextLength: 16, seed: 0 });
    const B = 4, n = 3 * 32 * 32;
    const images = new Float32Array(B * n).map((_, i) => Math.sin(i));
    const tokens = new Int32Array(B * 16);
    for (let b = 0; b < B; b++) tokens.set([298, 5 + b, 299], b * 16);
    const s = await model.trainStep({ images, tokens, batchSize: B });
    console.log(JSON.stringify({ loss: s.loss, updated: s.updated, addon: runtimeInfo().addon.variant }));
    model.dispose();`,
    ),
  ) as { loss: number; updated: boolean; addon: string };
  t.true(Number.isFinite(esm.loss) && esm.updated);
  t.is(esm.addon, 'cpu', 'the installed package loads its CPU prebuild');
  t.is(
    (
      await node('cjs.cjs', "const { presetConfig } = require('rils'); console.log(presetConfig('micro').imageSize);")
    ).trim(),
    '32',
  );
  t.is(
    (
      await node('dyn.cjs', "import('rils').then(({ presetConfig }) => console.log(presetConfig('micro').imageSize));")
    ).trim(),
    '32',
  );
});

test.serial(
  "a CLIP checkpoint in every layout, CLIP's real vocabulary: the same zero-shot on image files, from the library and the CLI",
  async (t) => {
    const images = readdirSync(path.join(work, 'held-out', 'red')).map((f) => path.join(work, 'held-out', 'red', f));
    const out = await node(
      'zeroshot.mjs',
      `
    import { Rils } from 'rils';
    const result = {};
    for (const file of ${JSON.stringify(['clip.safetensors', 'clip-hf', 'clip.pt'].map((f) => path.join(work, f)))}) {
      const model = await Rils.fromPretrained(file);
      const classifier = await model.zeroShotClassifier(['red', 'green', 'blue'], { templates: 'clip80' });
      const { probabilities } = await classifier.classify(${JSON.stringify(images)});
      const ids = ${JSON.stringify(CASES.map((c) => c.text))}.map((text) => Array.from(model.tokenizer.encode(text)));
      result[file] = { vocab: model.tokenizer.vocabSize, ids, p: Array.from(probabilities) };
      model.dispose();
    }
    console.log(JSON.stringify(result));`,
    );
    const byLayout = Object.values(JSON.parse(out) as Record<string, { vocab: number; ids: number[][]; p: number[] }>);
    t.deepEqual(
      byLayout.map((r) => r.vocab),
      [49408, 49408, 49408],
    );
    const rows = CASES.map((c) => [49406, ...c.bpe_ids, 49407, ...Array<number>(14 - c.bpe_ids.length).fill(0)]);
    for (const r of byLayout)
      t.deepEqual(r.ids, rows, "OpenAI's tokenizer's ids (shared/data), from the bundled vocabulary");
    for (const r of byLayout.slice(1))
      t.true(
        r.p.every((p, i) => Math.abs(p - byLayout[0]!.p[i]!) < 2e-3),
        'the same probabilities',
      );
    const cli = await rils(
      'zeroshot',
      '--weights',
      path.join(work, 'clip-hf'),
      '--classes',
      'red,green,blue',
      '--templates',
      'a {} photo.',
      'a {} thing.',
      images[0]!,
    );
    t.regex(cli, new RegExp(`^${images[0]!.replaceAll('/', '\\/')}: (red|green|blue) \\d+\\.\\d%`, 'm'));
  },
);

test.serial(
  'fine-tuned from the CLI, saved and reloaded in every layout with no extra path, exported to ONNX',
  async (t) => {
    const tuned = path.join(work, 'tuned.safetensors');
    const trained = await rils(
      'train',
      '--init',
      path.join(work, 'clip.safetensors'),
      '--data',
      path.join(work, 'train'),
      '--steps',
      '20',
      '--batch',
      '8',
      '--lr',
      '1e-3',
      '--out',
      tuned,
    );
    t.regex(trained, /step 20\/20 loss/);
    for (const layout of ['openai', 'hf'] as const) {
      await rils(
        'convert',
        '--weights',
        tuned,
        '--layout',
        layout,
        '--out',
        path.join(work, `tuned-${layout}${layout === 'hf' ? '' : '.safetensors'}`),
      );
    }
    const out = await node(
      'reload.mjs',
      `
    import { Rils } from 'rils';
    const rows = [];
    for (const file of ${JSON.stringify([tuned, path.join(work, 'tuned-openai.safetensors'), path.join(work, 'tuned-hf')])}) {
      const model = await Rils.fromPretrained(file);
      const { embeddings } = await model.encodeTexts(['a photo of a red thing.', 'something blue.']);
      rows.push({ tokenizer: model.tokenizer?.vocabSize, e: Array.from(embeddings) });
      model.dispose();
    }
    console.log(JSON.stringify(rows));`,
    );
    const rows = JSON.parse(out) as { tokenizer: number; e: number[] }[];
    t.deepEqual(
      rows.map((r) => r.tokenizer),
      [49408, 49408, 49408],
    );
    for (const r of rows.slice(1))
      t.true(
        r.e.every((v, i) => Math.abs(v - rows[0]!.e[i]!) < 1e-5),
        'the same text embeddings',
      );
    // Shipped to where CLIP runs in Node and the browser: an ONNX folder from the installed package.
    await rils('export', '--weights', tuned, '--out', path.join(work, 'web'));
    for (const file of [
      'onnx/model.onnx',
      'onnx/vision_model.onnx',
      'onnx/text_model.onnx',
      'config.json',
      'tokenizer.json',
      'preprocessor_config.json',
    ]) {
      t.true(existsSync(path.join(work, 'web', file)), `export wrote ${file}`);
    }
    writeFileSync(path.join(work, 'held-out', 'notes.txt'), 'not an image');
    const embedded = await rils(
      'embed',
      '--weights',
      tuned,
      '--out',
      path.join(work, 'e.npy'),
      path.join(work, 'held-out'),
      ...['red', 'green'].map((c) => path.join(work, 'held-out', c, '0.png')),
    );
    t.regex(embedded, /skipped 1 file\(s\) that are not images/);
    t.regex(embedded, /e\.npy: 2×64 embeddings/);
  },
);

test.serial(
  'a strict TypeScript project and the shipped examples type-check against the package: TypeScript 5.9 and the current one, with and without its own @types/node',
  async (t) => {
    writeFileSync(
      path.join(app, 'consumer.ts'),
      `
    import { ClipTokenizer, FileCaptionSource, Rils, fit, readCaptionIndex } from 'rils';
    import type { ImageEncoding, TrainStats } from 'rils';
    export async function tune(checkpoint: string, dir: string): Promise<number> {
      await using model = await Rils.fromPretrained(checkpoint, { totalSteps: 10 });
      const { items } = await readCaptionIndex(dir);
      const tokenizer = model.tokenizer ?? (await ClipTokenizer.load());
      const source = new FileCaptionSource({ items, tokenizer, batchSize: 4, seed: 0, size: model.config.imageSize });
      const result = await fit(model, source, { steps: 10 });
      const encoded: ImageEncoding = await model.encodeImages([Buffer.from([]), 'x.png']);
      const stats: TrainStats | undefined = result.last;
      return encoded.embeddings.length + (stats?.loss ?? 0);
    }`,
    );
    // The examples the package ships, as a user copies them: they compile against the package too.
    mkdirSync(path.join(app, 'examples'));
    for (const file of readdirSync(path.join(pkg, 'examples')))
      writeFileSync(path.join(app, 'examples', file), readFileSync(path.join(pkg, 'examples', file)));
    for (const version of ['5.9', 'latest']) {
      const dir = path.join(work, `ts-${version}`);
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'package.json'), '{ "private": true }');
      await npm(['install', `typescript@${version}`], dir);
      const tsc = path.join(dir, 'node_modules', '.bin', 'tsc');
      rmSync(path.join(app, 'tsconfig.json'), { force: true });
      await sh(tsc, ['--init'], app); // the new project's own defaults (strict, nodenext; TS 7: types [])
      for (const skipLibCheck of ['true', 'false']) {
        const r = await sh(tsc, ['-p', '.', '--noEmit', '--skipLibCheck', skipLibCheck], app).catch(
          (e: { stdout: string }) => e,
        );
        t.is(r.stdout, '', `TypeScript ${version}, skipLibCheck ${skipLibCheck}`);
      }
    }
    await npm(['install', '-D', '@types/node@22'], app);
    const r = await sh(
      path.join(work, 'ts-latest', 'node_modules', '.bin', 'tsc'),
      ['-p', '.', '--noEmit', '--skipLibCheck', 'false'],
      app,
    ).catch((e: { stdout: string }) => e);
    t.is(r.stdout, '', "with the project's own @types/node 22");
  },
);
