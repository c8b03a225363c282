/**
 * The safetensors format (spec WEIGHTS.md): u64 LE header length n, n bytes of JSON, raw data.
 * Written here rather than taken from a package: the npm packages for it are either abandoned or
 * pull in a whole tensor library, and the format is a 40-line contract that needs strict checks.
 * @module
 */
import type { FileHandle } from 'node:fs/promises';

import { RilsWeightsError } from '../errors.js';
import { writeFileAtomic } from './atomic.js';
import { openRegularFile } from './regular-file.js';

/** Element types of the format. */
export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};
/** The format's cap on the header (safetensors' MAX_HEADER_SIZE): larger ones are refused unread. */
const MAX_HEADER_BYTES = 100_000_000;

/** One tensor: its raw little-endian bytes. */
export interface SafetensorsEntry {
  /** Element type. */
  dtype: SafetensorsDtype;
  /** Dimensions (`[]` for a scalar). */
  shape: number[];
  /** Raw bytes (a view into the file buffer). */
  bytes: Uint8Array;
}

/** A parsed file. */
export interface SafetensorsFile {
  /** Tensors by name. */
  tensors: Map<string, SafetensorsEntry>;
  /** The optional `__metadata__` strings. */
  metadata: Record<string, string>;
  /** The whole data section (every tensor's bytes, in file order). */
  data: Uint8Array;
}

function corrupt(path: string, why: string): RilsWeightsError {
  return new RilsWeightsError(`${path} is not a valid safetensors file: ${why}`);
}

/** Checks the u64 header length `n` of a file of `size` bytes. */
function checkHeaderLength(n: bigint, size: number, path: string): number {
  if (n > BigInt(MAX_HEADER_BYTES))
    throw corrupt(path, `header length ${n} is over the format's limit of ${MAX_HEADER_BYTES} bytes`);
  if (8 + Number(n) > size) throw corrupt(path, `header length ${n} exceeds the file (${size} bytes)`);
  return Number(n);
}

/** The first key that appears twice in one object of a valid JSON text (JSON.parse keeps the last silently). */
function duplicateKey(json: string): string | undefined {
  const objects: (Set<string> | null)[] = []; // the keys of each open object; null for an array
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '{' || c === '[') objects.push(c === '{' ? new Set() : null);
    else if (c === '}' || c === ']') objects.pop();
    else if (c === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      let next = end + 1;
      while (json[next] === ' ' || json[next] === '\n' || json[next] === '\r' || json[next] === '\t') next++;
      const keys = objects.at(-1);
      if (keys && json[next] === ':') {
        const raw = json.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      i = end;
    }
  }
  return undefined;
}

/**
 * Checks that the tensors' byte ranges tile the data section exactly, as the format requires: in
 * offset order each begins where the previous ends, and the last ends with the file.
 */
function checkTiling(ranges: { name: string; begin: number; end: number }[], size: number, path: string): void {
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let previous = '';
  for (const { name, begin, end } of ranges) {
    if (begin < at) throw corrupt(path, `the data of '${name}' overlaps that of '${previous}'`);
    if (begin > at) throw corrupt(path, `${begin - at} bytes before the data of '${name}' belong to no tensor`);
    [at, previous] = [end, name];
  }
  if (at !== size) throw corrupt(path, `${size - at} bytes after the last tensor's data belong to no tensor`);
}

/** Where each tensor's bytes lie in the data section, and the metadata: a parsed, checked header. */
export interface SafetensorsIndex {
  tensors: Map<string, { dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }>;
  metadata: Record<string, string>;
  /** Bytes before the data section: 8 + the header's length. */
  dataOffset: number;
}

/** Parses and checks the header's JSON for a data section of `dataLength` bytes. */
function parseHeader(bytes: Uint8Array, dataLength: number, path: string): SafetensorsIndex {
  let json: string;
  let header: unknown;
  try {
    json = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    header = JSON.parse(json);
  } catch (error) {
    throw corrupt(path, `header is not JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw corrupt(path, 'header is not an object');
  const duplicate = duplicateKey(json);
  if (duplicate !== undefined) throw corrupt(path, `the header names '${duplicate}' twice`);
  const index: SafetensorsIndex = { tensors: new Map(), metadata: {}, dataOffset: 8 + bytes.byteLength };
  for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') index.metadata = checkMetadata(info, path);
    else index.tensors.set(name, checkEntry(name, info, dataLength, path));
  }
  checkTiling(
    [...index.tensors].map(([name, t]) => ({ name, begin: t.begin, end: t.end })),
    dataLength,
    path,
  );
  return index;
}

function checkMetadata(info: unknown, path: string): Record<string, string> {
  if (
    info !== null &&
    typeof info === 'object' &&
    !Array.isArray(info) &&
    Object.values(info).every((v) => typeof v === 'string')
  ) {
    return info as Record<string, string>;
  }
  throw corrupt(path, '__metadata__ must map strings to strings');
}

function checkEntry(name: string, info: unknown, dataLength: number, path: string) {
  const entry = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  const dtype = entry?.dtype as SafetensorsDtype;
  if (!entry || typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype))
    throw corrupt(path, `bad dtype for '${name}'`);
  const shape = entry.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw corrupt(path, `bad shape for '${name}'`);
  }
  const offsets = entry.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw corrupt(path, `bad data_offsets for '${name}'`);
  }
  const [begin, end] = offsets as [number, number];
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  if (end < begin || end > dataLength) throw corrupt(path, `data of '${name}' lies outside the file (truncated?)`);
  if (end - begin !== numel * DTYPE_BYTES[dtype]) {
    throw corrupt(path, `'${name}' has ${end - begin} bytes for shape [${shape.join(', ')}] of ${dtype}`);
  }
  return { dtype, shape: shape as number[], begin, end };
}

/** Parses a file's bytes, checking every offset and size. */
export function parseSafetensors(buffer: Uint8Array, path = 'buffer'): SafetensorsFile {
  if (buffer.byteLength < 8) throw corrupt(path, `${buffer.byteLength} bytes is too short for a header`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const n = checkHeaderLength(view.getBigUint64(0, true), buffer.byteLength, path);
  const data = buffer.subarray(8 + n);
  const index = parseHeader(buffer.subarray(8, 8 + n), data.byteLength, path);
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, t] of index.tensors)
    tensors.set(name, { dtype: t.dtype, shape: t.shape, bytes: data.subarray(t.begin, t.end) });
  return { tensors, metadata: index.metadata, data };
}

/** Fills `buffer` from the file at `position`, or fails naming the file when it ends first (it shrank while read). */
async function readExactly(file: FileHandle, buffer: Uint8Array, position: number, path: string): Promise<void> {
  for (let done = 0; done < buffer.byteLength;) {
    const { bytesRead } = await file.read(buffer, done, buffer.byteLength - done, position + done);
    if (bytesRead === 0) throw corrupt(path, 'the file ended while it was read (truncated by another process?)');
    done += bytesRead;
  }
}

/**
 * Reads and parses a file (off the JS thread: fs reads run on libuv's pool). Only a regular file is
 * read (a device such as /dev/zero never ends, and opening a FIFO would wait for a writer), and only
 * once its header length fits the format and the file.
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return withSafetensorsFile(path, async (file, size) => {
    const buffer = Buffer.allocUnsafe(size);
    await readExactly(file, buffer, 0, path);
    return parseSafetensors(buffer, path);
  });
}

/**
 * Reads and checks only a file's header: where each tensor lies, read later by offset (a large
 * checkpoint streamed into a model, never whole in memory).
 */
export async function readSafetensorsIndex(path: string): Promise<SafetensorsIndex> {
  return withSafetensorsFile(path, async (file, size, n) => {
    const header = new Uint8Array(n);
    await readExactly(file, header, 8, path);
    return parseHeader(header, size - 8 - n, path);
  });
}

/** Opens a regular file whose header length fits the format and the file, then `read(file, size, n)`. */
async function withSafetensorsFile<T>(
  path: string,
  read: (file: FileHandle, size: number, n: number) => Promise<T>,
): Promise<T> {
  const { file, size } = await openRegularFile(path, 'a safetensors file', RilsWeightsError);
  try {
    if (size < 8) throw corrupt(path, `${size} bytes is too short for a header`);
    const length = new Uint8Array(8);
    await readExactly(file, length, 0, path);
    const n = checkHeaderLength(new DataView(length.buffer).getBigUint64(0, true), size, path);
    return await read(file, size, n);
  } catch (error) {
    if (error instanceof RilsWeightsError) throw error;
    throw new RilsWeightsError(`Cannot read ${path}: ${(error as Error).message}`);
  } finally {
    await file.close();
  }
}

/** A tensor to write. */
export interface TensorToWrite {
  /** Header name. */
  name: string;
  /** Element type of `data`. */
  dtype: SafetensorsDtype;
  /** Dimensions; their product times the element size must be `data.byteLength`. */
  shape: readonly number[];
  /** Little-endian bytes, C order. */
  data: ArrayBufferView;
}

/**
 * Writes a file atomically (lib/io/atomic.ts: a temporary file in the same folder, fsync, rename), so a
 * crash never leaves a half-written file under `path`; through symbolic links, only over a regular file.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf-8');
  const pad = (8 - (json.byteLength % 8)) % 8; // keeps the data section 8-byte aligned
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.byteLength));
  await writeFileAtomic(path, async (file) => {
    await file.write(length);
    await file.write(json);
    for (const t of tensors) await file.write(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  });
}

/** Little-endian F32 bytes as a Float32Array (copied only when the view is misaligned). */
export function asFloat32(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(new Uint8Array(bytes).buffer); // a copy (Buffer.slice would be a view)
}
