/**
 * The HTML report of `rils train --report`: the run's curves and patch-semantics maps of three
 * images (MNIST test digits, or the first examples of an index of files).
 * @internal
 * @module
 */
import type { CaptionedFile } from '../data/files.js';
import { loadMnist } from '../data/mnist.js';
import type { Dataset } from '../data/registry.js';
import { renderHeatmap } from '../images.js';
import { mnistPatchMaps } from '../mnist-eval.js';
import { writeReport } from '../report.js';
import type { ReportImage } from '../report.js';
import type { Rils } from '../rils.js';
import type { StepProgress } from '../train.js';

/** Per example, the map of its patches' probability of its own caption among the examples'. */
async function examplePatchMaps(model: Rils, items: readonly CaptionedFile[]): Promise<ReportImage[]> {
  const grid = model.config.imageSize / model.config.patchSize, n = grid * grid, g = items.length;
  const sem = await model.patchSemantics(items.map((i) => i.image), items.map((i) => i.caption));
  const images: ReportImage[] = [];
  for (const [k, item] of items.entries()) {
    const map = Float32Array.from({ length: n }, (_, p) => sem.probabilities[(k * n + p) * g + k]!);
    images.push({ caption: item.caption, png: await renderHeatmap(item.image, map, grid, { size: 160 }) });
  }
  return images;
}

/** Writes the report of a run on `data` to `file`. */
export async function writeTrainingReport(file: string, model: Rils, history: StepProgress[], data: Dataset): Promise<void> {
  const images = data.kind === 'mnist'
    ? await mnistPatchMaps(model, loadMnist('test'), [0, 400, 1200])
    : data.examples.length > 0 ? await examplePatchMaps(model, data.examples) : [];
  await writeReport(file, { title: `rils train: ${history.length} steps`, runs: [{ name: 'train', steps: history }], images });
}
