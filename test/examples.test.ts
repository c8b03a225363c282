// Every example in examples/ runs (smoke test, tiny settings). mnist-demo.ts is the main job,
// run in full by scripts/demo.sh; here a few steps check it runs through the general evaluation.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import test from 'ava';
import sharp from 'sharp';

import { parseSafetensors } from '../lib/index.js';

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples');
const run = (cwd: string, name: string, ...args: string[]) =>
  // tsx by URL: the examples run in a temp folder, where 'tsx' would not resolve.
  promisify(execFile)(
    process.execPath,
    [`--import=${import.meta.resolve('tsx')}`, path.join(examples, name), ...args],
    { cwd, timeout: 240_000 },
  );

test('train-steps, train-folder → embed-images, zero-shot, patch-maps, evaluate', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-examples-'));
  const steps = await run(dir, 'train-steps.ts');
  t.regex(steps.stdout, /step 10: loss [\d.]+/);
  t.true(existsSync(path.join(dir, 'micro.safetensors')));

  const data = path.join(dir, 'data');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(data);
  const colours = { red: { r: 230, g: 20, b: 20 }, blue: { r: 20, g: 20, b: 230 } };
  const files: string[] = [];
  for (const [name, background] of Object.entries(colours)) {
    for (let k = 0; k < 6; k++) {
      const file = path.join(data, `${name}${k}.png`);
      await sharp({ create: { width: 40, height: 40, channels: 3, background } })
        .png()
        .toFile(file);
      writeFileSync(file.replace(/\.png$/, '.txt'), `a ${name} square`);
      files.push(file);
    }
  }
  const weights = path.join(dir, 'folder.safetensors');
  const trained = await run(dir, 'train-folder.ts', data, '6', weights);
  t.regex(trained.stdout, /6 steps; weights: /);

  const embedded = path.join(dir, 'emb.safetensors');
  await run(dir, 'embed-images.ts', weights, embedded, files[0]!, files[7]!);
  const e = parseSafetensors(readFileSync(embedded));
  t.deepEqual(e.tensors.get('embeddings')!.shape, [2, 128]);
  t.deepEqual(e.tensors.get('patch_tokens')!.shape, [2, 64, 128]);

  const zs = await run(dir, 'zero-shot.ts', weights, 'red,blue', files[0]!);
  t.regex(zs.stdout, /red0\.png: (red|blue) [\d.]+%, (red|blue) [\d.]+%/);

  const maps = await run(dir, 'patch-maps.ts', weights, files[0]!, 'a red square', 'a blue square');
  t.regex(maps.stdout, /"a red square": mean patch probability [\d.]+% → patch-map-0\.png/);
  const png = await sharp(path.join(dir, 'patch-map-1.png')).metadata();
  t.is(png.format, 'png');

  const classes = path.join(dir, 'classes');
  for (const name of Object.keys(colours)) mkdirSync(path.join(classes, name), { recursive: true });
  files.forEach((file, i) => copyFileSync(file, path.join(classes, i < 6 ? 'red' : 'blue', path.basename(file))));
  const evaluated = await run(dir, 'evaluate.ts', weights, classes, data, 'report.html');
  t.regex(
    evaluated.stdout,
    /zero-shot top-1 [\d.]+%, k-NN [\d.]+%, 1-shot [\d.]+%, linear probe [\d.]+%\n {2}blue: zero-shot/,
  );
  t.regex(evaluated.stdout, /retrieval over 12 images: image→text R@1 [\d.]+%/);
  t.true(existsSync(path.join(dir, 'report.html')));
  rmSync(dir, { recursive: true, force: true });
});

test('mnist-demo: a few steps, then the general evaluation and both reports', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-demo-'));
  const { stdout } = await run(dir, 'mnist-demo.ts', '--steps', '3', '--no-compare', '--out', 'out');
  t.regex(
    stdout,
    /\[rils\] zero-shot top-1 [\d.]+% top-5 [\d.]+% \(trained in \d+ s, evaluated in \d+ s\); k-NN [\d.]+%, 10-shot [\d.]+%, linear probe [\d.]+%/,
  );
  const results = JSON.parse(readFileSync(path.join(dir, 'out', 'results.json'), 'utf-8')) as {
    results: { zeroShotTop1: number; linearProbe: number }[];
  };
  t.true(
    results.results[0]!.zeroShotTop1 >= 0 && results.results[0]!.linearProbe > 0.2,
    'the probe learns digits even from a barely trained encoder',
  );
  t.regex(readFileSync(path.join(dir, 'out', 'report.html'), 'utf-8'), /the digit's class among the ten class prompts/);
  t.regex(readFileSync(path.join(dir, 'out', 'eval-report.html'), 'utf-8'), /Zero-shot mistakes/);
  rmSync(dir, { recursive: true, force: true });
});

test("clip-zero-shot, clip-finetune and export-for-the-web on a CLIP checkpoint with CLIP's vocabulary", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-examples-clip-'));
  const { Rils } = await import('../lib/index.js');
  const clip = await Rils.create({ preset: 'clip_micro', vocabSize: 49408, seed: 0, reconWeight: 0 });
  const checkpoint = path.join(dir, 'clip.safetensors');
  await clip.saveWeights(checkpoint, { layout: 'openai' });
  clip.dispose();
  const data = path.join(dir, 'data');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(data);
  for (const [k, [name, background]] of [
    ['red', { r: 230, g: 20, b: 20 }],
    ['blue', { r: 20, g: 20, b: 230 }],
  ].entries()) {
    for (let i = 0; i < 4; i++) {
      const file = path.join(data, `${name}${i}.png`);
      await sharp({
        create: {
          width: 40 + k,
          height: 48,
          channels: 3,
          background: background as { r: number; g: number; b: number },
        },
      })
        .png()
        .toFile(file);
      writeFileSync(file.replace(/\.png$/, '.txt'), `a ${name as string} square`);
    }
  }
  const zs = await run(dir, 'clip-zero-shot.ts', checkpoint, 'red square,blue square', path.join(data, 'red0.png'));
  t.regex(zs.stdout, /red0\.png: (red|blue) square [\d.]+%, (red|blue) square [\d.]+%/);
  const out = path.join(dir, 'tuned.safetensors');
  const tuned = await run(dir, 'clip-finetune.ts', checkpoint, data, '4', out, '--rils');
  t.regex(tuned.stdout, /step 4: loss [\d.]+/);
  const back = await Rils.fromPretrained(out);
  t.is(back.config.visionTower, 'clip');
  t.false(
    back.parameters().some((p) => p.name.startsWith('visual.decoder')),
    'the OpenAI layout leaves the decoder out',
  );
  back.dispose();
  const web = await run(
    dir,
    'export-for-the-web.ts',
    checkpoint,
    data,
    path.join(data, 'blue1.png'),
    'red square,blue square',
    '2',
    'web',
  );
  t.regex(
    web.stdout,
    /web: config\.json, merges\.txt, onnx\/model\.onnx, onnx\/text_model\.onnx, onnx\/vision_model\.onnx, preprocessor_config\.json/,
  );
  t.regex(web.stdout, /(red|blue) square [\d.]+%, (red|blue) square [\d.]+%/);
  rmSync(dir, { recursive: true, force: true });
});
