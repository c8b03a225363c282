/**
 * The HTML report of `rils train --report`: the run's curves and patch-semantics maps of three of
 * its own examples, each over the examples' captions as the run made them.
 * @internal
 * @module
 */
import type { CaptionedImage } from '../data/pairs.js';
import type { Dataset } from '../data/registry.js';
import { patchMaps } from '../report/evaluation.js';
import { decodeImage } from '../io/images.js';
import { writeReport } from '../report/training.js';
import type { Rils } from '../rils.js';
import type { StepProgress } from '../train/fit.js';

/** The examples whose image decodes (training skipped the others too). */
async function readable(examples: readonly CaptionedImage[], size: number): Promise<CaptionedImage[]> {
  const ok = await Promise.all(examples.map((e) => decodeImage(e.image, size).then(() => true, () => false)));
  return examples.filter((_, i) => ok[i]);
}

/** Writes the report of a run on `data` to `file`. */
export async function writeTrainingReport(file: string, model: Rils, history: StepProgress[], data: Dataset): Promise<void> {
  const examples = await readable(data.examples, model.config.imageSize);
  const captions = examples.map((e) => e.caption);
  const images = await patchMaps(model, examples.map((e) => e.image), captions.map((_, i) => i), captions);
  await writeReport(file, {
    title: `rils train: ${history.length} steps`, runs: [{ name: 'train', steps: history }], images,
    imagesNote: `Per-patch probability of each image's own caption among the ${captions.length} captions shown (brighter = higher).`,
  });
}
