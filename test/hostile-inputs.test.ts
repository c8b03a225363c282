// Hostile data, options and command lines (issue 23, items 2, 5, 6, 8, 12, 13, 14): FIFOs where files
// are read, folders that link back into themselves, outputs that are inputs, option names inherited
// from Object.prototype, training sets with nothing to train on, numbers that overflow the loss.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import {
  ByteTokenizer,
  ClipTokenizer,
  Rils,
  RilsInputError,
  evaluateClassification,
  fit,
  loadImages,
  openDataset,
  openLabelledImages,
  readCaptionIndex,
  readImageFolder,
} from '../lib/index.js';
import { rilsRun } from './helpers/cli.js';
import { COLOUR_NAMES, writeColourFolder } from './helpers/colours.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-hostile-inputs-'));
const weights = path.join(dir, 'w.safetensors');
const fifo = path.join(dir, 'fifo');
const colours = path.join(dir, 'colours');

test.before(async () => {
  const tokenizer = new ByteTokenizer({ contextLength: 16 });
  const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, tokenizer, seed: 0 });
  await model.saveWeights(weights);
  model.dispose();
  execFileSync('mkfifo', [fifo]);
  await writeColourFolder(colours, 2, 0, 32);
});
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** Exit status 2 and one line "rils: …" matching `message`. */
async function failsClearly(t: import('ava').ExecutionContext, args: string[], message: RegExp) {
  const r = await rilsRun(args);
  t.is(r.code, 2, `rils ${args.join(' ')}: ${r.stderr}`);
  t.regex(r.stderr, /^rils: [^\n]*\n$/, 'one line');
  t.regex(r.stderr, message);
}

test('FIFOs where the library reads files: refused or skipped at once, never waited on', async (t) => {
  const started = performance.now();
  await failsClearly(
    t,
    ['embed', '--weights', fifo, '--out', path.join(dir, 'e.npy'), path.join(colours, 'red', '0.png')],
    /Expected a weight file \(safetensors or TorchScript\) or a Hugging Face folder for .*fifo but it is a named pipe \(FIFO\)/,
  );
  const jsonl = path.join(dir, 'index.jsonl');
  execFileSync('mkfifo', [jsonl]);
  await t.throwsAsync(readCaptionIndex(jsonl), {
    instanceOf: RilsInputError,
    message: /Expected a JSONL dataset index for .*index\.jsonl but it is a named pipe/,
  });
  await t.throwsAsync(ClipTokenizer.load(fifo), { instanceOf: RilsInputError, message: /named pipe/ });
  await t.throwsAsync(readImageFolder(colours, { classNames: fifo }), {
    instanceOf: RilsInputError,
    message: /named pipe/,
  });
  await t.throwsAsync(loadImages([fifo], 32), {
    instanceOf: RilsInputError,
    message: /Cannot decode .*fifo: Expected an image file for .* but it is a named pipe/,
  });
  // A training image that is a FIFO: skipped and counted like an unreadable one.
  const captioned = path.join(dir, 'captioned');
  mkdirSync(captioned);
  for (const name of ['a', 'b']) writeFileSync(path.join(captioned, `${name}.txt`), `caption ${name}`);
  execFileSync('cp', [path.join(colours, 'red', '0.png'), path.join(captioned, 'a.png')]);
  execFileSync('mkfifo', [path.join(captioned, 'b.png')]);
  const data = await openDataset(captioned, {
    tokenizer: () => new ByteTokenizer({ contextLength: 16 }),
    batchSize: 4,
    seed: 0,
    size: 32,
  });
  await data.source.next();
  t.true(data.skips().samples > 0, 'the FIFO image is skipped');
  t.true(performance.now() - started < 60_000);
});

test('a templates file that is a FIFO: the command fails at once', async (t) => {
  const templates = path.join(dir, 'templates.txt');
  execFileSync('mkfifo', [templates]);
  await failsClearly(
    t,
    [
      'zeroshot',
      '--weights',
      weights,
      '--classes',
      'a,b',
      '--templates',
      templates,
      path.join(colours, 'red', '0.png'),
    ],
    /Expected a templates file for .*templates\.txt but it is a named pipe/,
  );
});

test('a folder whose class folders link back into it: links to folders are not followed, each file counts once', async (t) => {
  const root = path.join(dir, 'loops');
  await writeColourFolder(root, 2, 1, 32);
  symlinkSync('..', path.join(root, 'red', 'up'));
  symlinkSync('.', path.join(root, 'blue', 'self'));
  symlinkSync(path.join(root, 'green', '0.png'), path.join(root, 'green', 'again.png'));
  execFileSync('ln', [path.join(root, 'blue', '1.png'), path.join(root, 'yellow', 'hard.png')]);
  const folder = await readImageFolder(root);
  t.is(folder.images.images.length, 8, '2 images of each of the 4 colours, each once');
  t.deepEqual([...folder.images.labels], [0, 0, 1, 1, 2, 2, 3, 3]);
  t.is(folder.duplicates, 2, 'green/again.png is green/0.png, yellow/hard.png is blue/1.png');
  t.deepEqual(folder.linkedFolders.map((f) => path.relative(root, f)).sort(), ['blue/self', 'red/up']);
  const { test: testSet, train, notes } = await openLabelledImages(root);
  const files = (s: { images: readonly unknown[] }) => new Set(s.images as string[]);
  t.is(testSet.images.length + train.images.length, 8);
  t.false(
    [...files(testSet)].some((f) => files(train).has(f)),
    'no file in both sets',
  );
  t.true(notes.some((n) => /symbolic link\(s\) to folders .* not followed/.test(n)));
  // A training folder that is the test folder: its images are test images, left out of training.
  const same = await openLabelledImages(colours, { train: path.join(colours, '..', 'colours') }).catch((e: Error) => e);
  t.true(
    same instanceof RilsInputError && /Expected at least 1 class folders with images/.test(same.message),
    String(same),
  );
});

test('outputs that are inputs are refused before any work, by every command', async (t) => {
  const index = path.join(dir, 'cap.jsonl');
  writeFileSync(index, `${JSON.stringify({ image: path.join(colours, 'red', '0.png'), caption: 'red' })}\n`);
  const before = readFileSync(index);
  const image = path.join(colours, 'red', '1.png');
  await failsClearly(
    t,
    ['train', '--data', index, '--out', index, '--steps', '1'],
    /none of the inputs for --out but received ".*cap\.jsonl", which is --data/,
  );
  await failsClearly(
    t,
    [
      'train',
      '--data',
      colours,
      '--out',
      path.join(dir, 'x.st'),
      '--checkpoint',
      path.join(dir, 'x.st'),
      '--steps',
      '1',
    ],
    /for --checkpoint but received ".*x\.st", the path of --out too/,
  );
  await failsClearly(
    t,
    ['eval', '--weights', weights, '--data', colours, '--report', image],
    /for --report but received ".*1\.png", a file inside --data/,
  );
  await failsClearly(t, ['eval', '--weights', weights, '--data', colours, '--out', weights], /which is --weights/);
  await failsClearly(
    t,
    ['embed', '--weights', weights, '--out', image, image],
    /for --out but received ".*1\.png", which is IMAGE/,
  );
  await failsClearly(t, ['convert', '--weights', weights, '--out', weights], /which is --weights/);
  const link = path.join(dir, 'link.jsonl');
  symlinkSync(index, link);
  await failsClearly(t, ['train', '--data', index, '--metrics', link, '--steps', '1'], /which is --data/);
  t.deepEqual(readFileSync(index), before, 'the dataset is untouched');
});

test('convert --layout hf onto an existing file: a typed error, exit 2', async (t) => {
  await failsClearly(
    t,
    ['convert', '--weights', weights, '--layout', 'hf', '--out', path.join(colours, 'red', '0.png')],
    /Expected a folder or a new path for --out but received the file/,
  );
  const clip = await Rils.create({ preset: 'clip_micro', reconWeight: 0, seed: 0 });
  const file = path.join(dir, 'plain-file');
  writeFileSync(file, 'x');
  await t.throwsAsync(clip.saveWeights(file, { layout: 'hf' }), {
    instanceOf: RilsInputError,
    message: /Expected a folder or a new path for the Hugging Face layout/,
  });
  clip.dispose();
});

test('option names inherited from Object.prototype are unknown options; inherited values are not read', async (t) => {
  for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', '__defineGetter__']) {
    const options = JSON.parse(`{"preset": "micro", "${name}": 1}`) as Record<string, unknown>;
    await t.throwsAsync(
      Rils.create(options),
      { instanceOf: RilsInputError, message: new RegExp(`Unknown option '${name}'`) },
      name,
    );
  }
  const inherited = Object.create({ visionWidth: 1e9 }) as Record<string, unknown>;
  inherited.preset = 'micro';
  inherited.vocabSize = 300;
  const model = await Rils.create(inherited);
  t.is(model.config.visionWidth, 128, 'an inherited option is not read');
  model.dispose();
  await failsClearly(
    t,
    ['train', '--data', 'mnist', '--set', 'constructor=1', '--steps', '1'],
    /Expected field=value .*for --set but received "constructor=1"/,
  );
  const r = await rilsRun(['constructor']);
  t.is(r.code, 2, 'an unknown command, not a crash');
});

test("a training set with no image of the test set's classes: a note, no wasted encoding, no wrong error", async (t) => {
  const model = await Rils.fromWeights(weights);
  const other = path.join(dir, 'other');
  for (const name of ['cyan', 'magenta']) {
    mkdirSync(path.join(other, name), { recursive: true });
    execFileSync('cp', [path.join(colours, 'red', '0.png'), path.join(other, name, '0.png')]);
  }
  const disjoint = await openLabelledImages(colours, { train: other });
  t.is(disjoint.train.images.length, 0);
  let trainEncoded = 0;
  const results = await evaluateClassification(model, disjoint, {
    onProgress: (set) => (trainEncoded += set === 'train' ? 1 : 0),
  });
  t.is(trainEncoded, 0, 'no training image was encoded');
  t.true(
    results.notes.some((n) => /no training image of the test set's classes/.test(n)),
    results.notes.join('; '),
  );
  t.is(results.knn, undefined);
  const r = await rilsRun(['eval', '--weights', weights, '--data', other, '--train', colours, '--shots', 'none']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /no training image of the test set's classes/);
  model.dispose();
});

test('a split where every class has one image: zero-shot runs, the frozen protocols are left out with a note', async (t) => {
  const single = path.join(dir, 'one-each');
  for (let c = 0; c < 40; c++) {
    mkdirSync(path.join(single, `class ${c}`), { recursive: true });
    writeFileSync(
      path.join(single, `class ${c}`, '0.png'),
      readFileSync(path.join(colours, COLOUR_NAMES[c % 4]!, `${c % 2}.png`)),
    );
  }
  const r = await rilsRun(['eval', '--weights', weights, '--data', single, '--shots', 'none']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /every class of .* has a single image/);
  t.regex(r.stdout, /zero-shot +top-1/);
});

test('numbers that overflow the loss are bounded in the schema', async (t) => {
  await failsClearly(
    t,
    ['train', '--data', 'mnist', '--set', 'reconWeight=1e308', '--steps', '1'],
    /Expected a number in \[0, 10000\] for --set reconWeight but received "1e308"/,
  );
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ tauStudent: 1e-300 }, /Expected a number >= 0\.0001 for tauStudent/],
    [{ tauTeacher: 1e-300 }, /Expected a number >= 0\.0001 for tauTeacher/],
    [{ lr: 1e30 }, /Expected a number in \[0, 1\] for lr/],
    [{ eps: 1e-300 }, /Expected a number >= 1e-30 for eps/],
    [{ lr: 1, weightDecay: 2 }, /Expected lr × weightDecay <= 1/],
  ];
  for (const [options, message] of cases) {
    await t.throwsAsync(
      Rils.create({ preset: 'micro', vocabSize: 300, ...options }),
      { instanceOf: RilsInputError, message },
      JSON.stringify(options),
    );
  }
  // At the bounds, every step's loss is finite.
  const model = await Rils.create({
    preset: 'micro',
    vocabSize: 300,
    seed: 0,
    reconWeight: 1e4,
    tauStudent: 1e-4,
    tauTeacher: 1e-4,
    lr: 1,
    weightDecay: 1,
    eps: 1e-30,
  });
  const { randomBatch } = await import('./helpers/batches.js');
  const batch = randomBatch(model, 8);
  const result = await fit(
    model,
    { next: async () => ({ ...batch, position: null }), restore: () => undefined },
    { steps: 5 },
  );
  t.is(result.stepsDone, 5);
  t.true(Number.isFinite(result.last!.loss));
  model.dispose();
});
