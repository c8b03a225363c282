/**
 * The HTML report of an evaluation: the numbers, per-class accuracy, confusion matrices as images,
 * some zero-shot mistakes with their images, and patch-semantic maps of a few test images over the
 * class prompts. Self-contained (images inline), so it opens anywhere.
 * @module
 */
import { writeFile } from 'node:fs/promises';

import sharp from 'sharp';

import type { LabelledImageSet } from '../data/labelled.js';
import { decodeImage, imageName, imagePng, renderHeatmap } from '../io/images.js';
import type { EvalImage } from '../io/images.js';
import { escape, htmlFigures, htmlPage, htmlTable } from './html.js';
import type { ReportImage } from './html.js';
import type { Rils } from '../rils.js';
import type { ClassificationResults } from '../eval/classification.js';
import type { RetrievalResults } from '../eval/retrieval.js';

const pct = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : `${(100 * v).toFixed(2)}%`);
/** A penalty as `1e-6` rather than `0.000001`. @internal */
export const penalty = (wd: number): string => (wd === 0 || (wd >= 0.01 && wd < 100) ? String(wd) : wd.toExponential());

/**
 * Per image, a heat map of its patches' probability of `texts[targets[i]]` among all `texts`
 * (class names expanded with `templates` when given, as zero-shot prompts are).
 */
export async function patchMaps(
  model: Rils,
  images: readonly EvalImage[],
  targets: readonly number[],
  texts: readonly string[],
  options: { templates?: readonly string[]; captions?: readonly string[]; size?: number } = {},
): Promise<ReportImage[]> {
  if (images.length === 0) return [];
  const S = model.config.imageSize,
    grid = S / model.config.patchSize,
    n = grid * grid,
    T = texts.length;
  const pixels = new Uint8Array(images.length * S * S * 3);
  const interpolation = model.config.interpolation;
  for (const [i, image] of images.entries()) pixels.set(await decodeImage(image, S, { interpolation }), i * S * S * 3);
  const sem = await model.patchSemantics(
    { images: pixels, batchSize: images.length },
    texts,
    options.templates ? { templates: options.templates } : {},
  );
  const maps: ReportImage[] = [];
  for (const [i, image] of images.entries()) {
    const map = Float32Array.from({ length: n }, (_, p) => sem.probabilities[(i * n + p) * T + targets[i]!]!);
    maps.push({
      caption: options.captions?.[i] ?? texts[targets[i]!]!,
      png: await renderHeatmap(image, map, grid, { size: options.size ?? 160 }),
    });
  }
  return maps;
}

/** The confusion matrix as a picture: row = true class, column = predicted, darker = more of the row. */
export async function confusionPng(confusion: readonly (readonly number[])[]): Promise<Buffer> {
  const C = confusion.length,
    cell = Math.max(1, Math.min(24, Math.floor(480 / C)));
  const rgb = Buffer.alloc(C * C * 3);
  confusion.forEach((row, r) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((v, c) => {
      const f = v / total; // white → dark blue
      rgb.set([Math.round(255 - 225 * f), Math.round(255 - 200 * f), Math.round(255 - 95 * f)], (r * C + c) * 3);
    });
  });
  return sharp(rgb, { raw: { width: C, height: C, channels: 3 } })
    .resize(C * cell, C * cell, { kernel: 'nearest' })
    .png()
    .toBuffer();
}

/** The first test images zero-shot got wrong, one per true class while there are enough. */
async function mistakes(test: LabelledImageSet, r: ClassificationResults, count: number): Promise<ReportImage[]> {
  const firstOfClass: number[] = [],
    others: number[] = [],
    seen = new Set<number>();
  r.zeroShot.predictions.forEach((p, i) => {
    const label = r.testLabels[i]!;
    if (p === label) return;
    if (seen.has(label)) others.push(i);
    else {
      seen.add(label);
      firstOfClass.push(i);
    }
  });
  const picks = [...firstOfClass, ...others].slice(0, count);
  const width = Math.min(5, r.classNames.length);
  return Promise.all(
    picks.map(async (i) => {
      const at = r.testImages[i]!,
        top = [...r.zeroShot.top.subarray(i * width, (i + 1) * width)].map((c) => r.classNames[c]!);
      const name = test.names?.[at] ?? imageName(test.images[at]!, at);
      return {
        caption: `${name}: ${r.classNames[r.testLabels[i]!]} → ${top[0]} (then ${top.slice(1, 3).join(', ')})`,
        png: await imagePng(test.images[at]!, 128),
      };
    }),
  );
}

/** Maps of the first test image of a few classes over the class prompts. */
async function classMaps(
  model: Rils,
  test: LabelledImageSet,
  r: ClassificationResults,
  count: number,
): Promise<ReportImage[]> {
  const firsts = new Map<number, number>(); // class → position in the test set
  for (let i = 0; i < r.testImages.length && firsts.size < count; i++) {
    if (!firsts.has(r.testLabels[i]!)) firsts.set(r.testLabels[i]!, r.testImages[i]!);
  }
  const at = [...firsts.values()];
  return patchMaps(
    model,
    at.map((i) => test.images[i]!),
    at.map((i) => test.labels[i]!),
    r.classNames,
    {
      templates: r.templates,
      captions: at.map((i) => `${test.names?.[i] ?? `image ${i}`}: ${r.classNames[test.labels[i]!]}`),
    },
  );
}

function summaryRows(r: ClassificationResults): Record<string, string>[] {
  const rows = [
    {
      protocol: 'zero-shot',
      'top-1': pct(r.zeroShot.top1),
      'top-5': pct(r.zeroShot.top5),
      detail: `${r.templates.length} templates`,
    },
  ];
  if (r.knn)
    rows.push({
      protocol: `k-NN (k = ${r.knn.k})`,
      'top-1': pct(r.knn.top1),
      'top-5': '–',
      detail: 'cosine, frozen pooled embeddings',
    });
  for (const f of r.fewShot ?? []) {
    rows.push({
      protocol: `${f.shots}-shot nearest mean`,
      'top-1': pct(f.nearestMean.mean),
      'top-5': '–',
      detail: `mean of ${f.nearestMean.perSeed.length} draws`,
    });
    rows.push({
      protocol: `${f.shots}-shot linear probe`,
      'top-1': pct(f.linearProbe.mean),
      'top-5': '–',
      detail: `mean of ${f.linearProbe.perSeed.length} draws`,
    });
  }
  if (r.linearProbe)
    rows.push({
      protocol: 'linear probe',
      'top-1': pct(r.linearProbe.top1),
      'top-5': '–',
      detail: `weight decay ${penalty(r.linearProbe.weightDecay)}`,
    });
  return rows;
}

function perClassRows(r: ClassificationResults): Record<string, string | number>[] {
  const counts = r.classNames.map(() => 0);
  r.testLabels.forEach((l) => counts[l]!++);
  return r.classNames.map((name, c) => ({
    '#': c,
    class: name,
    'test images': counts[c]!,
    'zero-shot': pct(r.zeroShot.perClass[c]),
    ...(r.knn ? { 'k-NN': pct(r.knn.perClass[c]) } : {}),
    ...(r.linearProbe ? { 'linear probe': pct(r.linearProbe.perClass[c]) } : {}),
  }));
}

async function classificationSection(
  model: Rils,
  test: LabelledImageSet,
  r: ClassificationResults,
  o: ReportOptions,
): Promise<string> {
  const sets = [{ set: 'test', ...setRow(r.test) }, ...(r.train ? [{ set: 'train', ...setRow(r.train) }] : [])];
  const confusion = [
    { caption: 'zero-shot', png: await confusionPng(r.zeroShot.confusion) },
    ...(r.linearProbe ? [{ caption: 'linear probe', png: await confusionPng(r.linearProbe.confusion) }] : []),
  ];
  const size = Math.max(1, Math.min(24, Math.floor(480 / r.classNames.length))) * r.classNames.length;
  const sweep =
    r.linearProbe?.sweep.map((p) => ({
      'weight decay': penalty(p.weightDecay),
      'validation accuracy': pct(p.validationAccuracy),
    })) ?? [];
  return (
    `<h2>Classification: ${r.classNames.length} classes</h2>${htmlTable(summaryRows(r))}${htmlTable(sets)}` +
    `${r.notes.length ? `<ul>${r.notes.map((n) => `<li>${escape(n)}</li>`).join('')}</ul>` : ''}` +
    `${sweep.length ? `<h3>Linear probe: weight decay chosen on a validation split of the training set</h3>${htmlTable(sweep)}` : ''}` +
    `<h3>Confusion matrices</h3><p>Row = true class, column = predicted class, in the order of the table below; darker = a larger share of the row.</p>${htmlFigures(confusion, size)}` +
    `<h3>Zero-shot mistakes</h3>${htmlFigures(await mistakes(test, r, o.mistakes ?? 8), 128)}` +
    `<h3>Patch semantics</h3><p>Per-patch probability of the image's true class among the ${r.classNames.length} class prompts (brighter = higher).</p>` +
    `${htmlFigures(await classMaps(model, test, r, o.maps ?? 4))}<h3>Per class</h3>${htmlTable(perClassRows(r))}`
  );
}

const setRow = (s: { images: number; skipped: unknown[]; seconds: number; imagesPerSecond: number }) => ({
  images: s.images,
  'unreadable (skipped)': s.skipped.length,
  seconds: s.seconds.toFixed(1),
  'images/s': s.imagesPerSecond.toFixed(1),
});

function retrievalSection(r: RetrievalResults): string {
  const row = (direction: string, recall: Record<number, number>, median: number) => ({
    direction,
    ...Object.fromEntries(Object.entries(recall).map(([k, v]) => [`R@${k}`, pct(v)])),
    'median rank': median,
  });
  return (
    `<h2>Retrieval: ${r.images} images, ${r.texts} captions</h2>` +
    htmlTable([
      row('image → text', r.imageToText, r.medianRank.imageToText),
      row('text → image', r.textToImage, r.medianRank.textToImage),
    ]) +
    `<p>${r.skipped.length} unreadable images skipped (with ${r.skippedTexts} captions); ${r.seconds.toFixed(1)} s.</p>` +
    `${r.notes.length ? `<ul>${r.notes.map((n) => `<li>${escape(n)}</li>`).join('')}</ul>` : ''}`
  );
}

/** Options of {@link writeEvaluationReport}. */
export interface ReportOptions {
  /** Page title. Default `'rils evaluation'`. */
  title?: string;
  /** Zero-shot mistakes shown. Default 8. */
  mistakes?: number;
  /** Test images with patch-semantic maps. Default 4. */
  maps?: number;
}

/**
 * Writes the HTML report of a classification evaluation (with its test set, for the pictures) and/or
 * a retrieval evaluation to `file`.
 */
export async function writeEvaluationReport(
  file: string,
  model: Rils,
  content: {
    classification?: { test: LabelledImageSet; results: ClassificationResults };
    retrieval?: RetrievalResults;
  },
  options: ReportOptions = {},
): Promise<void> {
  const c = content.classification;
  const body = `${c ? await classificationSection(model, c.test, c.results, options) : ''}${content.retrieval ? retrievalSection(content.retrieval) : ''}`;
  await writeFile(file, htmlPage(options.title ?? 'rils evaluation', body));
}
