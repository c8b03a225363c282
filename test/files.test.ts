// Atomic saves (issue 20, items 9 and 11): through symbolic links, only over regular files, typed errors
// naming the user's path, no temporary file left by a failed write, and none for long by a killed one.
// Needs no native addon: it writes with lib/io/safetensors.ts directly.
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { RilsInputError } from '../lib/errors.js';
import { parseSafetensors, writeSafetensors } from '../lib/io/safetensors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-files-'));
const save = (file: string, value: number) =>
  writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [2], data: new Float32Array([value, value]) }], {
    v: String(value),
  });
const savedValue = (file: string) => parseSafetensors(readFileSync(file)).metadata.v;

test('saving through symbolic links writes where they point, and the links stay links', async (t) => {
  const dir = tmp();
  const real = path.join(dir, 'real.safetensors');
  await save(real, 1);
  symlinkSync('real.safetensors', path.join(dir, 'link.safetensors')); // relative
  symlinkSync(path.join(dir, 'link.safetensors'), path.join(dir, 'chain.safetensors')); // absolute, to a link
  await save(path.join(dir, 'link.safetensors'), 2);
  t.true(lstatSync(path.join(dir, 'link.safetensors')).isSymbolicLink());
  t.is(savedValue(real), '2');
  await save(path.join(dir, 'chain.safetensors'), 3);
  t.true(lstatSync(path.join(dir, 'chain.safetensors')).isSymbolicLink());
  t.is(savedValue(real), '3');
  mkdirSync(path.join(dir, 'sub'));
  symlinkSync('sub/new.safetensors', path.join(dir, 'dangling.safetensors')); // to a file not yet there
  await save(path.join(dir, 'dangling.safetensors'), 4);
  t.true(lstatSync(path.join(dir, 'dangling.safetensors')).isSymbolicLink());
  t.is(savedValue(path.join(dir, 'sub/new.safetensors')), '4');
  t.deepEqual(readdirSync(dir).sort(), [
    'chain.safetensors',
    'dangling.safetensors',
    'link.safetensors',
    'real.safetensors',
    'sub',
  ]);
});

test('a target that is no regular file (folder, FIFO, device) is refused and left as it was', async (t) => {
  const dir = tmp();
  const folder = path.join(dir, 'folder.safetensors');
  mkdirSync(folder);
  const fifo = path.join(dir, 'fifo.safetensors');
  execFileSync('mkfifo', [fifo]);
  const device = path.join(dir, 'device.safetensors');
  symlinkSync('/dev/full', device); // as root, renaming over /dev/full itself would replace the device node
  for (const [target, kind] of [
    [folder, 'a folder'],
    [fifo, 'a named pipe'],
    [device, 'a character device'],
  ] as const) {
    await t.throwsAsync(save(target, 1), {
      instanceOf: RilsInputError,
      message: new RegExp(`^Expected a regular file or a new file for ${target} but it is ${kind}`),
    });
  }
  t.true(statSync(folder).isDirectory());
  t.true(lstatSync(fifo).isFIFO());
  t.true(lstatSync(device).isSymbolicLink() && statSync('/dev/full').isCharacterDevice());
  t.deepEqual(
    readdirSync(dir).sort(),
    ['device.safetensors', 'fifo.safetensors', 'folder.safetensors'],
    'no temporary file left',
  );
});

test("a failed save is a RilsInputError naming the user's path and the cause, never the temporary file", async (t) => {
  const dir = tmp();
  const missing = path.join(dir, 'missing', 'w.safetensors');
  const error = await t.throwsAsync(save(missing, 1), { instanceOf: RilsInputError });
  t.is(error?.message, `Cannot write ${missing}: its folder does not exist (ENOENT); the file is left as it was`);
  writeFileSync(path.join(dir, 'plain'), 'x');
  await t.throwsAsync(save(path.join(dir, 'plain', 'w.safetensors'), 1), {
    instanceOf: RilsInputError,
    message: /a part of its path is not a folder \(ENOTDIR\)/,
  });
  // A full disk: the write itself fails. Injected, as a small file system cannot be mounted here.
  const { writeFileAtomic } = await import('../lib/io/atomic.js');
  const target = path.join(dir, 'w.safetensors');
  await save(target, 5);
  const full = Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC' });
  await t.throwsAsync(
    writeFileAtomic(target, async (file) => {
      await file.write('partial');
      throw full;
    }),
    {
      instanceOf: RilsInputError,
      message: `Cannot write ${target}: no space left on the device (ENOSPC); the file is left as it was`,
    },
  );
  t.is(savedValue(target), '5', 'the previous content is intact');
  t.deepEqual(readdirSync(dir).sort(), ['plain', 'w.safetensors'], 'the failed write removed its temporary file');
});

test('a save keeps the permission bits of the file it replaces', async (t) => {
  const file = path.join(tmp(), 'w.safetensors');
  await save(file, 1);
  chmodSync(file, 0o640);
  await save(file, 2);
  t.is(statSync(file).mode & 0o777, 0o640);
  t.is(savedValue(file), '2');
});

test('a writer killed mid-save leaves a temporary file that the next save of that file removes', async (t) => {
  const dir = tmp();
  const target = path.join(dir, 'ckpt.safetensors');
  await save(target, 1);
  const others = () => readdirSync(dir).filter((n) => n !== 'ckpt.safetensors');
  // The child writes 100 tensors of 1 MB; it is killed as soon as its temporary file appears.
  const child = spawn(process.execPath, ['--import=tsx', path.join(here, 'helpers/slow-writer.ts'), target], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const started = Date.now();
  while (others().length === 0 && Date.now() - started < 20_000) await new Promise((resolve) => setTimeout(resolve, 2));
  child.kill('SIGKILL');
  await exited;
  t.is(others().length, 1, 'the killed writer left its temporary file');
  t.is(savedValue(target), '1', 'the target is intact');
  await save(target, 2);
  t.deepEqual(others(), [], 'the next save removed it');
  t.is(savedValue(target), '2');
  t.false(existsSync(`${target}.tmp`));
});
