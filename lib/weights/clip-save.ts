/**
 * A CLIP model's weights in the layouts other code loads: OpenAI/open_clip safetensors (rils's own
 * parameter names, without a feature decoder rils may have added), or a Hugging Face `CLIPModel`
 * folder (model.safetensors, config.json, and the tokenizer and preprocessor files of
 * lib/weights/hf-files.ts).
 * @internal
 * @module
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import { RilsInputError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { writeSafetensors } from '../io/safetensors.js';
import type { TensorToWrite } from '../io/safetensors.js';
import { hfClipConfig } from './clip-config.js';
import { isFeatureDecoderTensor, toHfNames } from './clip-names.js';
import { hfPreprocessorConfig, hfTokenizerFiles } from './hf-files.js';
import type { SavedModel, SavedTensor } from './layouts.js';

/** The OpenAI/open_clip tensors: CLIP's parameters under their own names, F32. */
function openaiTensors(state: readonly SavedTensor[]): TensorToWrite[] {
  return state
    .filter((t) => !isFeatureDecoderTensor(t.name))
    .map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: new Float32Array(t.data) }));
}

/** [rows, cols] row-major → [cols, rows]. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c]!;
  return out;
}

/** The Hugging Face tensors: q, k, v split out of each in-projection, the projections transposed. */
function hfTensors(state: readonly SavedTensor[]): TensorToWrite[] {
  const out: TensorToWrite[] = [];
  for (const t of openaiTensors(state)) {
    const data = t.data as Float32Array;
    for (const h of toHfNames(t.name)) {
      if (h.part !== undefined) {
        const rows = t.shape[0]! / 3,
          width = data.length / t.shape[0]!;
        const shape = t.shape.length === 2 ? [rows, t.shape[1]!] : [rows];
        out.push({
          name: h.hf,
          dtype: 'F32',
          shape,
          data: data.subarray(h.part * rows * width, (h.part + 1) * rows * width),
        });
      } else if (h.transpose) {
        out.push({
          name: h.hf,
          dtype: 'F32',
          shape: [t.shape[1]!, t.shape[0]!],
          data: transposed(data, t.shape[0]!, t.shape[1]!),
        });
      } else {
        out.push({ name: h.hf, dtype: 'F32', shape: t.shape, data });
      }
    }
  }
  return out;
}

/** A model's CLIP weights, refused for a model with RILS's vision tower (OpenAI's and Hugging Face's layouts have none). */
function clipState(layout: string, model: SavedModel): readonly SavedTensor[] {
  if (model.config.visionTower !== 'clip') {
    throw new RilsInputError(
      `Expected a CLIP model for layout '${layout}' but this one has RILS's vision tower: save it as 'rils'`,
    );
  }
  return model.state;
}

/** Writes a CLIP model's weights as OpenAI's safetensors, atomically. */
export async function writeOpenaiLayout(file: string, model: SavedModel): Promise<void> {
  await writeSafetensors(file, openaiTensors(clipState('openai', model)));
}

/**
 * Writes a CLIP model as a Hugging Face folder (`file`): model.safetensors and the files a Hugging
 * Face folder has besides the weights, each file atomically.
 */
export async function writeHfLayout(file: string, model: SavedModel): Promise<void> {
  const state = clipState('hf', model);
  const logitScale = new Float32Array(state.find((t) => t.name === 'logit_scale')!.data)[0]!;
  const files = {
    'config.json': `${JSON.stringify(hfClipConfig(model.config, logitScale), null, 2)}\n`,
    'preprocessor_config.json': hfPreprocessorConfig(model.config),
    ...hfTokenizerFiles(model.tokenizer),
  };
  try {
    await mkdir(file, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST' || code === 'ENOTDIR' ? 'it (or a folder on its path) is a file' : (error as Error).message;
    throw new RilsInputError(
      `Expected a folder or a new path for the Hugging Face layout but received ${JSON.stringify(file)}: ${why}; nothing was written`,
    );
  }
  await writeSafetensors(path.join(file, 'model.safetensors'), hfTensors(state), { format: 'pt' });
  for (const [name, text] of Object.entries(files)) {
    await writeFileAtomic(path.join(file, name), async (f) => {
      await f.writeFile(text, 'utf-8');
    });
  }
}
