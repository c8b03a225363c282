// RILS's extension to a CLIP model: fine-tuning a pretrained CLIP checkpoint with the reconstruction
// term through a newly initialised feature decoder (decoderDepth 1), patches masked after the
// positional embedding with the class token kept.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { ByteTokenizer, Rils } from '../lib/index.js';
import { firstMoments } from './helpers/parity.js';
import { Random } from '../lib/data/augment.js';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clip');
const COLOURS: [string, [number, number, number]][] = [
  ['red', [220, 30, 30]],
  ['green', [30, 200, 40]],
  ['blue', [30, 40, 220]],
  ['yellow', [230, 220, 30]],
  ['white', [240, 240, 240]],
  ['purple', [150, 40, 180]],
];

/** `n` 32×32 images, each a coloured square on grey at a random place and size, with its colour's index. */
function squares(n: number, seed: number): { images: Uint8Array; labels: number[] } {
  const r = new Random(seed),
    images = new Uint8Array(n * 32 * 32 * 3).fill(110),
    labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = i % COLOURS.length,
      rgb = COLOURS[label]![1],
      side = 14 + Math.floor(r.next() * 12);
    const x0 = Math.floor(r.next() * (32 - side)),
      y0 = Math.floor(r.next() * (32 - side));
    for (let y = y0; y < y0 + side; y++)
      for (let x = x0; x < x0 + side; x++) images.set(rgb, ((i * 32 + y) * 32 + x) * 3);
    labels.push(label);
  }
  return { images, labels };
}

const byte = new ByteTokenizer({ contextLength: 16 }); // ids < 259, EOT the largest: rows any CLIP vocabulary takes
const rows = (texts: string[]) => byte.encodeBatch(texts);

/** Zero-shot accuracy with "a {colour} square." prompts, by cosine of the embeddings. */
async function zeroShot(model: Rils, data: { images: Uint8Array; labels: number[] }): Promise<number> {
  const prompts = COLOURS.map(([c]) => `a ${c} square.`);
  const txt = (await model.encodeTexts({ tokens: rows(prompts), batchSize: prompts.length })).embeddings;
  const img = (await model.encodeImages({ images: data.images, batchSize: data.labels.length })).embeddings;
  const E = model.config.embedDim;
  let right = 0;
  data.labels.forEach((label, i) => {
    const scores = COLOURS.map((_, c) => {
      let s = 0;
      for (let e = 0; e < E; e++) s += img[i * E + e]! * txt[c * E + e]!;
      return s;
    });
    if (scores.indexOf(Math.max(...scores)) === label) right++;
  });
  return right / data.labels.length;
}

test("fine-tuning a CLIP checkpoint with RILS's term: gradients reach the new decoder and the image tower; loss falls; zero-shot rises", async (t) => {
  const model = await Rils.fromPretrained(path.join(dir, 'openai.safetensors'), {
    decoderDepth: 1,
    reconWeight: 0.5,
    retrievalGate: false,
    lr: 2e-3,
    weightDecay: 0.05,
    seed: 0,
  });
  t.true(
    model.parameters().some((p) => p.name === 'visual.decoder_pred.weight'),
    'a feature decoder was added',
  );
  const train = squares(96, 1),
    heldOut = squares(48, 2);
  const before = await zeroShot(model, heldOut);
  const batch = (k: number) => {
    const idx = Array.from({ length: 16 }, (_, j) => (k * 16 + j) % train.labels.length);
    const images = new Uint8Array(16 * 32 * 32 * 3);
    idx.forEach((i, j) => images.set(train.images.subarray(i * 3072, (i + 1) * 3072), j * 3072));
    return { images, tokens: rows(idx.map((i) => `a ${COLOURS[train.labels[i]!]![0]} square.`)), batchSize: 16 };
  };
  const first = await model.trainStep(batch(0));
  t.true(Number.isFinite(first.reconKl) && first.reconLoss > 0, `the reconstruction term ran: ${first.reconKl}`);
  const moments = await firstMoments(model);
  for (const name of [
    'visual.decoder_pred.weight',
    'visual.decoder_embed.weight',
    'visual.mask_token',
    'visual.transformer.resblocks.0.attn.in_proj_weight',
    'visual.proj',
  ]) {
    t.true(
      moments.get(name)!.some((v) => v !== 0),
      `${name} received a gradient`,
    );
  }
  const losses = [first.loss];
  for (let k = 1; k < 60; k++) losses.push((await model.trainStep(batch(k))).loss);
  const after = await zeroShot(model, heldOut);
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  t.log(
    `loss ${mean(losses.slice(0, 5)).toFixed(3)} → ${mean(losses.slice(-5)).toFixed(3)}; zero-shot ${(100 * before).toFixed(1)}% → ${(100 * after).toFixed(1)}%`,
  );
  t.true(mean(losses.slice(-5)) < 0.8 * mean(losses.slice(0, 5)), 'the loss falls');
  t.true(after >= before + 0.25 && after >= 0.6, 'zero-shot accuracy on held-out squares rises');
  model.dispose();
});

test("a CLIP model without a decoder refuses RILS's term, clearly", async (t) => {
  await t.throwsAsync(
    Rils.fromPretrained(path.join(dir, 'openai.safetensors'), { reconWeight: 0.5, decoderDepth: 0 }),
    {
      message: /Expected reconWeight 0 for a model without a feature decoder \(decoderDepth 0\) but received 0.5/,
    },
  );
});
