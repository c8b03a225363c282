/**
 * A self-contained HTML training report: loss, clip-accuracy and gated-fraction curves (inline
 * SVG), a results table and patch-semantics maps. No external assets, so it opens anywhere.
 * @module
 */
import { writeFile } from 'node:fs/promises';

import type { StepProgress } from '../train/fit.js';

/** One training run's per-step metrics (what `fit` writes as JSONL). */
export interface ReportRun {
  /** Legend of the run's curves. */
  name: string;
  /** One entry per step (extra fields are ignored). */
  steps: Pick<StepProgress, 'step' | 'loss' | 'clipLoss' | 'reconLoss' | 'clipAcc' | 'gatedFraction'>[];
}

/** A picture of the report. */
export interface ReportImage {
  /** Shown under the image. */
  caption: string;
  /** PNG bytes. */
  png: Uint8Array;
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
/** Text for HTML. @internal */
export const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A table with one row per object (the first row's keys are the columns). @internal */
export function htmlTable(rows: readonly Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const head = Object.keys(rows[0]!).map((k) => `<th>${escape(k)}</th>`).join('');
  const body = rows.map((r) => `<tr>${Object.values(r).map((v) => `<td>${escape(String(v))}</td>`).join('')}</tr>`).join('');
  return `<table><tr>${head}</tr>${body}</table>`;
}

/** Images inline (base64), each with its caption. @internal */
export function htmlFigures(images: readonly ReportImage[], width = 160): string {
  return images.map((i) => `<figure><img src="data:image/png;base64,${Buffer.from(i.png).toString('base64')}" width="${width}">` +
    `<figcaption>${escape(i.caption)}</figcaption></figure>`).join('');
}

/** A self-contained page. @internal */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1400px}figure{display:inline-block;margin:0 1em 1em 0;vertical-align:top}
figcaption{max-width:200px;font-size:13px}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}</style></head><body>
<h1>${escape(title)}</h1>${body}
</body></html>\n`;
}

function chart(title: string, runs: ReportRun[], value: (s: ReportRun['steps'][number]) => number): string {
  const W = 420, H = 220, pad = 36;
  const points = runs.flatMap((r) => r.steps.map((s) => [s.step, value(s)] as const)).filter(([, v]) => Number.isFinite(v));
  if (points.length === 0) return '';
  const [x0, x1] = [Math.min(...points.map((p) => p[0])), Math.max(...points.map((p) => p[0]))];
  const [y0, y1] = [Math.min(0, ...points.map((p) => p[1])), Math.max(...points.map((p) => p[1]))];
  const sx = (x: number) => pad + ((x - x0) / Math.max(1, x1 - x0)) * (W - 2 * pad);
  const sy = (y: number) => H - pad - ((y - y0) / Math.max(1e-9, y1 - y0)) * (H - 2 * pad);
  const lines = runs.map((r, i) => {
    const pts = r.steps.filter((s) => Number.isFinite(value(s))).map((s) => `${sx(s.step).toFixed(1)},${sy(value(s)).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5" points="${pts}"/>` +
      `<text x="${W - pad}" y="${pad + 14 * i}" text-anchor="end" fill="${COLOURS[i % COLOURS.length]}">${escape(r.name)}</text>`;
  }).join('');
  return `<figure><svg width="${W}" height="${H}" font-family="sans-serif" font-size="11">` +
    `<rect x="${pad}" y="${pad}" width="${W - 2 * pad}" height="${H - 2 * pad}" fill="none" stroke="#ccc"/>` +
    `<text x="${pad}" y="${H - 10}">step ${x0}</text><text x="${W - pad}" y="${H - 10}" text-anchor="end">${x1}</text>` +
    `<text x="4" y="${pad}">${y1.toPrecision(3)}</text><text x="4" y="${H - pad}">${y0.toPrecision(3)}</text>${lines}</svg>` +
    `<figcaption>${escape(title)}</figcaption></figure>`;
}

/** Writes the report to `path`. */
export async function writeReport(path: string, c: ReportContent): Promise<void> {
  const images = c.images?.length
    ? `<h2>${escape(c.imagesTitle ?? 'Patch semantics')}</h2>${c.imagesNote ? `<p>${escape(c.imagesNote)}</p>` : ''}${htmlFigures(c.images)}`
    : '';
  await writeFile(path, htmlPage(c.title, `${htmlTable(c.results ?? [])}<h2>Training</h2>
${chart('loss', c.runs, (s) => s.loss)}${chart('clip loss', c.runs, (s) => s.clipLoss)}${chart('recon loss (weighted)', c.runs, (s) => s.reconLoss)}
${chart('clip accuracy (in-batch)', c.runs, (s) => s.clipAcc)}${chart('gated fraction', c.runs, (s) => s.gatedFraction)}
${images}`));
}
