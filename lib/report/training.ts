/**
 * A self-contained HTML training report: loss, clip-accuracy and gated-fraction curves (inline
 * SVG), a results table and patch-semantics maps (lib/report/html.ts); and the one `rils train
 * --report` writes, over three of the run's own examples.
 * @module
 */
import { writeFile } from 'node:fs/promises';

import type { CaptionedImage, Dataset } from '../data/dataset.js';
import { decodeImage } from '../io/images.js';
import type { Rils } from '../rils.js';
import type { StepProgress } from '../train/fit.js';
import { patchMaps } from './evaluation.js';
import { escape, htmlFigures, htmlPage, htmlTable } from './html.js';
import type { ReportImage } from './html.js';

export type { ReportImage } from './html.js';

/** One training run's per-step metrics (what `fit` writes as JSONL). */
export interface ReportRun {
  /** Legend of the run's curves. */
  name: string;
  /** One entry per step (extra fields are ignored). */
  steps: Pick<StepProgress, 'step' | 'loss' | 'clipLoss' | 'reconLoss' | 'clipAcc' | 'gatedFraction'>[];
}

/** What goes into {@link writeReport}. */
export interface ReportContent {
  /** Page title and heading. */
  title: string;
  /** Runs drawn together in each chart. */
  runs: ReportRun[];
  /** Rows of a results table: column name → value. */
  results?: Record<string, string | number>[];
  /** PNG images with captions (e.g. from `renderHeatmap`). */
  images?: ReportImage[];
  /** Heading of the images. Default `'Patch semantics'`. */
  imagesTitle?: string;
  /** What the images show, e.g. `'Per-patch probability of each image's own caption'`. Default: none. */
  imagesNote?: string;
}

const COLOURS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd'];

function chart(title: string, runs: ReportRun[], value: (s: ReportRun['steps'][number]) => number): string {
  const W = 420,
    H = 220,
    pad = 36;
  const points = runs
    .flatMap((r) => r.steps.map((s) => [s.step, value(s)] as const))
    .filter(([, v]) => Number.isFinite(v));
  if (points.length === 0) return '';
  const [x0, x1] = [Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0]))];
  const [y0, y1] = [Math.min(0, ...points.map((p) => p[1])), Math.max(...points.map((p) => p[1]))];
  const sx = (x: number) => pad + ((x - x0) / Math.max(1, x1 - x0)) * (W - 2 * pad);
  const sy = (y: number) => H - pad - ((y - y0) / Math.max(1e-9, y1 - y0)) * (H - 2 * pad);
  const lines = runs
    .map((r, i) => {
      const pts = r.steps
        .filter((s) => Number.isFinite(value(s)))
        .map((s) => `${sx(s.step).toFixed(1)},${sy(value(s)).toFixed(1)}`)
        .join(' ');
      return (
        `<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5" points="${pts}"/>` +
        `<text x="${W - pad}" y="${pad + 14 * i}" text-anchor="end" fill="${COLOURS[i % COLOURS.length]}">${escape(r.name)}</text>`
      );
    })
    .join('');
  return (
    `<figure><svg width="${W}" height="${H}" font-family="sans-serif" font-size="11">` +
    `<rect x="${pad}" y="${pad}" width="${W - 2 * pad}" height="${H - 2 * pad}" fill="none" stroke="#ccc"/>` +
    `<text x="${pad}" y="${H - 10}">step ${x0}</text><text x="${W - pad}" y="${H - 10}" text-anchor="end">${x1}</text>` +
    `<text x="4" y="${pad}">${y1.toPrecision(3)}</text><text x="4" y="${H - pad}">${y0.toPrecision(3)}</text>${lines}</svg>` +
    `<figcaption>${escape(title)}</figcaption></figure>`
  );
}

/** Writes the report to `path`. */
export async function writeReport(path: string, c: ReportContent): Promise<void> {
  const images = c.images?.length
    ? `<h2>${escape(c.imagesTitle ?? 'Patch semantics')}</h2>${c.imagesNote ? `<p>${escape(c.imagesNote)}</p>` : ''}${htmlFigures(c.images)}`
    : '';
  await writeFile(
    path,
    htmlPage(
      c.title,
      `${htmlTable(c.results ?? [])}<h2>Training</h2>
${chart('loss', c.runs, (s) => s.loss)}${chart('clip loss', c.runs, (s) => s.clipLoss)}${chart('recon loss (weighted)', c.runs, (s) => s.reconLoss)}
${chart('clip accuracy (in-batch)', c.runs, (s) => s.clipAcc)}${chart('gated fraction', c.runs, (s) => s.gatedFraction)}
${images}`,
    ),
  );
}

/** The examples whose image decodes (training skipped the others too). */
async function readable(examples: readonly CaptionedImage[], size: number): Promise<CaptionedImage[]> {
  const ok = await Promise.all(
    examples.map((e) =>
      decodeImage(e.image, size).then(
        () => true,
        () => false,
      ),
    ),
  );
  return examples.filter((_, i) => ok[i]);
}

/** Writes the report of a run on `data` to `file` (`rils train --report`). @internal */
export async function writeTrainingReport(
  file: string,
  model: Rils,
  history: StepProgress[],
  data: Dataset,
): Promise<void> {
  const examples = await readable(data.examples, model.config.imageSize);
  const captions = examples.map((e) => e.caption);
  const images = await patchMaps(
    model,
    examples.map((e) => e.image),
    captions.map((_, i) => i),
    captions,
  );
  await writeReport(file, {
    title: `rils train: ${history.length} steps`,
    runs: [{ name: 'train', steps: history }],
    images,
    imagesNote: `Per-patch probability of each image's own caption among the ${captions.length} captions shown (brighter = higher).`,
  });
}
