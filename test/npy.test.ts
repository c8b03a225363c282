// The .npy writer against NumPy's format 1.0, by parsing what it wrote.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { RilsInputError } from '../lib/index.js';
import { npyBytes, writeNpy } from '../lib/io/npy.js';

interface Parsed {
  version: [number, number];
  headerLength: number;
  header: string;
  dict: Record<string, unknown>;
  data: Float32Array;
}

/** Reads a .npy file as numpy.lib.format does: magic, version, little-endian uint16 length, dict literal. */
function parseNpy(bytes: Buffer): Parsed {
  if (bytes[0] !== 0x93 || bytes.subarray(1, 6).toString('latin1') !== 'NUMPY') throw new Error('bad magic');
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLength).toString('latin1');
  // The dict literal as JSON: quotes, Python booleans, tuples as arrays, no trailing commas.
  const json = header
    .trim()
    .replaceAll("'", '"')
    .replaceAll('False', 'false')
    .replaceAll('True', 'true')
    .replaceAll('(', '[')
    .replaceAll(')', ']')
    .replace(/,\s*([\]}])/g, '$1');
  const data = bytes.subarray(10 + headerLength);
  return {
    version: [bytes[6]!, bytes[7]!],
    headerLength,
    header,
    dict: JSON.parse(json) as Record<string, unknown>,
    data: new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)),
  };
}

for (const shape of [[2, 3], [5], [1, 2, 2], [0, 4], []]) {
  test(`a header NumPy 1.0 reads, for shape [${shape.join(', ')}]`, (t) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: count }, (_, i) => i * 0.5 - 1);
    const npy = parseNpy(npyBytes(values, shape));
    t.deepEqual(npy.version, [1, 0]);
    t.is((10 + npy.headerLength) % 64, 0, 'the data starts 64-byte aligned');
    t.true(npy.header.endsWith('\n'));
    t.regex(npy.header, /^\{.*\} *\n$/, 'the dict, padded with spaces, then a newline');
    t.deepEqual(Object.keys(npy.dict).sort(), ['descr', 'fortran_order', 'shape']);
    t.like(npy.dict, { descr: '<f4', fortran_order: false });
    t.deepEqual(npy.dict.shape, shape);
    if (shape.length === 1) t.true(npy.header.includes(`(${shape[0]},)`), 'a 1-tuple keeps its comma');
    t.deepEqual([...npy.data], [...values]);
  });
}

test('writeNpy writes those bytes; a shape that does not fit the data is refused', async (t) => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rils-npy-')), 'e.npy');
  const values = new Float32Array([1, 2, 3, 4]);
  await writeNpy(file, values, [2, 2]);
  t.true(readFileSync(file).equals(npyBytes(values, [2, 2])));
  t.throws(() => npyBytes(values, [3, 2]), {
    instanceOf: RilsInputError,
    message: /Expected a Float32Array of 6 elements for the data/,
  });
  t.throws(() => npyBytes(values, [-4]), { instanceOf: RilsInputError, message: /Expected dimensions/ });
});
