/**
 * `model.exportOnnx(dir)`: a folder that onnxruntime and transformers.js load as it is. `onnx/`
 * holds the vision tower (`pixel_values` → `image_embeds`, `last_hidden_state`), the text tower
 * (`input_ids` → `text_embeds`, `last_hidden_state`) and both with the logits (`model.onnx`, what
 * transformers.js's zero-shot pipeline runs); beside it config.json (`model_type: "clip"`),
 * preprocessor_config.json and the tokenizer files (lib/weights/hf-files.ts). Every option and the
 * target are checked before anything is written; the folder is written aside, then renamed into place.
 * @internal
 * @module
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';

import { RilsInputError } from '../errors.js';
import type { ModelConfig } from '../model/options.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { invalid } from '../validate.js';
import { hfClipConfig } from '../weights/clip-config.js';
import { isFeatureDecoderTensor } from '../weights/clip-names.js';
import { hfPreprocessorConfig, hfTokenizerFiles } from '../weights/hf-files.js';
import type { HfFiles } from '../weights/hf-files.js';
import { Graph } from './graph.js';
import type { ExportDtype } from './graph.js';
import { INLINE_LIMIT, OPSETS, encodeModel, weightBytes } from './onnx-file.js';
import { pixelInput, textInputs, textTower, visionTower } from './towers.js';
import type { TowerSource, Weights } from './towers.js';

/** Options of {@link Rils.exportOnnx}. */
export interface ExportOnnxOptions {
  /** The ONNX opset, 17 (the first with LayerNormalization) to 21. Default 17. */
  opset?: number;
  /**
   * `'fp32'` (default), or `'fp16'`: weights and arithmetic in half precision (half the files, for the
   * web) between float32 inputs and outputs. fp16 files are named `*_fp16.onnx`, and config.json tells
   * transformers.js to load them (`transformers.js_config.dtype`).
   */
  dtype?: 'fp32' | 'fp16';
  /** Replace `dir` when it exists and is not empty. Default false: such a folder is an error. */
  force?: boolean;
  /**
   * Weights in ONNX's external-data files (`onnx/<name>.onnx_data`) instead of inside the `.onnx`:
   * `'auto'` (default) where a file's weights pass protobuf's 2 GB limit, `true` for every file.
   */
  externalData?: boolean | 'auto';
}

/** What {@link Rils.exportOnnx} wrote. */
export interface OnnxExport {
  /** The folder. */
  dir: string;
  /** Its files, relative to it. */
  files: string[];
}

/** What the export needs of a model. */
export interface ExportSource {
  config: Readonly<ModelConfig>;
  tokenizer: Tokenizer | undefined;
  /** Every parameter, read from the model when the checks have passed. */
  state(): Promise<{ name: string; shape: number[]; data: ArrayBuffer }[]>;
}

const DTYPES: readonly ExportDtype[] = ['fp32', 'fp16'];

function checkOptions(options: unknown): Required<ExportOnnxOptions> {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw invalid('an options object', 'options', options);
  const o = options as ExportOnnxOptions;
  const opset = o.opset ?? 17,
    dtype = o.dtype ?? 'fp32',
    force = o.force ?? false,
    externalData = o.externalData ?? 'auto';
  if (!Number.isInteger(opset) || opset < OPSETS.min || opset > OPSETS.max)
    throw invalid(`an integer ${OPSETS.min} … ${OPSETS.max}`, 'opset', opset);
  if (!DTYPES.includes(dtype)) throw invalid("'fp32' or 'fp16'", 'dtype', dtype);
  if (typeof force !== 'boolean') throw invalid('a boolean', 'force', force);
  if (externalData !== 'auto' && typeof externalData !== 'boolean')
    throw invalid("true, false or 'auto'", 'externalData', externalData);
  return { opset, dtype, force, externalData };
}

/** What is at `dir` now: nothing, an empty folder, or a folder with files (refused without `force`). */
async function targetState(dir: string, force: boolean): Promise<'absent' | 'empty' | 'full'> {
  const info = await lstat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new RilsInputError(`Cannot export to ${dir}: ${error.message}`);
  });
  if (!info) return 'absent';
  if (!info.isDirectory())
    throw new RilsInputError(
      `Expected a new or empty folder for the export but ${dir} is not a folder; nothing was written`,
    );
  const entries = await readdir(dir);
  if (entries.length === 0) return 'empty';
  if (!force) {
    throw new RilsInputError(
      `Expected a new or empty folder for the export but ${dir} holds ${entries.length} entries; ` +
        'pass force: true (rils export --force) to replace it, or choose another folder',
    );
  }
  return 'full';
}

/** config.json: transformers' CLIPConfig, plus how transformers.js loads the files and which tower rils exported. */
function configJson(
  c: Readonly<ModelConfig>,
  logitScale: number,
  dtype: ExportDtype,
  external: Record<string, number>,
): string {
  const hf = hfClipConfig(c, logitScale);
  const rilsTower = c.visionTower === 'rils';
  Object.assign(hf.text_config!, { bos_token_id: c.vocabSize - 2, eos_token_id: c.vocabSize - 1 });
  const jsConfig = {
    ...(dtype === 'fp16' ? { dtype: 'fp16' } : {}),
    ...(Object.keys(external).length ? { use_external_data_format: external } : {}),
  };
  return `${JSON.stringify(
    {
      ...hf,
      ...(Object.keys(jsConfig).length ? { 'transformers.js_config': jsConfig } : {}),
      rils: {
        vision_tower: c.visionTower,
        image_pooling: rilsTower ? 'mean of the patch tokens' : 'class token',
        exported_by: 'rils exportOnnx',
      },
    },
    null,
    2,
  )}\n`;
}

type Kind = 'vision_model' | 'text_model' | 'model';

/** The graph of one file: a tower, or both with CLIPModel's logits. */
function buildGraph(kind: Kind, m: TowerSource, dtype: ExportDtype, opset: number, logitScale: number): Graph {
  const g = new Graph(dtype, opset),
    c = m.config,
    E = c.embedDim;
  const imageBatch = kind === 'model' ? 'image_batch_size' : 'batch_size',
    textBatch = kind === 'model' ? 'text_batch_size' : 'batch_size';
  const vision = kind === 'text_model' ? undefined : visionTower(g, m, pixelInput(g, c, imageBatch));
  const text = kind === 'vision_model' ? undefined : textTower(g, m, textInputs(g, textBatch));
  if (kind === 'model') {
    const image = g.op('LpNormalization', [vision!.embeds], { axis: -1, p: 2 });
    const caption = g.op('LpNormalization', [text!.embeds], { axis: -1, p: 2 });
    const perText = g.op('Mul', [
      g.op('MatMul', [caption, g.op('Transpose', [image], { perm: [1, 0] })]),
      g.floats([Math.exp(logitScale)], []),
    ]);
    g.output(g.op('Transpose', [perText], { perm: [1, 0] }), 'logits_per_image', [imageBatch, textBatch]);
    g.output(perText, 'logits_per_text', [textBatch, imageBatch]);
    g.output(caption, 'text_embeds', [textBatch, E]);
    g.output(image, 'image_embeds', [imageBatch, E]);
  } else if (vision) {
    g.output(vision.embeds, 'image_embeds', ['batch_size', E]);
    g.output(vision.hidden, 'last_hidden_state', ['batch_size', (c.imageSize / c.patchSize) ** 2 + 1, c.visionWidth]);
  } else {
    g.output(text!.embeds, 'text_embeds', ['batch_size', E]);
    g.output(text!.hidden, 'last_hidden_state', ['batch_size', 'read_length', c.textWidth]);
  }
  return g;
}

/** Writes `parts` to a new file and syncs it. */
async function writeParts(file: string, parts: readonly (string | Uint8Array)[]): Promise<void> {
  const f = await open(file, 'wx');
  try {
    for (const p of parts) await f.writeFile(p); // from the current position, all of it
    await f.sync();
  } finally {
    await f.close();
  }
}

/** Moves the finished folder `temp` to `dir`, replacing what `state` says is there. */
async function moveIntoPlace(temp: string, dir: string, state: 'absent' | 'empty' | 'full'): Promise<void> {
  if (state === 'empty') await rmdir(dir);
  if (state !== 'full') return rename(temp, dir);
  const old = `${dir}.${randomBytes(4).toString('hex')}.rils-old`;
  await rename(dir, old);
  try {
    await rename(temp, dir);
  } catch (error) {
    await rename(old, dir);
    throw error;
  }
  await rm(old, { recursive: true, force: true });
}

/**
 * Exports `source` into `dir` (see the module). Rejects with {@link RilsInputError}, before writing
 * anything, for a bad option, a non-empty `dir` without `force`, a tokenizer that cannot be expressed,
 * or (with `externalData: false`) weights past 2 GB.
 */
export async function exportOnnx(dir: string, options: ExportOnnxOptions, source: ExportSource): Promise<OnnxExport> {
  if (typeof dir !== 'string' || dir === '') throw invalid('a folder path', 'dir', dir);
  const o = checkOptions(options);
  const state = await targetState(dir, o.force);
  const c = source.config;
  const files: HfFiles = { 'preprocessor_config.json': hfPreprocessorConfig(c), ...hfTokenizerFiles(source.tokenizer) };
  const tensors = (await source.state()).filter((t) => !isFeatureDecoderTensor(t.name));
  const weights: Weights = new Map(tensors.map((t) => [t.name, { shape: t.shape, data: new Float32Array(t.data) }]));
  const bytes = tensors.reduce((n, t) => n + t.data.byteLength, 0) / (o.dtype === 'fp16' ? 2 : 1);
  if (o.externalData === false && bytes > INLINE_LIMIT) {
    throw new RilsInputError(
      `Expected weights under 2 GB for externalData: false but this model's are ${(bytes / 2 ** 30).toFixed(1)} GB; ` +
        "leave externalData at 'auto'",
    );
  }
  const logitScale = weights.get('logit_scale')!.data[0]!;
  const suffix = o.dtype === 'fp16' ? '_fp16' : '';
  const temp = path.join(
    path.dirname(path.resolve(dir)),
    `.${path.basename(dir)}.${process.pid}.${randomBytes(4).toString('hex')}.rils-tmp`,
  );
  try {
    await mkdir(path.dirname(temp), { recursive: true }); // the parent folders, where they are missing
    await mkdir(temp);
    await mkdir(path.join(temp, 'onnx'));
    const written: string[] = [];
    const external: Record<string, number> = {};
    for (const kind of ['vision_model', 'text_model', 'model'] as const) {
      const g = buildGraph(kind, { config: c, weights }, o.dtype, o.opset, logitScale);
      const name = `${kind}${suffix}`;
      const outside = o.externalData === true || (o.externalData === 'auto' && weightBytes(g) > INLINE_LIMIT);
      const encoded = encodeModel(g, name, outside);
      await writeParts(path.join(temp, 'onnx', `${name}.onnx`), [encoded.model]);
      written.push(`onnx/${name}.onnx`);
      if (encoded.data) {
        await writeParts(path.join(temp, 'onnx', encoded.data.file), encoded.data.parts);
        written.push(`onnx/${encoded.data.file}`);
        external[`${name}.onnx`] = 1;
      }
    }
    files['config.json'] = configJson(c, logitScale, o.dtype, external);
    for (const [name, text] of Object.entries(files)) await writeParts(path.join(temp, name), [text]);
    await moveIntoPlace(temp, dir, state);
    return { dir, files: [...Object.keys(files), ...written].sort() };
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    const e = error as NodeJS.ErrnoException;
    if (e.syscall === undefined) throw error;
    const typed = new RilsInputError(`Cannot write the export to ${dir}: ${e.message}; nothing was left behind`);
    typed.cause = error;
    throw typed;
  }
}
