// `rils eval` end to end: an ImageFolder of colours (classification, JSON and HTML report), a
// separate training folder, retrieval on a JSONL index and on a WebDataset shard, and bad input.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';
import sharp from 'sharp';
import tar from 'tar-stream';

import { CaptionedImageSource, Rils, WordTokenizer, fit } from '../lib/index.js';
import { rilsRun } from './helpers/cli.js';
import { COLOUR_NAMES, colourImages, writeColourFolder } from './helpers/colours.js';

const CAPTIONS = COLOUR_NAMES.map((c) => `a ${c} square`);
const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-cli-eval-'));
const weights = path.join(dir, 'w.safetensors');
const data = path.join(dir, 'data');

test.before(async () => {
  const tokenizer = WordTokenizer.fromTexts(CAPTIONS, { contextLength: 8 });
  const model = await Rils.create({
    preset: 'micro',
    vocabSize: tokenizer.vocabSize,
    contextLength: 8,
    tokenizer,
    seed: 0,
    lr: 1e-3,
    warmupSteps: 5,
    totalSteps: 30,
  });
  const source = new CaptionedImageSource({
    ...colourImages(16, 32, 1),
    size: 32,
    tokenizer,
    batchSize: 16,
    seed: 0,
    cropScale: false,
    caption: (label) => CAPTIONS[label]!,
  });
  await fit(model, source, { steps: 30 });
  await model.saveWeights(weights);
  model.dispose();
  await writeColourFolder(data, 10, 3);
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

interface Results {
  classification: {
    classNames: string[];
    zeroShot: { top1: number; top5: number; confusion: number[][]; predictions: number[] };
    knn: { k: number; top1: number };
    fewShot: { shots: number }[];
    linearProbe: { top1: number; sweep: unknown[] };
    test: { images: number; skipped: unknown[] };
  };
  retrieval?: {
    imageToText: Record<string, number>;
    textToImage: Record<string, number>;
    images: number;
    texts: number;
  };
}

test('eval --data DIR: every protocol on stdout, in --out JSON and in the --report page', async (t) => {
  const out = path.join(dir, 'r.json'),
    report = path.join(dir, 'r.html'),
    templates = path.join(dir, 'templates.txt');
  writeFileSync(templates, 'a {} square\n');
  const r = await rilsRun([
    'eval',
    '--weights',
    weights,
    '--data',
    data,
    '--templates',
    templates,
    '--shots',
    '1,2',
    '--out',
    out,
    '--report',
    report,
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /no training folder: .* is split, 0\.5 of each class for testing \(seed 0\)/);
  t.regex(r.stdout, /zero-shot +top-1 [\d.]+% +top-5 100\.00% +\(1 template\)/);
  t.regex(r.stdout, /k-NN \(k = 20\) +top-1/);
  t.regex(r.stdout, /2-shot +nearest mean [\d.]+% +linear probe/);
  const json = JSON.parse(readFileSync(out, 'utf-8')) as Results;
  const c = json.classification;
  t.deepEqual(c.classNames, ['blue', 'green', 'red', 'yellow']);
  t.true(
    c.zeroShot.top1 >= 0.9 && c.knn.top1 >= 0.9 && c.linearProbe.top1 >= 0.9,
    JSON.stringify([c.zeroShot.top1, c.knn.top1, c.linearProbe.top1]),
  );
  t.is(c.zeroShot.predictions.length, 20, 'per-image predictions as a plain array');
  t.deepEqual(
    c.zeroShot.confusion.map((row) => row.length),
    [4, 4, 4, 4],
  );
  t.deepEqual(
    c.fewShot.map((f) => f.shots),
    [1, 2],
  );
  const html = readFileSync(report, 'utf-8');
  for (const part of [
    /Confusion matrices/,
    /Zero-shot mistakes/,
    /Patch semantics/,
    /among the 4 class prompts/,
    /<td>yellow<\/td>/,
  ])
    t.regex(html, part);
  t.true(
    (html.match(/data:image\/png;base64/g) ?? []).length >= 6,
    'confusion matrices and patch maps are inline images',
  );
});

test('eval --train DIR: classes the test set lacks are skipped and counted; unreadable images too', async (t) => {
  const train = path.join(dir, 'train');
  await writeColourFolder(train, 4, 9);
  mkdirSync(path.join(train, 'purple'));
  await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 128, g: 0, b: 128 } } })
    .png()
    .toFile(path.join(train, 'purple', 'p.png'));
  writeFileSync(path.join(train, 'red', 'broken.png'), 'not a png');
  const r = await rilsRun([
    'eval',
    '--weights',
    weights,
    '--data',
    data,
    '--train',
    train,
    '--shots',
    'none',
    '--templates',
    'a {} square',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /1 training image of a class the test set lacks was left out: purple/);
  t.regex(r.stdout, /40 test images, 16 training images, 1 unreadable image skipped \(first: .*broken\.png\)/);
  t.notRegex(r.stdout, /\d-shot/);
});

/** A WebDataset shard of the colour pairs (KEY.png + KEY.txt). */
async function writeShard(file: string, images: string[]): Promise<void> {
  const pack = tar.pack();
  const done = new Promise<void>((resolve) => {
    const chunks: Buffer[] = [];
    pack
      .on('data', (c: unknown) => chunks.push(c as Buffer))
      .on('end', () => (writeFileSync(file, Buffer.concat(chunks)), resolve()));
  });
  images.forEach((image, i) => {
    pack.entry({ name: `s${i}.png` }, readFileSync(image));
    pack.entry({ name: `s${i}.txt` }, CAPTIONS[i]!);
  });
  pack.entry({ name: 'orphan.txt' }, 'a caption without an image');
  pack.finalize();
  await done;
}

test('eval --retrieval: a JSONL index and a WebDataset shard, recall both ways', async (t) => {
  const images = COLOUR_NAMES.map((c) => path.join(data, c, '0.png'));
  const jsonl = path.join(dir, 'pairs.jsonl');
  writeFileSync(jsonl, images.map((image, i) => JSON.stringify({ image, caption: CAPTIONS[i] })).join('\n'));
  const out = path.join(dir, 'retrieval.json');
  const r = await rilsRun(['eval', '--weights', weights, '--retrieval', jsonl, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(
    r.stdout,
    /retrieval: 4 images, 4 captions\n +image → text +R@1 [\d.]+% +R@5 100\.00% +R@10 100\.00%\n +text → image +R@1/,
  );
  const json = JSON.parse(readFileSync(out, 'utf-8')) as Results;
  t.is(json.retrieval!.imageToText['1'], 1, 'each colour finds its caption first');
  const shard = path.join(dir, 'pairs.tar');
  await writeShard(shard, images);
  const s = await rilsRun(['eval', '--weights', weights, '--retrieval', shard]);
  t.is(s.code, 0, s.stderr);
  t.regex(s.stdout, /retrieval: 4 images, 4 captions/);
  t.regex(s.stdout, /1 row or sample without an image or a caption left out/);
});

/** Exit status 2 and one line `rils: …` matching `message`. */
async function failsClearly(t: import('ava').ExecutionContext, args: string[], message: RegExp) {
  const r = await rilsRun(args);
  t.is(r.code, 2, `rils ${args.join(' ')}: ${r.stderr}`);
  t.regex(r.stderr, /^rils: [^\n]*\n$/);
  t.regex(r.stderr, message);
}

test('bad eval arguments and data are one clear line', async (t) => {
  const one = path.join(dir, 'one');
  mkdirSync(path.join(one, 'cat'), { recursive: true });
  writeFileSync(path.join(one, 'cat', 'a.png'), '');
  const evalWith = (...args: string[]) => ['eval', '--weights', weights, ...args];
  await failsClearly(
    t,
    evalWith('--data', one),
    /Expected at least 2 class folders with images in .*one but found 1 \("cat"\)/,
  );
  await failsClearly(t, evalWith(), /eval needs --data mnist\|DIR \(labelled images\) and\/or --retrieval DATA/);
  await failsClearly(
    t,
    evalWith('--data', data, '--shots', '0'),
    /Expected integers >= 1 separated by commas \(or none\) for --shots but received "0"/,
  );
  await failsClearly(
    t,
    evalWith('--data', data, '--test-fraction', '1'),
    /Expected a number between 0 and 1 \(exclusive\) for --test-fraction but received "1"/,
  );
  await failsClearly(
    t,
    evalWith('--data', data, '--templates', 'no braces'),
    /for --templates but received "no braces"/,
  );
  await failsClearly(t, evalWith('--data', 'mnist', '--train', data), /own training digits/);
  await failsClearly(
    t,
    evalWith('--retrieval', 'mnist'),
    /"mnist" is the built-in MNIST digits \(a labelled set without captions of its own\): retrieval needs WebDataset shards/,
  );
  await failsClearly(
    t,
    evalWith('--data', data, '--out', '/no/such/dir/r.json'),
    /for --out but received "\/no\/such\/dir\/r\.json"/,
  );
});
