// Evaluation on your own data: classification on a generated ImageFolder whose classes are colours
// (zero-shot after a short training, k-NN, n-shot, linear probe, with a shuffled-label control),
// retrieval where image i matches caption i, and the streaming encoder with unreadable images.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import {
  CaptionedImageSource,
  Rils,
  RilsInputError,
  WordTokenizer,
  embedImages,
  evaluateClassification,
  evaluateRetrieval,
  fit,
  openLabelledImages,
  retrievalRecall,
} from '../lib/index.js';
import type { LabelledData, LabelledImageSet } from '../lib/index.js';
import { Random } from '../lib/data/augment.js';
import { selectImages } from '../lib/data/labelled.js';
import { recallAt } from '../lib/eval/scores.js';
import { topKByDot } from '../lib/eval/protocols.js';
import { retrievalRanks } from '../lib/eval/protocols.js';
import { COLOUR_NAMES, colourImages, colourPixels, writeColourFolder } from './helpers/colours.js';

const CAPTIONS = COLOUR_NAMES.map((c) => `a ${c} square`);
const tokenizer = WordTokenizer.fromTexts(CAPTIONS, { contextLength: 8 });
let model: Rils;
let data: LabelledData;
const dirs: string[] = [];
const tmp = (prefix: string) => {
  dirs.push(mkdtempSync(path.join(os.tmpdir(), prefix)));
  return dirs.at(-1)!;
};

test.before(async () => {
  const steps = 30;
  model = await Rils.create({
    preset: 'micro',
    vocabSize: tokenizer.vocabSize,
    contextLength: 8,
    tokenizer,
    seed: 0,
    lr: 1e-3,
    warmupSteps: 5,
    totalSteps: steps,
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
  await fit(model, source, { steps });
  const dir = tmp('rils-eval-');
  await writeColourFolder(dir, 12, 7);
  data = await openLabelledImages(dir);
});
test.after.always(() => {
  model?.dispose();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** The set with its labels shuffled (a seeded permutation): nothing about the images predicts them. */
function shuffled(set: LabelledImageSet, seed: number): LabelledImageSet {
  return { ...set, labels: Int32Array.from(new Random(seed).shuffle([...set.labels])) };
}

test('colour classes: zero-shot after a short training, k-NN, n-shot and the linear probe are all high', async (t) => {
  const r = await evaluateClassification(model, data, { templates: ['a {} square'], shots: [1, 5] });
  t.true(r.zeroShot.top1 >= 0.9, `zero-shot ${r.zeroShot.top1}`);
  t.true(r.knn!.top1 >= 0.9, `k-NN ${r.knn!.top1}`);
  t.true(r.linearProbe!.top1 >= 0.9, `linear probe ${r.linearProbe!.top1}`);
  for (const f of r.fewShot!) t.true(f.nearestMean.mean >= 0.9 && f.linearProbe.mean >= 0.9, `${f.shots}-shot`);
  t.is(r.fewShot![0]!.nearestMean.perSeed.length, 3, 'three seeded draws averaged');
  t.is(r.test.images, 24);
  t.is(r.train!.images, 24);
  t.is(r.linearProbe!.sweep.length, 7, 'the penalty is chosen among seven on a validation split');
  t.deepEqual(
    r.zeroShot.confusion.map((row) => row.reduce((a, b) => a + b, 0)),
    [6, 6, 6, 6],
    'rows: the test images of each class',
  );
  t.is(r.zeroShot.perClass.length, 4);
  t.true(r.notes.some((n) => /top-5 accuracy is 1 by construction/.test(n)));
});

test('shuffled labels stay at chance (4 classes: 25%)', async (t) => {
  const control = { test: shuffled(data.test, 1), train: shuffled(data.train, 2) };
  const r = await evaluateClassification(model, control, { templates: ['a {} square'], shots: [] });
  for (const [name, acc] of [
    ['zero-shot', r.zeroShot.top1],
    ['k-NN', r.knn!.top1],
    ['linear probe', r.linearProbe!.top1],
  ] as const) {
    t.true(acc <= 0.5, `${name} ${acc} on shuffled labels`);
  }
});

test('zero-shot from embeddings agrees with the classifier, and classes without training images are never predicted', async (t) => {
  const r = await evaluateClassification(model, data, { templates: ['a {} square'], shots: [] });
  const classifier = await model.zeroShotClassifier(data.test.classNames, { templates: ['a {} square'] });
  const direct = await classifier.classify(data.test.images as string[], { topK: 1 });
  t.deepEqual(
    [...r.zeroShot.predictions],
    direct.top.map((x) => x.indices[0]),
  );
  const without = selectImages(
    data.train,
    [...data.train.labels.keys()].filter((i) => data.train.labels[i] !== 3),
  );
  const partial = await evaluateClassification(
    model,
    { test: data.test, train: without },
    { shots: [2], templates: ['a {} square'] },
  );
  t.false([...partial.linearProbe!.predictions, ...partial.knn!.predictions].includes(3));
  t.true(partial.notes.some((n) => /no training image of yellow/.test(n)));
});

test('embedImages streams in chunks: the embeddings of encodeImages, unreadable images skipped and counted', async (t) => {
  const dir = tmp('rils-embed-');
  writeFileSync(path.join(dir, 'broken.png'), 'not a png');
  const images = [...data.test.images.slice(0, 5), path.join(dir, 'broken.png'), ...data.test.images.slice(5, 9)];
  const seen: number[] = [];
  async function* stream() {
    yield* images;
  }
  const r = await embedImages(model, stream(), { chunkSize: 3, onProgress: (p) => seen.push(p.done) });
  t.is(r.count, 9);
  t.deepEqual([...r.kept], [0, 1, 2, 3, 4, 6, 7, 8, 9]);
  t.is(r.skipped.length, 1);
  t.regex(r.skipped[0]!.name, /broken\.png/);
  t.deepEqual(seen, [3, 6, 9, 10]);
  const direct = await model.encodeImages(data.test.images.slice(0, 9) as string[]);
  t.true(direct.embeddings.every((v, i) => Math.abs(v - r.embeddings[i]!) < 1e-5));
  await t.throwsAsync(embedImages(model, images, { onError: 'throw' }), {
    instanceOf: RilsInputError,
    message: /Cannot decode .*broken\.png/,
  });
});

test('retrieval ranks: identity pairs give recall@1 = 1; recall never decreases with k; several captions per image', async (t) => {
  const dim = 6,
    n = 6;
  const eye = Float32Array.from({ length: n * dim }, (_, i) => (i % (dim + 1) === 0 ? 1 : 0));
  const identity = await retrievalRanks(
    eye,
    eye,
    Int32Array.from({ length: n }, (_, i) => i),
    dim,
  );
  t.deepEqual(recallAt(identity.imageToText, [1]), { 1: 1 });
  t.deepEqual(recallAt(identity.textToImage, [1]), { 1: 1 });
  const rng = new Random(3),
    m = 40,
    d = 8;
  const unit = (a: Float32Array) => {
    for (let i = 0; i < a.length; i += d) {
      const norm = Math.hypot(...a.subarray(i, i + d));
      for (let j = 0; j < d; j++) a[i + j]! /= norm;
    }
    return a;
  };
  const img = unit(Float32Array.from({ length: m * d }, () => rng.next() - 0.5)),
    txt = unit(Float32Array.from({ length: m * d }, () => rng.next() - 0.5));
  const ranks = await retrievalRanks(
    img,
    txt,
    Int32Array.from({ length: m }, (_, i) => i),
    d,
  );
  const ks = [1, 2, 5, 10, 20, 40];
  for (const direction of [ranks.imageToText, ranks.textToImage]) {
    const r = ks.map((k) => recallAt(direction, [k])[k]!);
    t.true(
      r.every((v, i) => i === 0 || v >= r[i - 1]!),
      `monotone: ${r}`,
    );
    t.is(r.at(-1), 1);
  }
  const paired = await retrievalRecall(img, txt, { count: m, ks });
  t.deepEqual(recallAt(ranks.imageToText, ks), paired.imageToText, "the 1:1 recall is the ranks' recall");
  t.deepEqual(recallAt(ranks.textToImage, ks), paired.textToImage);
  // Image 0 has captions 0 and 1: caption 1 ranks first, so image 0 finds its caption at rank 0 though caption 0 scores 0.
  const two = await retrievalRanks(
    Float32Array.of(1, 0, 0, 1),
    Float32Array.of(0, 1, 1, 0, 0.6, 0.8),
    Int32Array.of(0, 0, 1),
    2,
  );
  t.deepEqual([...two.imageToText], [0, 1]);
  t.deepEqual([...two.textToImage], [1, 0, 0]);
  t.deepEqual([...(await topKByDot(Float32Array.of(1, 0), Float32Array.of(0, 1, 1, 0, 0.5, 0.5), 2, 2))], [1, 2]);
  // Ties go to the lower index; k past the keys gives every key; 3 queries at once.
  const tied = await topKByDot(Float32Array.of(1, 0, 0, 1, 1, 1), Float32Array.of(0.5, 0, 1, 1, 0.5, 0, 0, 2), 2, 9);
  t.deepEqual([...tied], [1, 0, 2, 3, 3, 1, 0, 2, 1, 3, 0, 2]);
  // 13 images (not a multiple of the 8-row blocks) with 1 to 4 captions each, against a plain count.
  const owner = Int32Array.from({ length: 31 }, (_, t) => (t < 13 ? t : rng.int(13)));
  const many = unit(Float32Array.from({ length: 31 * d }, () => rng.next() - 0.5)),
    few = img.subarray(0, 13 * d);
  const s = (i: number, t: number) =>
    few.subarray(i * d, (i + 1) * d).reduce((acc, v, k) => acc + v * many[t * d + k]!, 0);
  const expected = {
    imageToText: Array.from({ length: 13 }, (_, i) => {
      const best = Math.max(...[...owner.keys()].filter((t) => owner[t] === i).map((t) => s(i, t)));
      return [...owner.keys()].filter((t) => s(i, t) > best).length;
    }),
    textToImage: [...owner].map(
      (i, t) => Array.from({ length: 13 }, (_, j) => j).filter((j) => s(j, t) > s(i, t)).length,
    ),
  };
  const got = await retrievalRanks(few, many, owner, d);
  t.deepEqual({ imageToText: [...got.imageToText], textToImage: [...got.textToImage] }, expected);
  // Scored one image row at a time (blocks of 31 scores) or all at once: the same ranks.
  const rowByRow = await retrievalRanks(few, many, owner, d, { blockElements: 31 });
  t.deepEqual({ imageToText: [...rowByRow.imageToText], textToImage: [...rowByRow.textToImage] }, expected);
});

test('evaluateRetrieval: image i with caption i after training; a repeated image key is one image', async (t) => {
  const rng = new Random(9);
  const pairs = COLOUR_NAMES.map((c, i) => ({
    image: { pixels: colourPixels(c, 32, rng), width: 32, height: 32 },
    caption: CAPTIONS[i]!,
    key: c,
  }));
  const r = await evaluateRetrieval(model, pairs);
  t.is(r.imageToText[1], 1);
  t.is(r.textToImage[1], 1);
  t.deepEqual([r.images, r.texts], [4, 4]);
  t.true(r.notes.some((n) => /recall@5 is 1 by construction/.test(n)));
  const repeated = await evaluateRetrieval(model, [...pairs, { ...pairs[0]!, caption: 'a red square' }], {
    ks: [1, 2],
  });
  t.deepEqual([repeated.images, repeated.texts], [4, 5]);
  await t.throwsAsync(evaluateRetrieval(model, pairs.slice(0, 1)), {
    instanceOf: RilsInputError,
    message: /at least 2 images/,
  });
});

test('bad options are typed errors', async (t) => {
  await t.throwsAsync(evaluateClassification(model, data, { shots: [0] }), {
    instanceOf: RilsInputError,
    message: /Expected an integer >= 1 for shots/,
  });
  await t.throwsAsync(evaluateClassification(model, data, { weightDecays: [] }), {
    instanceOf: RilsInputError,
    message: /for weightDecays/,
  });
  await t.throwsAsync(evaluateClassification(model, { test: { ...data.test, labels: new Int32Array(1) } }), {
    instanceOf: RilsInputError,
    message: /test\.labels/,
  });
  await t.throwsAsync(
    evaluateClassification(model, { test: data.test, train: { ...data.train, classNames: ['w', 'x', 'y', 'z'] } }),
    { instanceOf: RilsInputError, message: /class list/ },
  );
});
