// The safetensors reader refuses what the format forbids (issue 20): overlapping or gapped data_offsets,
// duplicate keys, and files that are no regular file or whose header length cannot be right, before
// reading them. Needs no native addon.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { RilsWeightsError } from '../lib/errors.js';
import { parseSafetensors, readSafetensors } from '../lib/io/safetensors.js';

/** A file from a header written as JSON text (so it can hold duplicate keys) and `dataBytes` bytes of data. */
function file(headerJson: string, dataBytes: number): Buffer {
  const header = Buffer.from(headerJson);
  const out = Buffer.concat([Buffer.alloc(8), header, Buffer.alloc(dataBytes, 1)]);
  out.writeBigUInt64LE(BigInt(header.length));
  return out;
}

const f32 = (begin: number, end: number) =>
  `{"dtype":"F32","shape":[${(end - begin) / 4}],"data_offsets":[${begin},${end}]}`;

test('tensors must tile the data section: no overlap, no gap, nothing after the last', (t) => {
  t.is(
    parseSafetensors(file(`{"a":${f32(0, 8)},"b":${f32(8, 16)},"e":${f32(16, 16)}}`, 16)).tensors.size,
    3,
    'contiguous, with an empty tensor',
  );
  t.is(parseSafetensors(file(`{"b":${f32(8, 16)},"a":${f32(0, 8)}}`, 16)).tensors.size, 2, 'in any header order');
  const refused: [string, number, RegExp][] = [
    [`{"a":${f32(0, 8)},"b":${f32(4, 12)}}`, 12, /the data of 'b' overlaps that of 'a'/],
    [`{"a":${f32(0, 8)},"b":${f32(0, 8)}}`, 8, /the data of '[ab]' overlaps that of '[ab]'/],
    [`{"a":${f32(0, 8)},"b":${f32(12, 20)}}`, 20, /4 bytes before the data of 'b' belong to no tensor/],
    [`{"a":${f32(4, 12)}}`, 12, /4 bytes before the data of 'a' belong to no tensor/],
    [`{"a":${f32(0, 8)}}`, 12, /4 bytes after the last tensor's data belong to no tensor/],
  ];
  for (const [header, bytes, message] of refused)
    t.throws(() => parseSafetensors(file(header, bytes)), { instanceOf: RilsWeightsError, message }, header);
});

test('a key given twice is refused (JSON.parse would keep the last silently)', (t) => {
  for (const [header, key] of [
    [`{"a":${f32(0, 8)},"a":${f32(0, 8)}}`, 'a'],
    [`{"__metadata__":{"step":"1","step":"2"},"a":${f32(0, 8)}}`, 'step'],
    [`{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 'dtype'],
    [`{"\\u0061":${f32(0, 8)},"a":${f32(0, 8)}}`, 'a'], // the same key, escaped
  ] as const) {
    t.throws(
      () => parseSafetensors(file(header, 8)),
      { instanceOf: RilsWeightsError, message: new RegExp(`the header names '${key}' twice`) },
      header,
    );
  }
  const fine = `{"__metadata__":{"a":"x","b":"{\\"a\\": 1, \\"a\\": 2}"},"a":${f32(0, 8)}}`;
  t.is(
    parseSafetensors(file(fine, 8)).metadata.b,
    '{"a": 1, "a": 2}',
    'a string that looks like JSON is only a string',
  );
});

test("header lengths past the format's limit or the file are refused before the file is read", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-st-'));
  const huge = path.join(dir, 'huge.safetensors');
  // A sparse 3 GB file whose header claims 2 GB: nothing of it may be read.
  const fd = openSync(huge, 'w');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(2n ** 31n);
  writeSync(fd, length, 0, 8, 0);
  writeSync(fd, Buffer.from('{'), 0, 1, 3 * 2 ** 30);
  closeSync(fd);
  const before = process.memoryUsage().rss;
  await t.throwsAsync(readSafetensors(huge), {
    instanceOf: RilsWeightsError,
    message: /header length 2147483648 is over the format's limit of 100000000 bytes/,
  });
  t.true(process.memoryUsage().rss - before < 500 * 2 ** 20, 'the file was not read');
  const short = path.join(dir, 'short.safetensors');
  writeFileSync(short, file(`{"a":${f32(0, 8)}}`, 8).subarray(0, 20));
  await t.throwsAsync(readSafetensors(short), {
    instanceOf: RilsWeightsError,
    message: /header length \d+ exceeds the file \(20 bytes\)/,
  });
});

test('a device, a FIFO or a folder is refused at once, without reading it', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-st-'));
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  mkdirSync(path.join(dir, 'folder'));
  // In a child with a time limit: before the fix, opening the FIFO waited for a writer forever and
  // /dev/zero was read until memory ran out.
  const script = `
    import { readSafetensors } from ${JSON.stringify(new URL('../lib/io/safetensors.js', import.meta.url).href)};
    for (const p of process.argv.slice(1)) {
      try { await readSafetensors(p); console.log('read ' + p); } catch (e) { console.log(e.constructor.name + ': ' + e.message); }
    }`;
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, fifo, '/dev/zero', path.join(dir, 'folder')],
    { encoding: 'utf8', timeout: 20_000 },
  );
  t.is(r.signal, null, `timed out: ${r.stdout}`);
  t.deepEqual(r.stdout.trim().split('\n'), [
    `RilsWeightsError: Expected a safetensors file for ${fifo} but it is a named pipe (FIFO)`,
    'RilsWeightsError: Expected a safetensors file for /dev/zero but it is a character device',
    `RilsWeightsError: Expected a safetensors file for ${path.join(dir, 'folder')} but it is a folder`,
  ]);
});
