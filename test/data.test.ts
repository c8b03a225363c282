// Datasets on disk (folder, JSONL, CSV, WebDataset), bad rows and images, MNIST, augmentation, the registry by spec.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { FileCaptionSource, RilsInputError, WordTokenizer, readCaptionIndex } from '../lib/index.js';
import { loadMnist } from '../lib/data/mnist.js';
import { Random, randomResizedCrop } from '../lib/data/augment.js';
import { makeShard } from './helpers/shards.js';

async function makeDataset(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-data-'));
  const colours = { red: { r: 255, g: 0, b: 0 }, blue: { r: 0, g: 0, b: 255 } };
  let i = 0;
  for (const [name, background] of Object.entries(colours)) {
    for (let k = 0; k < 3; k++, i++) {
      await sharp({ create: { width: 40 + k, height: 30, channels: 3, background } })
        .png()
        .toFile(path.join(dir, `img${i}.png`));
      writeFileSync(path.join(dir, `img${i}.txt`), `a ${name} square\n`);
    }
  }
  writeFileSync(path.join(dir, 'broken.png'), 'not a png');
  writeFileSync(path.join(dir, 'broken.txt'), 'a broken image');
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 0, b: 0 } } })
    .png()
    .toFile(path.join(dir, 'nocaption.png'));
  return dir;
}

test('folder, JSONL and CSV indexes; rows without caption are counted', async (t) => {
  const dir = await makeDataset();
  const folder = await readCaptionIndex(dir);
  t.is(folder.items.length, 7);
  t.is(folder.skipped, 1);
  t.is(folder.items.find((i) => i.image.endsWith('img0.png'))!.caption, 'a red square');
  writeFileSync(
    path.join(dir, 'index.jsonl'),
    '{"image":"img0.png","caption":"a red square"}\nnot json\n{"image":"img3.png"}\n',
  );
  const jsonl = await readCaptionIndex(path.join(dir, 'index.jsonl'));
  t.deepEqual([jsonl.items.length, jsonl.skipped], [1, 2]);
  t.is(jsonl.items[0]!.image, path.join(dir, 'img0.png'));
  writeFileSync(path.join(dir, 'index.csv'), 'image,caption\nimg1.png,"a red, bright square"\nimg4.png,\n');
  const csv = await readCaptionIndex(path.join(dir, 'index.csv'));
  t.deepEqual([csv.items.length, csv.skipped, csv.items[0]!.caption], [1, 1, 'a red, bright square']);
  await t.throwsAsync(readCaptionIndex(path.join(dir, 'missing')), {
    instanceOf: RilsInputError,
    message: /not found/,
  });
  writeFileSync(path.join(dir, 'bad.csv'), 'path,text\n');
  await t.throwsAsync(readCaptionIndex(path.join(dir, 'bad.csv')), { instanceOf: RilsInputError, message: /header/ });
  const empty = path.join(dir, 'empty');
  mkdirSync(empty);
  await t.throwsAsync(readCaptionIndex(empty), { instanceOf: RilsInputError, message: /no usable/ });
});

test('file batches skip and count corrupt images, or fail by option; positions resume', async (t) => {
  const dir = await makeDataset();
  const { items } = await readCaptionIndex(dir);
  const tokenizer = WordTokenizer.fromTexts(
    items.map((i) => i.caption),
    { contextLength: 8 },
  );
  const source = new FileCaptionSource({ items, tokenizer, batchSize: 4, size: 16, seed: 3 });
  const b1 = await source.next();
  t.is(b1.images.length, 4 * 16 * 16 * 3);
  // Prefetched calls in flight together give the same batches as one after another.
  const [b2, b3] = await Promise.all([source.next(), source.next()]);
  t.true(source.skipped >= 1, 'the broken image was skipped');
  source.restore(b1.position);
  t.deepEqual(await source.next(), b2);
  t.deepEqual(await source.next(), b3);
  const strict = new FileCaptionSource({ items, tokenizer, batchSize: 7, size: 16, seed: 3, onError: 'throw' });
  await t.throwsAsync(strict.next(), { instanceOf: RilsInputError, message: /broken\.png/ });
});

test('MNIST: a deterministic 8000 / 2000 split of real digits, padded to 32×32 RGB', (t) => {
  const train = loadMnist('train'),
    test = loadMnist('test');
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
  const a = new Uint8Array(8 * 8 * 3),
    b = new Uint8Array(8 * 8 * 3);
  randomResizedCrop(src, 20, 10, 3, 8, new Random(5), a);
  randomResizedCrop(src, 20, 10, 3, 8, new Random(5), b);
  t.deepEqual(a, b);
  randomResizedCrop(src, 20, 10, 3, 8, new Random(6), b);
  t.notDeepEqual(a, b);
});

test('WebDataset shards: streamed samples, captions from .txt/.json, skips counted, exact resume', async (t) => {
  const { WebDatasetSource } = await import('../lib/index.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-wds-'));
  const a = path.join(dir, 'a.tar'),
    b = path.join(dir, 'b.tar');
  await makeShard(a, [
    { key: 's1', png: true, txt: 'a purple thing' },
    { key: 's22', png: true, json: '{"caption": "a pink thing"}' },
    { key: 's333', png: true },
    { key: 's4', png: true, corrupt: true, txt: 'broken' },
  ]);
  await makeShard(b, [
    { key: 'x1', png: true, txt: 'a blue thing' },
    { key: 'x22', png: true, txt: 'a dark thing' },
    { key: 'x333', png: true, txt: 'a red thing' },
  ]);
  const tokenizer = WordTokenizer.fromTexts(['a purple pink blue dark red thing broken'], { contextLength: 6 });
  const make = () => new WebDatasetSource({ shards: [a, b], tokenizer, batchSize: 3, size: 16, seed: 2 });
  const source = make();
  const batches = [await source.next(), await source.next(), await source.next(), await source.next()];
  t.true(batches.every((x) => x.images.length === 3 * 16 * 16 * 3 && x.tokens.length === 18));
  t.true(source.skipped >= 2, 'a sample without caption and a corrupt image were skipped');
  const resumed = make();
  resumed.restore(batches[1]!.position);
  t.deepEqual(await resumed.next(), batches[2]);
  t.deepEqual(await resumed.next(), batches[3]);
  const bad = path.join(dir, 'bad.tar');
  writeFileSync(bad, Buffer.alloc(1024, 7));
  const broken = new WebDatasetSource({ shards: [bad], tokenizer, batchSize: 2, size: 16, seed: 0 });
  await t.throwsAsync(broken.next(), { instanceOf: RilsInputError, message: /bad\.tar is not a readable tar shard/ });
  const missing = new WebDatasetSource({
    shards: [path.join(dir, 'none.tar')],
    tokenizer,
    batchSize: 2,
    size: 16,
    seed: 0,
  });
  await t.throwsAsync(missing.next(), { instanceOf: RilsInputError, message: /none\.tar/ });
});

test('openDataset: a folder, JSONL or CSV index, with each rank its own share', async (t) => {
  const { openDataset } = await import('../lib/index.js');
  const dir = await makeDataset();
  let listed: readonly string[] = [];
  const tokenizer = (captions: () => readonly string[]) => {
    listed = captions();
    return WordTokenizer.fromTexts(listed, { contextLength: 8 });
  };
  const files = await openDataset(dir, { tokenizer, batchSize: 4, seed: 1, size: 16 });
  t.like(files, { kind: 'files', skippedRows: 1 });
  t.is(listed.length, 7, 'the word vocabulary is built from every caption of the index');
  t.deepEqual(
    files.examples.map((e) => path.basename(e.image as string)),
    ['broken.png', 'img0.png', 'img1.png'],
  );
  const batch = await files.source.next();
  t.is(batch.images.length, 4 * 16 * 16 * 3);
  for (let k = 0; k < 3; k++) await files.source.next(); // 16 draws of 7 items: broken.png among them
  t.true(files.skips().samples >= 1, 'the broken image was skipped and counted');
  t.like(files.skips(), { oversized: 0, shards: 0 });
  // Rank r of 2 reads rows r, r + 2, …: two epochs of its share hold only its captions.
  const index = path.join(dir, 'share.jsonl');
  writeFileSync(
    index,
    ['zero', 'one', 'two', 'three'].map((w, i) => JSON.stringify({ image: `img${i}.png`, caption: w })).join('\n'),
  );
  const words = WordTokenizer.fromTexts(['zero one two three'], { contextLength: 4 });
  const captionsOf = async (rank: number) => {
    const { source } = await openDataset(index, {
      tokenizer: words,
      batchSize: 4,
      seed: 1,
      size: 8,
      rank,
      worldSize: 2,
    });
    const { tokens } = await source.next();
    return [...new Set(Array.from({ length: 4 }, (_, b) => tokens[b * 4 + 1]!))].sort();
  };
  const ids = (...w: string[]) => w.map((x) => words.encode(x)[1]!).sort();
  t.deepEqual(await captionsOf(0), ids('zero', 'two'));
  t.deepEqual(await captionsOf(1), ids('one', 'three'));
  await t.throwsAsync(openDataset(dir, { tokenizer, batchSize: 2, seed: 0, size: 8, rank: 0, worldSize: 8 }), {
    instanceOf: RilsInputError,
    message: 'Expected at least 8 examples for 8 processes (each reads its own) but received 7',
  });
  await t.throwsAsync(openDataset(dir, { tokenizer, batchSize: 2, seed: 0, size: 8, rank: 2, worldSize: 2 }), {
    instanceOf: RilsInputError,
    message: /Expected an integer < worldSize \(2\) for rank/,
  });
  await t.throwsAsync(openDataset('', { tokenizer, batchSize: 2, seed: 0, size: 8 }), {
    instanceOf: RilsInputError,
    message: /for the dataset/,
  });
});

test('openDataset: WebDataset shards split by rank; MNIST; a word vocabulary needs listed captions', async (t) => {
  const { openDataset } = await import('../lib/index.js');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-reg-'));
  const [a, b] = [path.join(dir, 'a.tar'), path.join(dir, 'b.tar')];
  await makeShard(a, [
    { key: 's1', png: true, txt: 'a red thing' },
    { key: 's2', png: true, txt: 'a blue thing' },
  ]);
  await makeShard(b, [{ key: 'x1', png: true, txt: 'a dark thing' }]);
  const words = WordTokenizer.fromTexts(['a red blue dark thing'], { contextLength: 6 });
  const shards = await openDataset(`${a}, ${b}`, {
    tokenizer: words,
    batchSize: 2,
    seed: 0,
    size: 16,
    rank: 0,
    worldSize: 2,
  });
  t.is(shards.kind, 'webdataset');
  t.is((await shards.source.next()).batchSize, 2, 'rank 0 reads a.tar');
  await t.throwsAsync(openDataset(a, { tokenizer: words, batchSize: 2, seed: 0, size: 16, rank: 0, worldSize: 2 }), {
    instanceOf: RilsInputError,
    message: /Expected at least 2 shard\(s\) for 2 processes/,
  });
  await t.throwsAsync(
    openDataset(a, { tokenizer: (captions) => WordTokenizer.fromTexts(captions()), batchSize: 2, seed: 0, size: 16 }),
    { instanceOf: RilsInputError, message: /cannot list their captions/ },
  );
  let listed = 0;
  const mnist = await openDataset('mnist', {
    tokenizer: (captions) => ((listed = captions().length), WordTokenizer.fromTexts(captions(), { contextLength: 12 })),
    batchSize: 4,
    seed: 0,
    size: 40,
    rank: 1,
    worldSize: 2,
  });
  t.is(listed, 80, 'captions from the 8 training templates × 10 digits');
  t.is((await mnist.source.next()).images.length, 4 * 40 * 40 * 3, 'digits resized to the model input side');
});

test('one dataset resolver: each purpose opens the formats that serve it, and names them when the spec is another', async (t) => {
  const { openCaptionedPairs, openLabelledImages } = await import('../lib/index.js');
  const { FORMATS, resolveFormat } = await import('../lib/data/formats.js');
  t.deepEqual(
    FORMATS.map((f) => f.name),
    ['mnist', 'webdataset', 'files', 'image-folder'],
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-formats-'));
  const shard = path.join(dir, 'a.tar');
  await makeShard(shard, [
    { key: 's1', png: true, txt: 'a red thing' },
    { key: 's2', png: true, txt: 'a blue thing' },
    { key: 's3', png: true },
  ]);
  const index = path.join(dir, 'x.jsonl');
  writeFileSync(index, '{"image": "a.png", "caption": "a thing"}\n');
  await t.throwsAsync(openLabelledImages(shard), {
    instanceOf: RilsInputError,
    message:
      /a\.tar" is WebDataset shards \(.*\): classification needs the built-in MNIST digits .*, or a folder of class folders$/,
  });
  await t.throwsAsync(openLabelledImages(index), {
    instanceOf: RilsInputError,
    message: /x\.jsonl" is a caption index .*: classification needs/,
  });
  await t.throwsAsync(openCaptionedPairs('mnist'), {
    instanceOf: RilsInputError,
    message: /retrieval needs WebDataset shards .*, or a caption index/,
  });
  const opened = await openCaptionedPairs(shard);
  const captions: string[] = [];
  for await (const p of opened.pairs) captions.push(p.caption);
  t.deepEqual(captions, ['a red thing', 'a blue thing']);
  t.is(opened.skipped(), 1, 'the sample without a caption');
  t.is(resolveFormat(dir, 'training').name, 'files', 'a folder trains as a caption index');
  t.is(resolveFormat(dir, 'labelled').name, 'image-folder', 'and is classified as class folders');
  t.throws(() => resolveFormat('', 'pairs'), {
    instanceOf: RilsInputError,
    message: /Expected WebDataset shards .* for the dataset for retrieval/,
  });
});
