/**
 * A self-contained HTML training report: loss, clip-accuracy and gated-fraction curves (inline
 * SVG), a results table and patch-semantics maps. No external assets, so it opens anywhere.
 * @module
 */
import { writeFile } from 'node:fs/promises';

import type { StepProgress } from './train.js';

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
}

const COLOURS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd'];
const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

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
  const table = c.results?.length
    ? `<table><tr>${Object.keys(c.results[0]!).map((k) => `<th>${escape(k)}</th>`).join('')}</tr>${c.results
        .map((r) => `<tr>${Object.values(r).map((v) => `<td>${escape(String(v))}</td>`).join('')}</tr>`).join('')}</table>`
    : '';
  const images = (c.images ?? []).map((i) =>
    `<figure><img src="data:image/png;base64,${Buffer.from(i.png).toString('base64')}" width="160"><figcaption>${escape(i.caption)}</figcaption></figure>`).join('');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${escape(c.title)}</title>
<style>body{font-family:sans-serif;margin:2em;max-width:1400px}figure{display:inline-block;margin:0 1em 1em 0}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}</style></head><body>
<h1>${escape(c.title)}</h1>${table}<h2>Training</h2>
${chart('loss', c.runs, (s) => s.loss)}${chart('clip loss', c.runs, (s) => s.clipLoss)}${chart('recon loss (weighted)', c.runs, (s) => s.reconLoss)}
${chart('clip accuracy (in-batch)', c.runs, (s) => s.clipAcc)}${chart('gated fraction', c.runs, (s) => s.gatedFraction)}
${images ? `<h2>Patch semantics</h2><p>Per-patch probability of the digit's class among the ten class prompts (brighter = higher).</p>${images}` : ''}
</body></html>\n`;
  await writeFile(path, html);
}
