/**
 * Opening a weight file or folder: what it is stored as (a Hugging Face folder, a zip, a safetensors
 * file), its tensors (their bytes read only when needed), its metadata, and the layout the registry
 * (lib/weights/layouts.ts) recognises in them. A safetensors file's tensors are read from the file a
 * few at a time; a TorchScript archive is read whole, by LibTorch.
 * @internal
 * @module
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';

import { native } from '../addon/binding.js';
import { RilsWeightsError, fromNative } from '../errors.js';
import { openRegularFile } from '../io/regular-file.js';
import { readSafetensorsIndex } from '../io/safetensors.js';
import { readHfClipConfig } from './clip-config.js';
import type { HfClipSettings } from './clip-config.js';
import { readJsonObject } from './hf-files.js';
import { LAYOUTS, detectLayout, whereOf } from './layouts.js';
import type { Layout } from './layouts.js';

/** One tensor of a checkpoint, its bytes read when they are needed. */
export interface StoredTensor {
  name: string;
  /** The safetensors dtype name: F32, F16, BF16, … */
  dtype: string;
  shape: number[];
  byteLength: number;
  /** Its bytes: read from the file into `into` (of byteLength bytes), or already in memory. */
  bytes(into: Uint8Array): Promise<Uint8Array>;
}

/** What an opened file shows before its layout is known. */
export interface OpenedFile {
  path: string;
  /** How it is stored: a folder (Hugging Face's), a zip (a TorchScript archive) or a safetensors file. */
  container: 'folder' | 'zip' | 'safetensors';
  tensors: StoredTensor[];
  /** The safetensors metadata (`format`, and rils's config, training options and tokenizer). */
  metadata: Record<string, string>;
  /** What rils reads of a Hugging Face folder's config.json. */
  hfConfig?: HfClipSettings | undefined;
  /** A Hugging Face folder holding vocab.json and merges.txt: its tokenizer. */
  hfTokenizer?: { vocab: string; merges: string } | undefined;
  close(): Promise<void>;
}

/** An opened checkpoint and its layout; `close()` releases the file. */
export interface Checkpoint extends OpenedFile {
  layout: Layout;
  /** How errors name the file: "FILE (read as LAYOUT)", or FILE alone when the file names its own layout. */
  where: string;
}

/** Opens a checkpoint file or Hugging Face folder and recognises its layout. */
export async function openCheckpoint(file: string): Promise<Checkpoint> {
  const opened = await openFile(file);
  const layout = detectLayout(opened);
  return { ...opened, layout, where: whereOf(file, layout) };
}

async function openFile(file: string): Promise<OpenedFile> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    throw new RilsWeightsError(`Cannot read ${file}: ${(error as Error).message}`);
  }
  if (info.isDirectory()) return openHfFolder(file);
  const head = new Uint8Array(4);
  const { file: fd } = await openRegularFile(
    file,
    'a weight file (safetensors or TorchScript) or a Hugging Face folder',
    RilsWeightsError,
  );
  await fd
    .read(head, 0, 4, 0)
    .catch((error: Error) => {
      throw new RilsWeightsError(`Cannot read ${file}: ${error.message}`);
    })
    .finally(() => fd.close());
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4) return openTorchScript(file); // a zip
  return openSafetensors(file);
}

/** A folder is Hugging Face's: model.safetensors, config.json, and its tokenizer's files when there. */
async function openHfFolder(dir: string): Promise<OpenedFile> {
  const file = path.join(dir, 'model.safetensors');
  try {
    await stat(file);
  } catch {
    throw new RilsWeightsError(
      `${dir} (read as ${LAYOUTS.hf.description}) has no model.safetensors: rils reads a Hugging Face ` +
        'CLIP folder with one safetensors file (not sharded ones, not pytorch_model.bin)',
    );
  }
  const json = await readJsonObject(path.join(dir, 'config.json'));
  const hfConfig = json && readHfClipConfig(json, path.join(dir, 'config.json'));
  const vocab = path.join(dir, 'vocab.json'),
    merges = path.join(dir, 'merges.txt');
  const hfTokenizer = await Promise.all([stat(vocab), stat(merges)]).then(
    () => ({ vocab, merges }),
    () => undefined,
  );
  const c = await openSafetensors(file);
  return { ...c, path: dir, container: 'folder', hfConfig, hfTokenizer };
}

async function openSafetensors(file: string): Promise<OpenedFile> {
  const index = await readSafetensorsIndex(file);
  const { file: fd } = await openRegularFile(file, 'a safetensors file', RilsWeightsError);
  const tensors = [...index.tensors].map(([name, t]) => ({
    name,
    dtype: t.dtype,
    shape: t.shape,
    byteLength: t.end - t.begin,
    bytes: async (out: Uint8Array) => {
      const { bytesRead } = await fd.read(out, 0, out.byteLength, index.dataOffset + t.begin);
      if (bytesRead !== out.byteLength) throw new RilsWeightsError(`${file}: '${name}' is cut short (truncated file?)`);
      return out;
    },
  }));
  return { path: file, container: 'safetensors', tensors, metadata: index.metadata, close: () => fd.close() };
}

async function openTorchScript(file: string): Promise<OpenedFile> {
  let entries;
  try {
    entries = await native.readTorchScript(path.resolve(file));
  } catch (error) {
    const typed = fromNative(error); // LibTorch running out of memory on a hostile archive is the file's fault too
    throw typed instanceof RilsWeightsError
      ? typed
      : new RilsWeightsError(`${whereOf(file, 'torchscript')}: ${typed.message}`);
  }
  const tensors = entries.map((e) => ({
    name: e.name,
    dtype: e.dtype,
    shape: e.shape,
    byteLength: e.data.byteLength,
    bytes: async () => new Uint8Array(e.data),
  }));
  return { path: file, container: 'zip', tensors, metadata: {}, close: async () => undefined };
}
