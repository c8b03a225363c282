// The rils command line, end to end on a tiny on-disk dataset.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';
import sharp from 'sharp';

import { cli } from './helpers/cli.js';

const run = promisify(execFile);
const rils = (...args: string[]) => run(process.execPath, ['--import=tsx', cli, ...args], { timeout: 240_000 });

test('train → zeroshot → embed on a folder dataset, with resume', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-cli-'));
  const colours = { red: { r: 230, g: 20, b: 20 }, blue: { r: 20, g: 20, b: 230 } };
  let i = 0;
  for (const [name, background] of Object.entries(colours)) {
    for (let k = 0; k < 4; k++, i++) {
      await sharp({ create: { width: 36, height: 36, channels: 3, background } })
        .png()
        .toFile(path.join(dir, `${i}.png`));
      writeFileSync(path.join(dir, `${i}.txt`), `a ${name} square`);
    }
  }
  const weights = path.join(dir, 'w.safetensors'),
    ckpt = path.join(dir, 'c.safetensors'),
    metrics = path.join(dir, 'm.jsonl');
  const first = await rils(
    'train',
    '--data',
    dir,
    '--steps',
    '3',
    '--batch',
    '4',
    '--checkpoint',
    ckpt,
    '--metrics',
    metrics,
    '--out',
    weights,
  );
  t.regex(first.stdout, /step 3\/3 loss/);
  const report = path.join(dir, 'report.html');
  const resumed = await rils(
    'train',
    '--data',
    dir,
    '--steps',
    '5',
    '--batch',
    '4',
    '--checkpoint',
    ckpt,
    '--out',
    weights,
    '--report',
    report,
  );
  t.regex(resumed.stdout, /resumed from step 3/);
  const html = readFileSync(report, 'utf-8');
  t.regex(html, /<polyline/);
  t.is((html.match(/data:image\/png;base64/g) ?? []).length, 3);
  t.regex(html, /<figcaption>a (red|blue) square<\/figcaption>/, "the patch maps carry the run's own captions");
  t.regex(html, /own caption among the 3 captions shown/);
  t.notRegex(html, /digit/, 'a report on a folder of squares does not speak of digits');
  t.true(existsSync(weights));
  t.is(readFileSync(metrics, 'utf-8').trim().split('\n').length, 3);
  const zs = await rils(
    'zeroshot',
    '--weights',
    weights,
    '--classes',
    'red,blue',
    '--templates',
    'a {} square',
    '--top',
    '2',
    path.join(dir, '0.png'),
  );
  t.regex(zs.stdout, /0\.png: (red|blue) [\d.]+%, (red|blue) [\d.]+%/);
  const npy = path.join(dir, 'e.npy');
  await rils('embed', '--weights', weights, '--out', npy, path.join(dir, '0.png'), path.join(dir, '5.png'));
  const bytes = readFileSync(npy);
  t.is(bytes.subarray(1, 6).toString(), 'NUMPY');
  t.regex(bytes.subarray(10, 10 + bytes.readUInt16LE(8)).toString('latin1'), /'shape': \(2, 128\)/);
  t.is((bytes.length - 10 - bytes.readUInt16LE(8)) % (2 * 128 * 4), 0);
  const info = await rils('info');
  t.regex(info.stdout, /LibTorch 1\.13|LibTorch 2\./);
});

test('clear errors for a missing dataset and a malformed command', async (t) => {
  const e1 = await t.throwsAsync(rils('train', '--data', '/no/such/dir', '--steps', '1'));
  t.regex((e1 as unknown as { stderr: string }).stderr, /Dataset not found: \/no\/such\/dir/);
  const e2 = await t.throwsAsync(rils('frobnicate'));
  t.is((e2 as unknown as { code: number }).code, 2);
});

test('Ctrl-C (SIGINT) saves a checkpoint and exits cleanly; the same command resumes', async (t) => {
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-sigint-'));
  const ckpt = path.join(dir, 'c.safetensors');
  const args = [
    '--import=tsx',
    cli,
    'train',
    '--data',
    'mnist',
    '--steps',
    '100000',
    '--batch',
    '4',
    '--checkpoint',
    ckpt,
    '--out',
    path.join(dir, 'w.safetensors'),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => /step 20\//.test(out) && (clearInterval(timer), resolve()), 50);
  });
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 0);
  const stopped = /stopped at step (\d+)/.exec(out);
  t.truthy(stopped, out);
  t.true(existsSync(ckpt));
  const again = await rils(
    'train',
    '--data',
    'mnist',
    '--steps',
    String(Number(stopped![1]) + 2),
    '--batch',
    '4',
    '--checkpoint',
    ckpt,
    '--out',
    path.join(dir, 'w.safetensors'),
  );
  t.regex(again.stdout, new RegExp(`resumed from step ${stopped![1]}`));
});

test('convert: a TorchScript CLIP to a Hugging Face folder and back to OpenAI safetensors; embed reads each', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-cli-convert-'));
  const fixtures = path.resolve(path.dirname(cli), '..', '..', 'test', 'fixtures', 'clip');
  const jit = path.join(fixtures, 'openai-jit.pt'),
    image = path.join(fixtures, 'images', 'square.jpg');
  t.regex(
    (await rils('convert', '--weights', jit, '--out', path.join(dir, 'hf'), '--layout', 'hf')).stdout,
    /a Hugging Face folder \(clip/,
  );
  await rils(
    'convert',
    '--weights',
    path.join(dir, 'hf'),
    '--act',
    'quick_gelu',
    '--out',
    path.join(dir, 'o.safetensors'),
    '--layout',
    'openai',
  );
  const embeddings = [];
  for (const weights of [jit, path.join(dir, 'hf'), path.join(dir, 'o.safetensors')]) {
    const out = path.join(dir, `${embeddings.length}.npy`);
    await rils('embed', '--weights', weights, '--act', 'quick_gelu', '--out', out, image);
    const bytes = readFileSync(out);
    embeddings.push(new Float32Array(bytes.buffer.slice(bytes.byteOffset + 128, bytes.byteOffset + bytes.byteLength)));
  }
  t.deepEqual(embeddings[1], embeddings[0]);
  t.deepEqual(embeddings[2], embeddings[0]);
});
