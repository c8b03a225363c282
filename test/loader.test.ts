// The training loaders under large and damaged input (issue 20): huge images decode shrunk, images over
// maxPixels are skipped and counted, and a truncated WebDataset shard is skipped with a count.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { FileCaptionSource, RilsInputError, WebDatasetSource, WordTokenizer } from '../lib/index.js';
import { Random, randomResizedCrop } from '../lib/data/augment.js';
import { makeShard } from './helpers/shards.js';

const tokenizer = WordTokenizer.fromTexts(['a red blue square thing'], { contextLength: 8 });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-loader-'));

async function smallImages(dir: string, count: number): Promise<{ image: string; caption: string }[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const image = path.join(dir, `small${i}.png`);
      await sharp({ create: { width: 40 + i, height: 30, channels: 3, background: { r: 20, g: 20, b: 200 } } })
        .png()
        .toFile(image);
      return { image, caption: 'a blue square' };
    }),
  );
}

test('a 15000 × 15000 PNG trains a batch with a small fraction of the memory a full-size decode takes', async (t) => {
  const dir = tmp();
  const big = path.join(dir, 'big.png');
  await sharp({ create: { width: 15000, height: 15000, channels: 3, background: { r: 200, g: 30, b: 30 } } })
    .png()
    .toFile(big);
  const items = [{ image: big, caption: 'a red square' }, ...(await smallImages(dir, 3))];
  // In a child, so that the peak (VmHWM) is this batch's own.
  const script = `
    import { readFileSync } from 'node:fs';
    import { FileCaptionSource, Rils, WordTokenizer } from ${JSON.stringify(new URL('../lib/index.js', import.meta.url).href)};
    const hwm = () => Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
    const items = JSON.parse(process.argv[1]);
    const tokenizer = WordTokenizer.fromTexts(['a red blue square'], { contextLength: 16 });
    const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, contextLength: 16, tokenizer, seed: 0 });
    const make = (list) => new FileCaptionSource({ items: list, tokenizer, batchSize: 4, size: 32, seed: 1, maxPixels: 15000 * 15000 });
    await model.trainStep(await make(items.slice(1).concat(items.slice(1, 2))).next()); // warm-up: sharp, the step's buffers
    const before = process.memoryUsage().rss;
    const source = make(items);
    const batch = await source.next();
    const stats = await model.trainStep(batch);
    console.log(JSON.stringify({ growth: hwm() - before, skipped: source.skipped, loss: stats.loss }));`;
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(items)],
    { encoding: 'utf8', timeout: 240_000 },
  );
  t.is(r.status, 0, r.stderr.slice(-2000));
  const { growth, skipped, loss } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    growth: number;
    skipped: number;
    loss: number;
  };
  t.log(
    `peak RSS growth for the batch with the 15000 × 15000 PNG: ${(growth / 2 ** 20).toFixed(0)} MB (its pixels alone: 644 MiB)`,
  );
  t.is(skipped, 0);
  t.true(Number.isFinite(loss));
  t.true(growth < 250 * 2 ** 20, `${(growth / 2 ** 20).toFixed(0)} MB`);
});

test('images over maxPixels are skipped and counted, or fail by option, in both sources', async (t) => {
  const dir = tmp();
  const items = await smallImages(dir, 4); // 40..43 × 30: 1200 to 1290 pixels
  const source = new FileCaptionSource({ items, tokenizer, batchSize: 4, size: 16, seed: 1, maxPixels: 1250 });
  const batch = await source.next();
  t.is(batch.batchSize, 4);
  t.is(source.oversized, 2);
  t.is(source.skipped, 2);
  const strict = new FileCaptionSource({
    items,
    tokenizer,
    batchSize: 4,
    size: 16,
    seed: 1,
    maxPixels: 1250,
    onError: 'throw',
  });
  await t.throwsAsync(strict.next(), {
    instanceOf: RilsInputError,
    message: /Cannot decode .*small[23]\.png: it has 4[23]×30 = 12[69]0 pixels, more than maxPixels \(1250\)/,
  });
  for (const bad of [0, 1.5, -1, '100']) {
    t.throws(
      () => new FileCaptionSource({ items, tokenizer, batchSize: 4, size: 16, seed: 1, maxPixels: bad as number }),
      {
        instanceOf: RilsInputError,
        message: /Expected an integer >= 1 for maxPixels but received/,
      },
    );
  }
  const shard = path.join(dir, 'a.tar');
  await makeShard(shard, [
    { key: 's1', png: true, txt: 'a thing' },
    { key: 's2', png: true, txt: 'a thing' },
  ]); // 20 × 24 = 480 pixels
  const wds = new WebDatasetSource({ shards: [shard], tokenizer, batchSize: 2, size: 16, seed: 0, maxPixels: 479 });
  await t.throwsAsync(wds.next(), { instanceOf: RilsInputError, message: /No image of a batch could be decoded/ });
  t.is(wds.oversized, 2);
});

test('an image larger than 4 × the input side gives the crop of its full-size decode, up to resampling', async (t) => {
  // A smooth gradient, so that resampling differences stay small.
  const [w, h] = [800, 600];
  const pixels = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      pixels.set([Math.round((255 * x) / w), Math.round((255 * y) / h), 128], (y * w + x) * 3);
  const file = path.join(tmp(), 'gradient.png');
  await sharp(pixels, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(file);
  const size = 32;
  const source = new FileCaptionSource({
    items: [{ image: file, caption: 'a red square' }],
    tokenizer,
    batchSize: 1,
    size,
    seed: 9,
  });
  const { images } = await source.next();
  // The same crop of the full-size image: the box drawn by the same generator, scaled.
  const crops = new Random(9);
  crops.shuffle([0]);
  const crop = new Random(crops.int(2 ** 32));
  const shrunk = await sharp(file)
    .resize(4 * size, 4 * size, { fit: 'outside' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  t.deepEqual([shrunk.info.width, shrunk.info.height], [171, 128], 'decoded with its shorter side at 4 × 32');
  const expected = new Uint8Array(size * size * 3);
  randomResizedCrop(pixels, w, h, 3, size, crop, expected);
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(expected[i]! - images[i]!));
  t.log(`largest difference from the full-size crop: ${diff} / 255`);
  t.true(diff <= 12, `${diff}`);
});

test('a truncated shard is skipped with a count, or stops the run naming it', async (t) => {
  const dir = tmp();
  const [good, cut] = [path.join(dir, 'good.tar'), path.join(dir, 'cut.tar')];
  await makeShard(good, [
    { key: 'g1', png: true, txt: 'a red thing' },
    { key: 'g2', png: true, txt: 'a blue thing' },
  ]);
  await makeShard(cut, [
    { key: 'c1', png: true, txt: 'a red thing' },
    { key: 'c2', png: true, txt: 'a blue thing' },
    { key: 'c3', png: true, txt: 'a thing' },
  ]);
  const whole = readFileSync(cut);
  writeFileSync(cut, whole.subarray(0, Math.floor(whole.length / 2))); // cut inside a sample
  const source = new WebDatasetSource({ shards: [good, cut], tokenizer, batchSize: 2, size: 16, seed: 0 });
  for (let i = 0; i < 6; i++) t.is((await source.next()).batchSize, 2); // three epochs, each over the damage
  t.true(source.skippedShards >= 3, `${source.skippedShards}`);
  t.regex(source.lastShardError!, /cut\.tar is not a readable tar shard: Unexpected end of data/);
  const strict = new WebDatasetSource({ shards: [cut], tokenizer, batchSize: 4, size: 16, seed: 0, onError: 'throw' });
  await t.throwsAsync(strict.next(), {
    instanceOf: RilsInputError,
    message: /cut\.tar is not a readable tar shard: Unexpected end of data/,
  });
  const only = new WebDatasetSource({
    shards: [path.join(dir, 'missing.tar')],
    tokenizer,
    batchSize: 2,
    size: 16,
    seed: 0,
  });
  await t.throwsAsync(only.next(), {
    instanceOf: RilsInputError,
    message: /The shards hold no usable sample \(\d+ unreadable; the last: .*missing\.tar/,
  });
});
