/**
 * Pretrained CLIP checkpoints in the layouts users download: OpenAI/open_clip safetensors, a
 * Hugging Face `CLIPModel` folder, OpenAI's TorchScript archives (read by LibTorch). A checkpoint
 * is opened, its layout recognised and checked against OpenAI's CLIP ViT from the tensors' names
 * and shapes alone, then streamed into a model a few tensors at a time: the whole file is never in
 * memory beside the model (a TorchScript archive is, as LibTorch reads it whole).
 * @internal
 * @module
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';

import { native } from '../addon/binding.js';
import { RilsInputError, RilsWeightsError, fromNative } from '../errors.js';
import { openRegularFile } from '../io/regular-file.js';
import { readSafetensorsIndex } from '../io/safetensors.js';
import { fineTuningSchedule } from '../model/options.js';
import type { Activation, RilsOptions } from '../model/options.js';
import { BUNDLED_CLIP_VOCAB, CLIP_VOCAB_SIZE, ClipTokenizer } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { ParameterInfo } from '../types.js';
import { inferClipConfig, readHfClipConfig } from './clip-config.js';
import type { ClipConfig, HfClipSettings } from './clip-config.js';
import { clipParameterNames, fromHfName, isExtraTensor, isFeatureDecoderTensor } from './clip-names.js';
import type { NamePlacement } from './clip-names.js';
import { hfWordOrByteTokenizer, preprocessorFields, readJsonObject } from './hf-files.js';
import { WEIGHTS_FORMAT } from './rils.js';
import { checkModelFits, numel } from './size.js';

/** How a checkpoint lays out its tensors. */
export type Layout = 'rils' | 'openai' | 'hf' | 'torchscript';

const LAYOUT_NAMES: Readonly<Record<Layout, string>> = {
  rils: "rils's own weights", openai: 'OpenAI/open_clip CLIP safetensors', hf: 'a Hugging Face CLIPModel',
  torchscript: "a TorchScript archive (OpenAI's clip.load)",
};

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

/** An opened checkpoint: its layout, tensors and metadata; `close()` releases the file. */
export interface Checkpoint {
  path: string;
  layout: Layout;
  tensors: StoredTensor[];
  metadata: Record<string, string>;
  /** What rils reads of a Hugging Face folder's config.json. */
  hfConfig?: HfClipSettings | undefined;
  /** A Hugging Face folder holding vocab.json and merges.txt: its tokenizer. */
  hfTokenizer?: { vocab: string; merges: string } | undefined;
  close(): Promise<void>;
}

/** "FILE (read as LAYOUT)": how errors name the file. */
export const where = (c: Pick<Checkpoint, 'path' | 'layout'>) => `${c.path} (read as ${LAYOUT_NAMES[c.layout]})`;

/** Opens a checkpoint file or Hugging Face folder and recognises its layout. */
export async function openCheckpoint(file: string): Promise<Checkpoint> {
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    throw new RilsWeightsError(`Cannot read ${file}: ${(error as Error).message}`);
  }
  if (info.isDirectory()) return openHfFolder(file);
  const head = new Uint8Array(4);
  const { file: fd } = await openRegularFile(file, 'a weight file (safetensors or TorchScript) or a Hugging Face folder', RilsWeightsError);
  await fd.read(head, 0, 4, 0).catch((error: Error) => {
    throw new RilsWeightsError(`Cannot read ${file}: ${error.message}`);
  }).finally(() => fd.close());
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4) return openTorchScript(file);  // a zip
  return openSafetensors(file, undefined);
}

async function openHfFolder(dir: string): Promise<Checkpoint> {
  const file = path.join(dir, 'model.safetensors');
  try {
    await stat(file);
  } catch {
    throw new RilsWeightsError(`${dir} (read as ${LAYOUT_NAMES.hf}) has no model.safetensors: rils reads a Hugging Face ` +
      'CLIP folder with one safetensors file (not sharded ones, not pytorch_model.bin)');
  }
  const hfConfig = await readConfigJson(path.join(dir, 'config.json'));
  const vocab = path.join(dir, 'vocab.json'), merges = path.join(dir, 'merges.txt');
  const tokenizer = await Promise.all([stat(vocab), stat(merges)]).then(() => ({ vocab, merges }), () => undefined);
  const c = await openSafetensors(file, hfConfig);
  return { ...c, path: dir, layout: 'hf', hfTokenizer: tokenizer };
}

/** A Hugging Face folder's config.json, checked (undefined when there is none). */
async function readConfigJson(file: string): Promise<HfClipSettings | undefined> {
  const json = await readJsonObject(file);
  return json && readHfClipConfig(json, file);
}

async function openSafetensors(file: string, hfConfig: HfClipSettings | undefined): Promise<Checkpoint> {
  const index = await readSafetensorsIndex(file);
  const { file: fd } = await openRegularFile(file, 'a safetensors file', RilsWeightsError);
  const tensors = [...index.tensors].map(([name, t]) => ({
    name, dtype: t.dtype, shape: t.shape, byteLength: t.end - t.begin,
    bytes: async (out: Uint8Array) => {
      const { bytesRead } = await fd.read(out, 0, out.byteLength, index.dataOffset + t.begin);
      if (bytesRead !== out.byteLength) throw new RilsWeightsError(`${file}: '${name}' is cut short (truncated file?)`);
      return out;
    },
  }));
  const names = tensors.map((t) => t.name);
  const layout: Layout = index.metadata.format === WEIGHTS_FORMAT ? 'rils'
    : hfConfig || names.some((n) => n.startsWith('text_model.') || n.startsWith('vision_model.')) ? 'hf' : 'openai';
  return { path: file, layout, tensors, metadata: index.metadata, hfConfig, close: () => fd.close() };
}

async function openTorchScript(file: string): Promise<Checkpoint> {
  let entries;
  try {
    entries = await native.readTorchScript(path.resolve(file));
  } catch (error) {
    const typed = fromNative(error);  // LibTorch running out of memory on a hostile archive is the file's fault too
    throw typed instanceof RilsWeightsError ? typed : new RilsWeightsError(`${file} (read as ${LAYOUT_NAMES.torchscript}): ${typed.message}`);
  }
  const tensors = entries.map((e) => ({
    name: e.name, dtype: e.dtype, shape: e.shape, byteLength: e.data.byteLength, bytes: async () => new Uint8Array(e.data),
  }));
  return { path: file, layout: 'torchscript', tensors, metadata: {}, close: async () => undefined };
}

/** A checkpoint tensor and where it goes in the model (OpenAI's name, a third of it, transposed). */
export interface Placed {
  tensor: StoredTensor;
  to: NamePlacement;
}

/** Every tensor of the checkpoint placed by OpenAI's name; a tensor that has no place is an error. */
export function placeTensors(c: Checkpoint): Placed[] {
  const out: Placed[] = [];
  for (const tensor of c.tensors) {
    if (isExtraTensor(tensor.name)) continue;
    const to = c.layout === 'hf' ? fromHfName(tensor.name) : { name: tensor.name };
    if (!to) throw new RilsWeightsError(`${where(c)}: '${tensor.name}' is no tensor of OpenAI's CLIP ViT (another architecture?)`);
    if (tensor.shape.includes(0)) {  // its shape would size a model that no byte of the file holds
      throw new RilsWeightsError(`${where(c)}: '${tensor.name}' has shape [${tensor.shape.join(', ')}]: no weight of CLIP has a dimension of 0`);
    }
    out.push({ tensor, to });
  }
  return out;
}

/** The placed tensors' shapes as OpenAI's names hold them (whole tensors only), for config inference. */
export function openaiShapes(placed: readonly Placed[]): Map<string, number[]> {
  return new Map(placed.filter((p) => p.to.part === undefined)
    .map((p) => [p.to.name, p.to.transpose ? [...p.tensor.shape].reverse() : p.tensor.shape]));
}

/** What {@link loadPlaced} needs of a model. */
export interface LoadTarget {
  parameters(): ParameterInfo[];
  loadTensors(entries: TensorLoad[]): Promise<void>;
}

/** One tensor's bytes and where they go (lib/binding.ts's loadTensors entry). */
export interface TensorLoad {
  name: string;
  data: Uint8Array;
  dtype: string;
  shape: number[];
  rows?: [number, number];
  transpose?: boolean;
}

/** Bytes of file per native call while a checkpoint streams in. */
const BATCH_BYTES = 64 << 20;

/** Every parameter of `target` covered exactly once (whole, or by its three q, k, v parts). */
function checkCoverage(c: Checkpoint, placed: readonly Placed[], parameters: readonly { name: string }[]): void {
  const parts = new Map<string, number>();
  for (const p of placed) {
    const key = p.to.name;
    const seen = parts.get(key) ?? 0, bit = p.to.part === undefined ? 7 : 1 << p.to.part;
    if (seen & bit) throw new RilsWeightsError(`${where(c)}: '${p.tensor.name}' fills '${key}' twice`);
    parts.set(key, seen | bit);
  }
  const own = new Set(parameters.map((p) => p.name));
  for (const key of parts.keys()) {
    if (!own.has(key)) throw new RilsWeightsError(`${where(c)}: '${key}' is not a parameter of the model the file describes`);
  }
  for (const p of parameters) {
    if (!isFeatureDecoderTensor(p.name) && parts.get(p.name) !== 7) {
      throw new RilsWeightsError(`${where(c)}: '${p.name}' is missing${parts.has(p.name) ? ' (part of its q, k, v)' : ''}`);
    }
  }
}

/**
 * Streams the placed tensors into `target`, about 64 MB of file at a time, read into one reused
 * buffer (the native side has copied a batch into the parameters when its call settles): the peak
 * is the model, one buffer and the process itself.
 */
export async function loadPlaced(c: Checkpoint, placed: readonly Placed[], target: LoadTarget): Promise<void> {
  const parameters = target.parameters();
  checkCoverage(c, placed, parameters);
  const rowsOf = new Map(parameters.map((p) => [p.name, p.shape[0] ?? 0]));
  const arena = new Uint8Array(Math.max(BATCH_BYTES, ...placed.map((p) => p.tensor.byteLength)));
  let batch: TensorLoad[] = [], used = 0;
  for (const p of placed) {
    if (used + p.tensor.byteLength > arena.byteLength) {
      await target.loadTensors(batch);
      [batch, used] = [[], 0];
    }
    const data = await p.tensor.bytes(arena.subarray(used, used + p.tensor.byteLength));
    if (data.buffer === arena.buffer) used += p.tensor.byteLength;
    const third = Math.floor((rowsOf.get(p.to.name) ?? 0) / 3);
    batch.push({ name: p.to.name, data, dtype: p.tensor.dtype, shape: p.tensor.shape,
      ...(p.to.part === undefined ? {} : { rows: [p.to.part * third, (p.to.part + 1) * third] as [number, number] }),
      ...(p.to.transpose ? { transpose: true } : {}) });
  }
  if (batch.length) await target.loadTensors(batch);
}

/** Options of {@link Rils.fromPretrained}: the model's options (overriding what the checkpoint says), and two of its own. */
export interface PretrainedOptions extends RilsOptions {
  /**
   * The MLP activation of both towers. OpenAI/open_clip weights do not say which: OpenAI's models use
   * `'quick_gelu'` (the default), most open_clip models `'gelu'`. A Hugging Face folder's config.json says.
   */
  act?: Activation;
  /**
   * CLIP's BPE vocabulary (`bpe_simple_vocab_16e6.txt.gz`). Default: the copy bundled with rils (a
   * Hugging Face folder's own vocab.json and merges.txt come first).
   */
  vocabPath?: string;
}

/** What {@link openPretrained} needs of the model class (rils.ts passes Rils's factories). */
export interface ModelFactory<M extends LoadTarget & { dispose(): void }> {
  create(options: RilsOptions): Promise<M>;
  fromWeights(file: string, options: RilsOptions & { clipVocabPath?: string }): Promise<M>;
}

/**
 * A model from a CLIP checkpoint in any layout (or rils's own weight file): the config inferred from
 * the tensors, the tokenizer CLIP's, the weights streamed in. Nothing half-loaded survives an error.
 */
export async function openPretrained<M extends LoadTarget & { dispose(): void }>(
  file: string, options: PretrainedOptions, factory: ModelFactory<M>,
): Promise<M> {
  const c = await openCheckpoint(file);
  try {
    const { act, vocabPath, ...rest } = options;
    const schedule = fineTuningSchedule(rest.totalSteps ?? 0);
    if (c.layout === 'rils') {
      return await factory.fromWeights(file, { ...schedule, ...rest, ...(vocabPath ? { clipVocabPath: vocabPath } : {}) });
    }
    const placed = placeTensors(c);
    const config = inferClipConfig(openaiShapes(placed), c.hfConfig, act, where(c));
    // RILS's term needs a feature decoder, which no CLIP checkpoint has: a new one, as wide as the
    // tower (OpenAI's heads of 64), unless told otherwise.
    const depth = rest.decoderDepth ?? ((rest.reconWeight ?? 0) > 0 ? 1 : 0);
    const decoder = depth > 0 ? { decoderDepth: depth, decoderWidth: config.visionWidth, decoderHeads: config.visionHeads } : {};
    const preprocess = c.layout === 'hf' ? await preprocessorFields(c.path) : {};
    const modelOptions: RilsOptions = {
      preset: 'clip_vit_b16', seed: 0, reconWeight: 0, ...schedule, ...config, ...decoder, ...preprocess, ...rest,
    };
    // Before anything is built: every tensor of the model the file describes is there, and they hold it.
    checkCoverage(c, placed, clipParameterNames(config.visionDepth, config.textLayers).map((name) => ({ name })));
    checkModelFits(where(c), modelOptions, placed.reduce((n, p) => n + numel(p.tensor.shape), 0), { decoder: false });
    const tokenizer = rest.tokenizer ?? await clipTokenizer(c, config, vocabPath);
    const model = await factory.create({ ...modelOptions, ...(tokenizer ? { tokenizer } : {}) });
    try {
      await loadPlaced(c, placed, model);
    } catch (error) {
      model.dispose();
      throw error instanceof RilsWeightsError && !error.message.startsWith(c.path)
        ? new RilsWeightsError(`${where(c)}: ${error.message}`) : error;
    }
    return model;
  } finally {
    await c.close();
  }
}

/**
 * The tokenizer of a checkpoint: a Hugging Face folder's own (CLIP's BPE, or the word or byte tokenizer
 * rils wrote there), else CLIP's BPE for a model with CLIP's vocabulary (49408 ids), given or bundled.
 */
async function clipTokenizer(c: Checkpoint, config: ClipConfig, vocabPath: string | undefined): Promise<Tokenizer | undefined> {
  const options = { contextLength: config.contextLength };
  const own = c.layout === 'hf' ? await hfWordOrByteTokenizer(c.path, config.contextLength) : undefined;
  if (own) return own;
  if (c.hfTokenizer) {
    return ClipTokenizer.fromHuggingFace(c.hfTokenizer.vocab, c.hfTokenizer.merges, options).catch((error: unknown) => {
      throw error instanceof RilsInputError ? new RilsWeightsError(`${where(c)}: ${error.message}`) : error;
    });
  }
  if (config.vocabSize !== CLIP_VOCAB_SIZE && !vocabPath) return undefined;  // not CLIP's vocabulary: tokens only
  return ClipTokenizer.load(vocabPath ?? BUNDLED_CLIP_VOCAB, options);
}
