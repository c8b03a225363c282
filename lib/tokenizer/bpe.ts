/**
 * Byte-level BPE as GPT-2 and CLIP define it: a word's UTF-8 bytes as printable symbols, then the merges
 * applied lowest rank first, every occurrence of a pair left to right, until no pair has a rank.
 * @module
 */

/** GPT-2/CLIP `bytes_to_unicode`: printable bytes stand for themselves, the rest map to U+0100 onwards. */
export function byteSymbols(): { order: number[]; symbol: string[] } {
  const order: number[] = [];
  for (const [lo, hi] of [
    [0x21, 0x7e],
    [0xa1, 0xac],
    [0xae, 0xff],
  ] as const)
    for (let b = lo; b <= hi; b++) order.push(b);
  const symbol: string[] = [];
  for (const b of order) symbol[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (symbol[b] === undefined) {
      order.push(b);
      symbol[b] = String.fromCharCode(256 + n++);
    }
  }
  return { order, symbol };
}

/** Heap keys: rank × 2³² + position, so the smallest is the lowest rank's leftmost pair. */
const POSITIONS = 2 ** 32;

/** A binary min-heap of numbers. */
class MinHeap {
  readonly #items: number[] = [];
  get size(): number {
    return this.#items.length;
  }
  peek(): number {
    return this.#items[0]!;
  }
  push(key: number): void {
    const a = this.#items;
    let i = a.push(key) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]! <= key) break;
      a[i] = a[parent]!;
      i = parent;
    }
    a[i] = key;
  }
  pop(): number {
    const a = this.#items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length === 0) return top;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= a.length) break;
      if (child + 1 < a.length && a[child + 1]! < a[child]!) child++;
      if (a[child]! >= last) break;
      a[i] = a[child]!;
      i = child;
    }
    a[i] = last;
    return top;
  }
}

/**
 * The merge table. {@link merge} gives what CLIP's `bpe()` loop gives (which rescans the whole word for
 * its lowest-ranked pair after every merge: quadratic, 1 s for a 16k-character word) in O(n log n): a
 * heap of the word's ranked pairs, all of the lowest rank taken at once and merged left to right.
 */
export class BpeMerges {
  readonly #ranks = new Map<string, number>();
  readonly #pairs: readonly (readonly [string, string])[];

  constructor(merges: readonly (readonly [string, string])[]) {
    this.#pairs = merges;
    merges.forEach(([a, b], rank) => this.#ranks.set(`${a} ${b}`, rank)); // a repeated pair keeps its last rank, as Python's dict does
  }

  /** Merges a word given as byte symbols (the last one with `</w>` when the word ends there). */
  merge(parts: readonly string[]): string[] {
    const n = parts.length;
    if (n === 0) return [];
    const symbol: (string | undefined)[] = [...parts]; // undefined once merged into its left neighbour
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const heap = new MinHeap();
    const push = (i: number) => {
      const j = next[i]!;
      const rank = j < 0 ? undefined : this.#ranks.get(`${symbol[i]} ${symbol[j]}`);
      if (rank !== undefined) heap.push(rank * POSITIONS + i);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (heap.size > 0) {
      const rank = Math.floor(heap.peek() / POSITIONS);
      const [first, second] = this.#pairs[rank]!;
      const at: number[] = []; // every pair of this rank, left to right: one pass of CLIP's loop
      while (heap.size > 0 && Math.floor(heap.peek() / POSITIONS) === rank) at.push(heap.pop() % POSITIONS);
      for (const i of at) {
        const j = next[i]!;
        // Stale (a neighbour merged since), or taken by the merge on its left ("a a a" merges once).
        if (symbol[i] !== first || j < 0 || symbol[j] !== second) continue;
        symbol[i] = first + second;
        symbol[j] = undefined;
        next[i] = next[j]!;
        if (next[i]! >= 0) prev[next[i]!] = i;
        if (prev[i]! >= 0) push(prev[i]!); // the new pairs hold the merged symbol, so none has this rank again
        push(i);
      }
    }
    const out: string[] = [];
    for (let i = 0; i >= 0; i = next[i]!) out.push(symbol[i]!);
    return out;
  }
}
