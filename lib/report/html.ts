/**
 * The pieces of rils's self-contained HTML reports (training and evaluation): escaped text, tables,
 * inline images, the page. No external assets, so a report opens anywhere.
 * @internal
 * @module
 */

/** A picture of the report. */
export interface ReportImage {
  /** Shown under the image. */
  caption: string;
  /** PNG bytes. */
  png: Uint8Array;
}

/** Text for HTML. @internal */
export const escape = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A table with one row per object (the first row's keys are the columns). @internal */
export function htmlTable(rows: readonly Record<string, string | number>[]): string {
  if (rows.length === 0) return '';
  const head = Object.keys(rows[0]!)
    .map((k) => `<th>${escape(k)}</th>`)
    .join('');
  const body = rows
    .map(
      (r) =>
        `<tr>${Object.values(r)
          .map((v) => `<td>${escape(String(v))}</td>`)
          .join('')}</tr>`,
    )
    .join('');
  return `<table><tr>${head}</tr>${body}</table>`;
}

/** Images inline (base64), each with its caption. @internal */
export function htmlFigures(images: readonly ReportImage[], width = 160): string {
  return images
    .map(
      (i) =>
        `<figure><img src="data:image/png;base64,${Buffer.from(i.png).toString('base64')}" width="${width}">` +
        `<figcaption>${escape(i.caption)}</figcaption></figure>`,
    )
    .join('');
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
