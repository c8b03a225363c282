/**
 * `rils embed`: image embeddings of files and folders, as safetensors (with the image paths) or
 * `.npy` (with the paths in a text file beside it). Images stream through in chunks; files that are
 * not images, and images that cannot be decoded, are skipped and counted.
 * @internal
 * @module
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { embedImages } from '../eval/embed.js';
import { writeNpy } from '../io/npy.js';
import { writeSafetensors } from '../io/safetensors.js';
import { parseCommand } from './args.js';
import type { Command } from './args.js';
import { MODEL_OPTIONS, fail, integerOption, loadModel, modelOptions, outputOption } from './common.js';
import { imageArguments } from './images.js';
import { checkOutputs } from './outputs.js';
import { encodeProgress } from './progress.js';

const OPTIONS = {
  ...MODEL_OPTIONS,
  out: { type: 'string', value: 'FILE.safetensors|FILE.npy', help: 'where the embeddings go' },
  batch: { type: 'string', value: 'N', default: '64', help: 'images decoded and encoded together' },
} as const;

async function embed(argv: string[]): Promise<void> {
  const { values: a, positionals } = parseCommand(argv, embedCommand, true);
  modelOptions(a); // bad model options fail first
  if (!a.out || positionals.length === 0) fail('embed needs --out FILE and image files (or folders of them)');
  outputOption(a.out, 'out');
  checkOutputs(
    { '--out': a.out, ...(a.out.endsWith('.npy') ? { '--out (its .txt)': `${a.out}.txt` } : {}) },
    { '--weights': a.weights, '--vocab': a.vocab, IMAGE: positionals },
  );
  const chunkSize = integerOption(a.batch, 'batch', 1);
  const { images, notImages } = await imageArguments(positionals);
  if (notImages.length) console.log(`skipped ${notImages.length} file(s) that are not images (first: ${notImages[0]})`);
  if (images.length === 0) fail(`no image among ${positionals.join(', ')}`);
  const model = await loadModel(a);
  const bar = encodeProgress('encoding images');
  const r = await embedImages(model, images, { chunkSize, onProgress: bar.onProgress }).finally(() => bar.stop());
  if (r.skipped.length)
    console.log(
      `skipped ${r.skipped.length} unreadable image(s) (first: ${r.skipped[0]!.name}: ${r.skipped[0]!.reason})`,
    );
  const shape = [r.count, model.config.embedDim];
  const kept = Array.from(r.kept, (i) => path.resolve(images[i]!));
  if (a.out.endsWith('.npy')) {
    await writeNpy(a.out, r.embeddings, shape);
    await writeFile(`${a.out}.txt`, `${kept.join('\n')}\n`);
  } else {
    await writeSafetensors(a.out, [{ name: 'image_embed_norm', dtype: 'F32', shape, data: r.embeddings }], {
      images: JSON.stringify(kept),
    });
  }
  console.log(`${a.out}: ${shape.join('×')} embeddings`);
  model.dispose();
}

export const embedCommand: Command<typeof OPTIONS> = {
  name: 'embed',
  summary: 'Writes the unit-norm image embeddings of image files, one row per image read.',
  synopsis: '--weights W --out FILE.safetensors|FILE.npy [options] IMAGE|DIR...',
  options: OPTIONS,
  notes:
    'A folder stands for the images directly in it. Files that are not images and images that cannot be decoded are ' +
    'skipped and counted. The image paths of the rows are in the safetensors metadata (images), or for .npy in FILE.npy.txt.',
  run: embed,
};
