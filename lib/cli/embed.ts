/**
 * `rils embed`: image embeddings of files, as safetensors (with the image paths) or `.npy`.
 * @internal
 * @module
 */
import path from 'node:path';

import { writeNpy } from '../npy.js';
import { writeSafetensors } from '../safetensors.js';
import { MODEL_OPTIONS, fail, loadModel, outputOption, parseCommand } from './common.js';
import type { Command } from './common.js';
import { checkOutputs } from './outputs.js';

async function embed(argv: string[]): Promise<void> {
  const { values: a, positionals: images } = parseCommand(argv, embedCommand, { ...MODEL_OPTIONS, out: { type: 'string' } }, true);
  if (!a.out || images.length === 0) fail('embed needs --out FILE and image files');
  outputOption(a.out, 'out');
  checkOutputs({ '--out': a.out }, { '--weights': a.weights, '--vocab': a.vocab, IMAGE: images });
  const model = await loadModel(a);
  const { embeddings } = await model.encodeImages(images);
  const shape = [images.length, model.config.embedDim];
  if (a.out.endsWith('.npy')) {
    await writeNpy(a.out, embeddings, shape);
  } else {
    await writeSafetensors(a.out, [{ name: 'image_embed_norm', dtype: 'F32', shape, data: embeddings }],
      { images: JSON.stringify(images.map((p) => path.resolve(p))) });
  }
  console.log(`${a.out}: ${shape.join('×')} embeddings`);
  model.dispose();
}

export const embedCommand: Command = {
  usage: 'rils embed    --weights W --out FILE.safetensors|FILE.npy IMAGE...',
  run: embed,
};
