/**
 * Summaries of predictions already made (natively: lib/eval/protocols.ts): top-k accuracy, confusion
 * matrices, accuracy per class, and recall@k of retrieval ranks.
 * @internal
 * @module
 */

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
export function confusionMatrix(
  predicted: ArrayLike<number>,
  labels: ArrayLike<number>,
  numClasses: number,
): number[][] {
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
