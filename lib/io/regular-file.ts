/**
 * Reading a file a user names: only a regular file is read. A named pipe (FIFO) would block open()
 * until a writer comes, maybe forever, and a device such as /dev/zero never ends: each is refused,
 * naming the path, before anything waits on it. Files are opened with O_NONBLOCK (which a regular
 * file ignores, and which makes open() of a FIFO return at once) and checked with fstat, so nothing
 * can swap the node between the check and the read. Paths that another library opens itself (sharp,
 * LibTorch) are checked with {@link checkRegularFile} just before.
 * @internal
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

import { RilsError, RilsInputError } from '../errors.js';
import { describeNode } from './atomic.js';

/** The error class a caller's concept uses (RilsInputError for data, RilsWeightsError for weights). */
export type ErrorClass = new (message: string) => RilsError;

const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

function cannotRead(path: string, error: unknown, As: ErrorClass): RilsError {
  const typed = new As(`Cannot read ${path}: ${(error as Error).message}`);
  typed.cause = error;
  return typed;
}

function notRegular(path: string, what: string, info: Stats, As: ErrorClass): RilsError {
  return new As(`Expected ${what} for ${path} but it is ${describeNode(info)}`);
}

/** An open regular file and its size; the caller closes it. `what` names what it should be ("a safetensors file"). */
export async function openRegularFile(
  path: string,
  what: string,
  As: ErrorClass = RilsInputError,
): Promise<{ file: FileHandle; size: number }> {
  let file: FileHandle;
  try {
    file = await open(path, READ_FLAGS);
  } catch (error) {
    throw cannotRead(path, error, As);
  }
  try {
    const info = await file.stat();
    if (!info.isFile()) throw notRegular(path, what, info, As);
    return { file, size: info.size };
  } catch (error) {
    await file.close();
    throw error instanceof RilsError ? error : cannotRead(path, error, As);
  }
}

/** The whole content of a regular file. */
export async function readRegularFile(path: string, what: string, As: ErrorClass = RilsInputError): Promise<Buffer> {
  const { file } = await openRegularFile(path, what, As);
  try {
    return await file.readFile();
  } catch (error) {
    throw cannotRead(path, error, As);
  } finally {
    await file.close();
  }
}

/** {@link readRegularFile} on the calling thread (for command-line arguments read before anything runs). */
export function readRegularFileSync(path: string, what: string, As: ErrorClass = RilsInputError): Buffer {
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (error) {
    throw cannotRead(path, error, As);
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw notRegular(path, what, info, As);
    return readFileSync(fd);
  } catch (error) {
    throw error instanceof RilsError ? error : cannotRead(path, error, As);
  } finally {
    closeSync(fd);
  }
}

/** Checks that `path` is a regular file, for a library that opens it itself (sharp, LibTorch). */
export async function checkRegularFile(path: string, what: string, As: ErrorClass = RilsInputError): Promise<void> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (error) {
    throw cannotRead(path, error, As);
  }
  if (!info.isFile()) throw notRegular(path, what, info, As);
}
