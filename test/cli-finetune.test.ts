// Fine-tuning from the command line, as open_clip's users do it: a CLIP checkpoint written by the
// reference (../shared/reference/clip_ref.py, CLIP's 49,408-token vocabulary), `rils train --init`
// on a folder of captioned images, then `rils eval`: the loss falls, held-out zero-shot improves,
// and the reference reads the result and computes rils's embeddings.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { Rils, parseSafetensors } from '../lib/index.js';
import { rilsRun } from './helpers/cli.js';
import { clipRef } from './helpers/clip-ref.js';
import { writeCaptionedColours, writeColourFolder } from './helpers/colours.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'rils-finetune-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

async function zeroShotTop1(weights: string, data: string, out: string): Promise<number> {
  const r = await rilsRun([
    'eval',
    '--weights',
    weights,
    '--data',
    data,
    '--shots',
    'none',
    '--templates',
    'a photo of a {} thing.',
    '--out',
    out,
  ]);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(readFileSync(out, 'utf-8')) as { classification: { zeroShot: { top1: number } } }).classification
    .zeroShot.top1;
}

test('rils train --init fine-tunes a CLIP checkpoint: loss falls, held-out zero-shot improves, clip_ref reads the result', async (t) => {
  const checkpoint = path.join(work, 'clip.safetensors');
  await clipRef('init', '--preset', 'clip_micro', '--seed', '3', '--set', 'vocab_size=49408', '--out', checkpoint);
  const [train, heldOut] = [path.join(work, 'train'), path.join(work, 'held-out')];
  await writeCaptionedColours(train, 12, 1);
  await writeColourFolder(heldOut, 10, 2);
  const before = await zeroShotTop1(checkpoint, heldOut, path.join(work, 'before.json'));

  const tuned = path.join(work, 'tuned.safetensors'),
    metrics = path.join(work, 'metrics.jsonl');
  const r = await rilsRun([
    'train',
    '--init',
    checkpoint,
    '--data',
    train,
    '--steps',
    '80',
    '--batch',
    '16',
    '--lr',
    '1e-3',
    '--layout',
    'openai',
    '--out',
    tuned,
    '--metrics',
    metrics,
  ]);
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.stdout, /gated/, 'a CLIP-only run reports no gate');
  const losses = readFileSync(metrics, 'utf-8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { loss: number }).loss);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  t.true(
    mean(losses.slice(-10)) < 0.6 * mean(losses.slice(0, 10)),
    `loss ${mean(losses.slice(0, 10))} → ${mean(losses.slice(-10))}`,
  );
  const after = await zeroShotTop1(tuned, heldOut, path.join(work, 'after.json'));
  t.true(after >= 0.9 && after > before + 0.3, `held-out zero-shot top-1 ${before} → ${after}`);
  t.log(
    `loss ${mean(losses.slice(0, 10)).toFixed(3)} → ${mean(losses.slice(-10)).toFixed(3)}; held-out zero-shot top-1 ${before} → ${after}`,
  );

  // The reference loads the OpenAI-layout result and computes what rils computes from it.
  const inputs = path.join(work, 'inputs.safetensors'),
    encoded = path.join(work, 'encoded.safetensors');
  await clipRef('inputs', '--weights', tuned, '--batch', '4', '--seed', '5', '--out', inputs);
  await clipRef('encode', '--weights', tuned, '--inputs', inputs, '--out', encoded);
  const read = (file: string) => parseSafetensors(readFileSync(file)).tensors;
  const [i, e] = [read(inputs), read(encoded)];
  const f32 = (bytes: Uint8Array) => new Float32Array(new Uint8Array(bytes).buffer);
  const model = await Rils.fromPretrained(tuned);
  const images = await model.encodeImages({ images: f32(i.get('images')!.bytes), batchSize: 4 }, { normalize: false });
  const texts = await model.encodeTexts(
    { tokens: new Int32Array(new Uint8Array(i.get('tokens')!.bytes).buffer), batchSize: 4 },
    { normalize: false },
  );
  const relErr = (a: Float32Array, b: Float32Array) =>
    Math.max(...a.map((v, k) => Math.abs(v - b[k]!))) / Math.max(...b.map(Math.abs));
  t.true(relErr(images.embeddings, f32(e.get('image_embed')!.bytes)) < 1e-4, 'image embeddings');
  t.true(relErr(texts.embeddings, f32(e.get('text_embed')!.bytes)) < 1e-4, 'text embeddings');
  model.dispose();
});
