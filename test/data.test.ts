// Datasets on disk (folder, JSONL, CSV), bad rows and images, MNIST, augmentation.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { FileCaptionSource, RilsInputError, WordTokenizer, loadMnist, readCaptionIndex } from '../lib/index.js';
import { Random, randomResizedCrop } from '../lib/data/augment.js';

async function makeDataset(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-data-'));
  const colours = { red: { r: 255, g: 0, b: 0 }, blue: { r: 0, g: 0, b: 255 } };
  let i = 0;
  for (const [name, background] of Object.entries(colours)) {
    for (let k = 0; k < 3; k++, i++) {
      await sharp({ create: { width: 40 + k, height: 30, channels: 3, background } }).png().toFile(path.join(dir, `img${i}.png`));
      writeFileSync(path.join(dir, `img${i}.txt`), `a ${name} square\n`);
    }
  }
  writeFileSync(path.join(dir, 'broken.png'), 'not a png');
  writeFileSync(path.join(dir, 'broken.txt'), 'a broken image');
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png().toFile(path.join(dir, 'nocaption.png'));
  return dir;
}

test('folder, JSONL and CSV indexes; rows without caption are counted', async (t) => {
  const dir = await makeDataset();
  const folder = await readCaptionIndex(dir);
  t.is(folder.items.length, 7);
  t.is(folder.skipped, 1);
  t.is(folder.items.find((i) => i.image.endsWith('img0.png'))!.caption, 'a red square');
  writeFileSync(path.join(dir, 'index.jsonl'), '{"image":"img0.png","caption":"a red square"}\nnot json\n{"image":"img3.png"}\n');
  const jsonl = await readCaptionIndex(path.join(dir, 'index.jsonl'));
  t.deepEqual([jsonl.items.length, jsonl.skipped], [1, 2]);
  t.is(jsonl.items[0]!.image, path.join(dir, 'img0.png'));
  writeFileSync(path.join(dir, 'index.csv'), 'image,caption\nimg1.png,"a red, bright square"\nimg4.png,\n');
  const csv = await readCaptionIndex(path.join(dir, 'index.csv'));
  t.deepEqual([csv.items.length, csv.skipped, csv.items[0]!.caption], [1, 1, 'a red, bright square']);
  await t.throwsAsync(readCaptionIndex(path.join(dir, 'missing')), { instanceOf: RilsInputError, message: /not found/ });
  writeFileSync(path.join(dir, 'bad.csv'), 'path,text\n');
  await t.throwsAsync(readCaptionIndex(path.join(dir, 'bad.csv')), { instanceOf: RilsInputError, message: /header/ });
  const empty = path.join(dir, 'empty');
  mkdirSync(empty);
  await t.throwsAsync(readCaptionIndex(empty), { instanceOf: RilsInputError, message: /no usable/ });
});

test('file batches skip and count corrupt images, or fail by option; positions resume', async (t) => {
  const dir = await makeDataset();
  const { items } = await readCaptionIndex(dir);
  const tokenizer = WordTokenizer.fromTexts(items.map((i) => i.caption), { contextLength: 8 });
  const source = new FileCaptionSource({ items, tokenizer, batchSize: 4, size: 16, seed: 3 });
  const b1 = await source.next();
  t.is(b1.images.length, 4 * 16 * 16 * 3);
  const saved = source.state();
  const b2 = await source.next();
  await source.next();
  t.true(source.skipped >= 1, 'the broken image was skipped');
  source.restore(saved);
  t.deepEqual(await source.next(), b2);
  const strict = new FileCaptionSource({ items, tokenizer, batchSize: 7, size: 16, seed: 3, onError: 'throw' });
  await t.throwsAsync(strict.next(), { instanceOf: RilsInputError, message: /broken\.png/ });
});

test('MNIST: a deterministic 8000 / 2000 split of real digits, padded to 32×32 RGB', (t) => {
  const train = loadMnist('train'), test = loadMnist('test');
  t.is(train.count, 8000);
  t.true(test.count > 1900);
  t.is(train.images.length, 8000 * 32 * 32 * 3);
  t.deepEqual([...new Set(train.labels)].sort(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  let ink = 0;
  for (let i = 0; i < 32 * 32; i++) ink += train.images[i * 3]!;
  t.true(ink > 0, 'the first digit has ink');
  t.deepEqual(loadMnist('train').images.subarray(0, 3000), train.images.subarray(0, 3000));
});

test('RandomResizedCrop is seeded and keeps the size', (t) => {
  const src = Uint8Array.from({ length: 20 * 10 * 3 }, (_, i) => i % 251);
  const a = new Uint8Array(8 * 8 * 3), b = new Uint8Array(8 * 8 * 3);
  randomResizedCrop(src, 20, 10, 3, 8, new Random(5), a);
  randomResizedCrop(src, 20, 10, 3, 8, new Random(5), b);
  t.deepEqual(a, b);
  randomResizedCrop(src, 20, 10, 3, 8, new Random(6), b);
  t.notDeepEqual(a, b);
});
