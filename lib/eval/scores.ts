/**
 * Scoring on embeddings already computed: the best classes of each image (zero-shot over class
 * embeddings), accuracy per class, confusion matrices and retrieval ranks. Rows are processed
 * one at a time, so memory stays at the inputs' size whatever the number of images.
 * @internal
 * @module
 */

/** `a[i] · b[j]` for rows of length `dim`. */
function dot(a: Float32Array, i: number, b: Float32Array, j: number, dim: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const x = i * dim, y = j * dim;
  let d = 0;
  for (; d + 3 < dim; d += 4) {
    s0 += a[x + d]! * b[y + d]!;
    s1 += a[x + d + 1]! * b[y + d + 1]!;
    s2 += a[x + d + 2]! * b[y + d + 2]!;
    s3 += a[x + d + 3]! * b[y + d + 3]!;
  }
  for (; d < dim; d++) s0 += a[x + d]! * b[y + d]!;
  return s0 + s1 + s2 + s3;
}

/**
 * Per query row, the indices of the `k` keys with the highest dot product, best first (ties: the
 * lower index first): `[queries, k]`.
 */
export function topKByDot(queries: Float32Array, keys: Float32Array, dim: number, k: number): Int32Array {
  const nq = queries.length / dim, nk = keys.length / dim, kk = Math.min(k, nk);
  const out = new Int32Array(nq * kk);
  const best = new Float64Array(kk), idx = new Int32Array(kk);
  for (let q = 0; q < nq; q++) {
    best.fill(-Infinity), idx.fill(-1);
    for (let c = 0; c < nk; c++) {
      const s = dot(queries, q, keys, c, dim);
      if (s <= best[kk - 1]!) continue;
      let p = kk - 1;
      for (; p > 0 && s > best[p - 1]!; p--) (best[p] = best[p - 1]!), (idx[p] = idx[p - 1]!);
      best[p] = s, idx[p] = c;
    }
    out.set(idx, q * kk);
  }
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

/** Where each true match ranks in retrieval (0 = first), both ways. */
export interface RetrievalRanks {
  /** Per image: how many texts score strictly higher than its best-scoring own text. */
  imageToText: Int32Array;
  /** Per text: how many images score strictly higher than its own image. */
  textToImage: Int32Array;
}

/**
 * Ranks of the true matches between unit-norm image embeddings `[ni, dim]` and text embeddings
 * `[nt, dim]`, where text t belongs to image `textImage[t]` (an image may have several texts, as
 * in COCO). One pass over the similarity rows: memory O(ni + nt), never the ni × nt matrix.
 */
export function retrievalRanks(images: Float32Array, texts: Float32Array, textImage: Int32Array, dim: number): RetrievalRanks {
  const ni = images.length / dim, nt = texts.length / dim;
  const own = new Float64Array(nt); // score of each text with its own image
  const bestOwn = new Float64Array(ni).fill(-Infinity); // each image's best own-text score
  for (let t = 0; t < nt; t++) {
    own[t] = dot(images, textImage[t]!, texts, t, dim);
    bestOwn[textImage[t]!] = Math.max(bestOwn[textImage[t]!]!, own[t]!);
  }
  const i2t = new Int32Array(ni), t2i = new Int32Array(nt);
  const row = new Float64Array(nt);
  for (let i = 0; i < ni; i++) {
    for (let t = 0; t < nt; t++) row[t] = dot(images, i, texts, t, dim);
    let above = 0;
    for (let t = 0; t < nt; t++) {
      if (row[t]! > bestOwn[i]!) above++;
      if (row[t]! > own[t]! && textImage[t] !== i) t2i[t]!++;
    }
    i2t[i] = above;
  }
  return { imageToText: i2t, textToImage: t2i };
}

/** k → fraction of ranks below k. */
export function recallAt(ranks: Int32Array, ks: readonly number[]): Record<number, number> {
  return Object.fromEntries(ks.map((k) => [k, ranks.reduce((n, r) => n + (r < k ? 1 : 0), 0) / ranks.length]));
}
