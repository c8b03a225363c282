// Tokenizers on captions of any length (issue 20, item 4): a caption is cut at contextLength tokens, so
// no caption may cost more than those tokens need, whatever its length or content; captions that fit
// keep their exact ids, and `truncate: false` still refuses exactly the captions that do not fit.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import test from 'ava';

import { RilsInputError } from '../lib/errors.js';
import { ByteTokenizer, ClipTokenizer, WordTokenizer } from '../lib/tokenizer/index.js';
import type { Tokenizer } from '../lib/tokenizer/index.js';
import { Random } from '../lib/data/augment.js';

const VOCAB = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../shared/data/bpe_simple_vocab_16e6.txt.gz',
);
let shared: Promise<ClipTokenizer> | undefined;
const clip = () => (shared ??= ClipTokenizer.load(VOCAB));

/** The bound asserted here; the target is 50 ms, this leaves room for a busy machine. */
const BOUND_MS = 200;

/** The best of three runs, in ms (the first also warms the JIT up). */
function bestOf3(fn: () => unknown): number {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    fn();
    best = Math.min(best, performance.now() - start);
  }
  return best;
}

function randomWord(length: number, seed: number): string {
  const r = new Random(seed);
  return Array.from({ length }, () => 'abcdefghijklmnopqrstuvwxyz'[r.int(26)]).join('');
}

/** Asserts a full row: SOT, L − 2 non-padding ids, EOT. */
function fullRow(t: import('ava').ExecutionContext, tok: Tokenizer, row: Int32Array, what: string): void {
  const L = tok.contextLength;
  t.is(row[0], tok.sot, what);
  t.is(row[L - 1], tok.eot, what);
  t.true(
    row.subarray(1, L - 1).every((id) => id !== tok.eot),
    `${what}: no early EOT`,
  );
}

test('CLIP: one word of 16k, 100k and 1M characters encodes within the bound', async (t) => {
  const tok = await clip();
  for (const n of [16_000, 100_000, 1_000_000]) {
    const text = randomWord(n, n);
    let row: Int32Array = new Int32Array(0);
    const ms = bestOf3(() => (row = tok.encode(text)));
    t.log(`${n} characters: ${ms.toFixed(1)} ms`);
    t.true(ms <= BOUND_MS, `${n} characters took ${ms.toFixed(0)} ms`);
    fullRow(t, tok, row, `${n}`);
    // The first tokens of an over-long word are those of its first few thousand characters.
    t.deepEqual(Array.from(row.subarray(1, 60)), tok.tokenize(text.slice(0, 8000)).slice(0, 59), `${n}: leading ids`);
  }
});

test('CLIP: a 1M-character caption of many words encodes within the bound, ids of its start', async (t) => {
  const tok = await clip();
  const text = 'a photo of a cat sitting on the mat, next to a dog. '.repeat(20_000);
  let row: Int32Array = new Int32Array(0);
  const ms = bestOf3(() => (row = tok.encode(text)));
  t.log(`${text.length} characters: ${ms.toFixed(1)} ms`);
  t.true(ms <= BOUND_MS, `took ${ms.toFixed(0)} ms`);
  t.deepEqual(Array.from(row), Array.from(tok.encode(text.slice(0, 2000))));
});

test('every tokenizer: long runs of combining marks (Unicode normalisation) stay within the bound', async (t) => {
  // ICU's NFC reorders a combining sequence by insertion: 1M alternating marks took minutes.
  const marks = `a${'\u0301\u0316'.repeat(500_000)}`;
  for (const tok of [await clip(), new ByteTokenizer(), WordTokenizer.fromTexts(['a b'])]) {
    const ms = bestOf3(() => tok.encode(marks));
    t.log(`${tok.constructor.name}: ${ms.toFixed(1)} ms`);
    t.true(ms <= BOUND_MS, `${tok.constructor.name} took ${ms.toFixed(0)} ms`);
  }
});

test('Word and Byte tokenizers: 1M-character captions within the bound, ids of their start', (t) => {
  const text = 'the quick brown fox jumps over the lazy dog '.repeat(25_000);
  for (const tok of [new ByteTokenizer(), WordTokenizer.fromTexts(['the quick brown fox'])]) {
    for (const caption of [text, randomWord(1_000_000, 3)]) {
      let row: Int32Array = new Int32Array(0);
      const ms = bestOf3(() => (row = tok.encode(caption)));
      t.log(`${tok.constructor.name}, ${caption.slice(0, 10)}…: ${ms.toFixed(1)} ms`);
      t.true(ms <= BOUND_MS, `${tok.constructor.name} took ${ms.toFixed(0)} ms`);
      t.deepEqual(Array.from(row), Array.from(tok.encode(caption.slice(0, 1000))));
    }
  }
});

test('captions that fit keep their exact ids, however long their whitespace and vanishing parts', async (t) => {
  const tok = await clip();
  const cases: [string, string][] = [
    [`a${' '.repeat(1_000_000)}b`, 'a b'],
    [`a${'\t\u3000'.repeat(300_000)}photo`, 'a photo'],
    [`${'&#1;'.repeat(200_000)}a cat`, 'a cat'], // forbidden code points vanish
    [`a${'\u0345'.repeat(300_000)}b`, 'a b'], // CLIP's pre-split skips U+0345 like a space
    [`${' \u0345'.repeat(200_000)}the end`, 'the end'],
  ];
  for (const [long, short] of cases) {
    let row: Int32Array = new Int32Array(0);
    const ms = bestOf3(() => (row = tok.encode(long)));
    t.deepEqual(Array.from(row), Array.from(tok.encode(short)), short);
    t.log(`${JSON.stringify(long.slice(0, 8))}… (${long.length}): ${ms.toFixed(1)} ms`);
    t.true(ms <= BOUND_MS, `${short}: ${ms.toFixed(0)} ms`);
  }
  // References cut where the tokenizer first stops reading resolve as in the whole caption.
  for (let k = 4700; k < 5000; k += 7) {
    t.deepEqual(
      Array.from(tok.encode(`${' '.repeat(k)}&amp;copy;&#0000000000000000000000000000065; cat`)),
      Array.from(tok.encode('© a cat')),
      `${k}`,
    );
  }
  const refs = '&lta'.repeat(250_000); // over-long: "<a" a million times
  let row: Int32Array = new Int32Array(0);
  const ms = bestOf3(() => (row = tok.encode(refs)));
  t.true(ms <= BOUND_MS, `references: ${ms.toFixed(0)} ms`);
  t.deepEqual(Array.from(row), Array.from(tok.encode(refs.slice(0, 1000))));
  const words = WordTokenizer.fromTexts(['a b']);
  t.deepEqual(Array.from(words.encode(`a${' '.repeat(1_000_000)}b`)), Array.from(words.encode('a b')));
  const bytes = new ByteTokenizer();
  t.deepEqual(Array.from(bytes.encode(`a${' '.repeat(1_000_000)}b`)), Array.from(bytes.encode('a b')));
});

test('truncate: false refuses exactly the captions over L − 2 tokens, long ones quickly', async (t) => {
  const strict = await ClipTokenizer.load(VOCAB, { truncate: false });
  const loose = await clip();
  // "photo" is one token: 75 of them fit a 77-id row, 76 do not.
  t.is(loose.tokenize('photo '.repeat(75)).length, 75);
  t.deepEqual(Array.from(strict.encode('photo '.repeat(75))), Array.from(loose.encode('photo '.repeat(75))));
  t.throws(() => strict.encode('photo '.repeat(76)), { instanceOf: RilsInputError, message: /at most 75 tokens/ });
  for (const text of [randomWord(1_000_000, 9), 'photo '.repeat(200_000), `a${'\u0301\u0316'.repeat(500_000)}`]) {
    const start = performance.now();
    t.throws(() => strict.encode(text), { instanceOf: RilsInputError, message: /at most 75 tokens/ });
    t.true(
      performance.now() - start <= BOUND_MS * 2,
      `${text.slice(0, 8)}…: ${(performance.now() - start).toFixed(0)} ms`,
    );
  }
  // A word whose BPE needs exactly the room left still fits.
  const word = randomWord(40, 5);
  const n = loose.tokenize(word).length;
  const fits = `${'photo '.repeat(75 - n)}${word}`;
  t.deepEqual(Array.from(strict.encode(fits)), Array.from(loose.encode(fits)));
  t.throws(() => strict.encode(`photo ${fits}`), { instanceOf: RilsInputError });
  const bytes = new ByteTokenizer({ contextLength: 6, truncate: false });
  t.throws(() => bytes.encode(`abcde${' '.repeat(1_000_000)}`), { instanceOf: RilsInputError }); // 5 bytes after cleaning: too many
  t.is(bytes.encode(`abcd${' '.repeat(1_000_000)}`).length, 6);
  const words = WordTokenizer.fromTexts(['one two'], { contextLength: 4, truncate: false });
  t.is(words.encode(`one${' '.repeat(1_000_000)}two`).length, 4);
  t.throws(() => words.encode(`one two ${'x'.repeat(1_000_000)}`), { instanceOf: RilsInputError });
});

/**
 * CLIP's `bpe()` as its Python reference writes it (lowest-ranked pair, every occurrence left to right,
 * repeat), from the merges file itself: the oracle for the tokenizer's faster merge order.
 */
function referenceBpe(): (word: string) => number[] {
  const merges = gunzipSync(readFileSync(VOCAB))
    .toString('utf8')
    .split('\n')
    .slice(1, 49152 - 256 - 2 + 1)
    .map((l) => l.split(' '));
  const order = [...Array(256).keys()].filter((b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae);
  const symbol: string[] = [];
  order.forEach((b) => (symbol[b] = String.fromCharCode(b)));
  for (let b = 0, n = 0; b < 256; b++) {
    if (symbol[b] === undefined) {
      order.push(b);
      symbol[b] = String.fromCharCode(256 + n++);
    }
  }
  const bytes = order.map((b) => symbol[b]!);
  const encoder = new Map(
    [...bytes, ...bytes.map((s) => `${s}</w>`), ...merges.map(([a, b]) => a! + b!)].map((s, id) => [s, id]),
  );
  const ranks = new Map(merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
  return (word) => {
    let parts = [...Buffer.from(word, 'utf8')].map((b) => symbol[b]!);
    parts.push(`${parts.pop()!}</w>`);
    for (;;) {
      let best = Infinity,
        pair = '';
      for (let i = 0; i + 1 < parts.length; i++) {
        const rank = ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (rank !== undefined && rank < best) [best, pair] = [rank, `${parts[i]} ${parts[i + 1]}`];
      }
      if (best === Infinity) return parts.map((s) => encoder.get(s)!);
      const [first, second] = pair.split(' ') as [string, string];
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (parts[i] === first && parts[i + 1] === second) merged.push(first + parts[++i]!);
        else merged.push(parts[i]!);
      }
      parts = merged;
    }
  };
}

test('CLIP BPE: the same ids as the reference loop on 3000 random words', async (t) => {
  const tok = await clip();
  const bpe = referenceBpe();
  const r = new Random(77);
  const alphabets = [
    'abcdefghijklmnopqrstuvwxyz',
    'aaaaabbbbcde',
    'eeeeeeeeeeel',
    'éèàüößçñ',
    'абвгдежзий',
    '東京大学写真猫犬',
    'ab',
  ];
  let bad = 0;
  for (let i = 0; i < 3000; i++) {
    const alphabet = [...alphabets[i % alphabets.length]!];
    const word = Array.from({ length: 1 + r.int(i < 2900 ? 40 : 600) }, () => alphabet[r.int(alphabet.length)]).join(
      '',
    );
    const expected = bpe(word);
    if (JSON.stringify(tok.tokenize(word)) !== JSON.stringify(expected) && bad++ < 5) t.log(`differs on ${word}`);
  }
  t.is(bad, 0);
});

test("HTML references are read where Python's pattern finds them (oracle: the pattern itself)", async (t) => {
  const { unescapeHtml } = await import('../lib/tokenizer/html.js');
  const pattern = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;
  const r = new Random(11);
  const bits = [
    '&',
    '#',
    'x',
    'X',
    ';',
    'a',
    'amp',
    'lt',
    'copy',
    '1',
    '9',
    'f',
    'g',
    ' ',
    '\t',
    '\r',
    '\u3000',
    '<',
    '🐱',
    '\ud800',
    'é',
    'AMP',
    'nbsp',
    '0',
  ];
  let bad = 0;
  for (let k = 0; k < 20_000; k++) {
    let text = '';
    for (let n = r.int(30); n > 0; n--) text += bits[r.int(bits.length)];
    if (k % 20 === 0) text = `&${'a🐱'[r.int(2)]!.repeat(r.int(40))}${r.next() < 0.5 ? ';' : ''}`;
    // Each match on its own resolves alike, so any difference is where a reference starts or ends.
    if (text.replace(pattern, (m) => unescapeHtml(m)) !== unescapeHtml(text) && bad++ < 5) t.log(JSON.stringify(text));
  }
  t.is(bad, 0);
});

test('fuzz: rows equal the full tokenization whenever the caption fits, and strict refuses exactly the others', async (t) => {
  const tok = await clip();
  const strict = await ClipTokenizer.load(VOCAB, { truncate: false });
  const r = new Random(2024);
  const bits = [
    'a photo',
    ' ',
    '   ',
    '\t\u3000',
    '\u0345',
    '\u0345\u0345\u0345',
    '\u0301',
    '\u0316\u0301',
    'é',
    'e\u0301',
    '&amp;',
    '&amp;amp;',
    '&#1;',
    '&#65;',
    '&lt',
    '<|endoftext|>',
    "'s",
    '東京',
    '🐱',
    'Σ.',
    'x'.repeat(300),
    ' '.repeat(5000),
    '&#1;'.repeat(500),
    'ab'.repeat(40),
  ];
  let fits = 0;
  for (let i = 0; i < 400; i++) {
    let text = '';
    for (let n = r.int(i % 2 ? 12 : 60); n > 0; n--) text += bits[r.int(bits.length)];
    const all = tok.tokenize(text);
    if (all.length <= 75) {
      fits++;
      t.deepEqual(Array.from(tok.encode(text).subarray(1, 1 + all.length)), all, JSON.stringify(text.slice(0, 80)));
      t.notThrows(() => strict.encode(text));
    } else {
      t.throws(() => strict.encode(text), { instanceOf: RilsInputError }, JSON.stringify(text.slice(0, 80)));
    }
  }
  t.log(`${fits} of 400 fit`);
  t.true(fits > 100 && fits < 300);
  // The word and byte tokenizers against themselves with a row so long that nothing is cut.
  for (const make of [
    (L: number) => new ByteTokenizer({ contextLength: L }),
    (L: number) => WordTokenizer.fromTexts(['a photo'], { contextLength: L }),
  ]) {
    const [small, big] = [make(77), make(100_000)];
    for (let i = 0; i < 200; i++) {
      let text = '';
      for (let n = r.int(i % 2 ? 8 : 40); n > 0; n--) text += bits[r.int(bits.length)];
      const all = big.encode(text).subarray(1);
      const n = all.indexOf(big.eot);
      if (n <= 75)
        t.deepEqual(
          Array.from(small.encode(text).subarray(1, 1 + n)),
          Array.from(all.subarray(0, n)),
          `${small.constructor.name} ${i}`,
        );
    }
  }
});
