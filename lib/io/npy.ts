/**
 * NumPy's `.npy` format 1.0 for float32 arrays (`numpy.load` reads the file as is): the magic
 * `\x93NUMPY`, version 1.0, the header's length, then a Python dict literal padded with spaces so
 * that the data starts 64-byte aligned.
 * @internal
 * @module
 */
import { writeFile } from 'node:fs/promises';

import { invalid } from '../validate.js';

const MAGIC = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0]); // magic, then version 1.0

/** The dict literal of the header; a 1-tuple needs its trailing comma to be a tuple in Python. */
function headerDict(shape: readonly number[]): string {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  return `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
}

/** The bytes of a `.npy` file holding `data` (row-major float32) with `shape`. */
export function npyBytes(data: Float32Array, shape: readonly number[]): Buffer {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw invalid('dimensions that are integers >= 0', 'the shape', shape);
  const count = shape.reduce((a, b) => a * b, 1);
  if (!(data instanceof Float32Array) || data.length !== count)
    throw invalid(`a Float32Array of ${count} elements`, 'the data', data);
  const dict = headerDict(shape);
  // The header (its length field, the dict, the padding and a newline) ends on a multiple of 64.
  const unpadded = MAGIC.length + 2 + dict.length + 1;
  const header = `${dict}${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  const length = Buffer.alloc(2);
  length.writeUInt16LE(header.length);
  return Buffer.concat([
    MAGIC,
    length,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}

/** Writes `data` with `shape` as a `.npy` file. */
export async function writeNpy(file: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  await writeFile(file, npyBytes(data, shape));
}
