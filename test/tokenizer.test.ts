// Tokenizers (spec §6): CLIP BPE ids against OpenAI's reference ids, row layout and truncation, the byte
// tokenizer, bad input, and a fuzz pass. Imports lib/tokenizer/ directly: no native addon is needed.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import test from 'ava';

import { RilsInputError } from '../lib/errors.js';
import { ByteTokenizer, ClipTokenizer, WordTokenizer } from '../lib/tokenizer/index.js';
import type { Tokenizer } from '../lib/tokenizer/index.js';

const DATA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/data');
const VOCAB = path.join(DATA, 'bpe_simple_vocab_16e6.txt.gz');
const CASES = JSON.parse(readFileSync(path.join(DATA, 'clip_tokenizer_cases.json'), 'utf8')) as {
  sot: number;
  eot: number;
  vocab_size: number;
  cases: { text: string; bpe_ids: number[]; decoded: string }[];
};

let shared: Promise<ClipTokenizer> | undefined;
const clip = () => (shared ??= ClipTokenizer.load(VOCAB));

/** The row spec §6 describes: SOT, ids cut to L − 2, EOT, zeros. */
function expectedRow(t: Tokenizer, ids: readonly number[], L = t.contextLength): number[] {
  const body = ids.slice(0, L - 2);
  return [t.sot, ...body, t.eot, ...new Array<number>(L - 2 - body.length).fill(0)];
}

test('CLIP ids match the reference for every case', async (t) => {
  const tok = await clip();
  t.is(tok.vocabSize, CASES.vocab_size);
  t.is(tok.sot, CASES.sot);
  t.is(tok.eot, CASES.eot);
  t.is(tok.contextLength, 77);
  CASES.cases.forEach((c, i) => {
    const name = `case ${i} ${JSON.stringify(c.text.slice(0, 60))}`;
    t.deepEqual(tok.tokenize(c.text), c.bpe_ids, `${name}: ids`);
    t.is(tok.decode(c.bpe_ids), c.decoded, `${name}: decode`);
    t.deepEqual(Array.from(tok.encode(c.text)), expectedRow(tok, c.bpe_ids), `${name}: row`);
  });
});

test('CLIP row layout: SOT first, EOT after the ids, zero padding', async (t) => {
  const row = (await clip()).encode('a photo of a cat.');
  t.true(row instanceof Int32Array);
  t.is(row.length, 77);
  t.deepEqual(Array.from(row.subarray(0, 8)), [49406, 320, 1125, 539, 320, 2368, 269, 49407]);
  t.true(row.subarray(8).every((v) => v === 0));
});

test('empty and whitespace-only captions give [SOT, EOT, 0 …]', async (t) => {
  const tok = await clip();
  const bytes = new ByteTokenizer();
  for (const text of ['', '   ', '\t\n \u3000\x1c']) {
    t.deepEqual(Array.from(tok.encode(text)), expectedRow(tok, []), JSON.stringify(text));
    t.deepEqual(Array.from(bytes.encode(text)), expectedRow(bytes, []), JSON.stringify(text));
  }
  for (const text of ['&nbsp;', '&amp;nbsp;']) t.deepEqual(Array.from(tok.encode(text)), expectedRow(tok, []), text); // CLIP only unescapes
});

test('over-long captions are cut to the context with EOT kept last', async (t) => {
  const tok = await clip();
  const row = tok.encode('very '.repeat(200));
  t.is(row.length, 77);
  t.is(row[0], tok.sot);
  t.is(row[76], tok.eot);
  t.true(row.subarray(1, 76).every((v) => v === 1070));
  const short = await ClipTokenizer.load(VOCAB, { contextLength: 8 });
  const ids = short.tokenize('a photo of a very very big dog');
  t.true(ids.length > 6);
  t.deepEqual(Array.from(short.encode('a photo of a very very big dog')), [49406, ...ids.slice(0, 6), 49407]);
  t.deepEqual(
    Array.from(short.encode('a photo of a cat.')),
    [49406, 320, 1125, 539, 320, 2368, 269, 49407],
    'exact fit',
  );
  const two = await ClipTokenizer.load(VOCAB, { contextLength: 2 });
  t.deepEqual(Array.from(two.encode('anything at all')), [49406, 49407]);
});

test('encodeBatch equals the stacked encode rows', async (t) => {
  const texts = [...CASES.cases.map((c) => c.text), 'one more', ''];
  for (const tok of [await clip(), new ByteTokenizer({ contextLength: 16 })]) {
    const batch = tok.encodeBatch(texts);
    t.true(batch instanceof Int32Array);
    t.is(batch.length, texts.length * tok.contextLength);
    texts.forEach((text, i) => {
      const row = batch.subarray(i * tok.contextLength, (i + 1) * tok.contextLength);
      t.deepEqual(Array.from(row), Array.from(tok.encode(text)), `row ${i}`);
    });
  }
});

test('unicode captions round-trip through decode, deterministic and in range', async (t) => {
  const tok = await clip();
  for (const text of [
    'Naïve Café résumé',
    '東京タワーの写真',
    '🐱🐶 👩‍👩‍👧 🇯🇵',
    'ΟΔΟΣ Ελληνικά',
    'Ωmega ©®™ ½ ²',
    'مرحبا',
    'e\u0301',
  ]) {
    const ids = tok.tokenize(text);
    t.true(ids.length > 0 && ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize), text);
    t.deepEqual(tok.tokenize(text), ids, `${text}: deterministic (cached)`);
    const expected = text.normalize('NFC').toLowerCase().replaceAll(' ', '');
    t.is(tok.decode(ids).replaceAll(' ', ''), expected, `${text}: round trip`);
    t.is(tok.decode(tok.encode(text)), tok.decode(ids), `${text}: a row decodes to its ids`);
  }
});

test('CLIP text cleaning follows the Python reference', async (t) => {
  const tok = await clip();
  const same = (a: string, b: string) =>
    t.deepEqual(tok.tokenize(a), tok.tokenize(b), `${JSON.stringify(a)} ~ ${JSON.stringify(b)}`);
  same('Tom &amp;amp; Jerry', 'tom & jerry'); // unescaped twice
  same('&amp;amp;amp;', '& amp ;'); // a third level stays escaped
  same('&copyright &ampx; &lt', '©right &x; <'); // legacy names without ';', as a prefix
  same('&#128;&#x1F600;&#39;&#0;', "€😀'\ufffd");
  same('&#127;x&#xD800;', 'x\ufffd');
  same('e\u0301', 'é'); // NFC
  same('a\u00a0\u2003\x1cb', 'a b'); // Python's whitespace, not JS's
  same('a\u0345b', 'a b'); // skipped by CLIP's case-insensitive pre-split
  t.notDeepEqual(tok.tokenize('a\ufeffb'), tok.tokenize('a b'), 'U+FEFF is not whitespace in Python');
  t.deepEqual(
    tok.tokenize('a <|endoftext|> b'),
    [...tok.tokenize('a'), tok.eot, ...tok.tokenize('b')],
    'literal special token',
  );
});

test('ByteTokenizer: bytes + 1, SOT 257, EOT 258, case kept, truncation', (t) => {
  const tok = new ByteTokenizer();
  t.is(tok.vocabSize, 259);
  t.is(tok.sot, 257);
  t.is(tok.eot, 258);
  t.is(tok.contextLength, 77);
  t.deepEqual(Array.from(tok.encode('Hé').subarray(0, 6)), [257, 73, 196, 170, 258, 0]);
  t.deepEqual(Array.from(tok.encode('  A \t b\n')), expectedRow(tok, [66, 33, 99]));
  t.deepEqual(Array.from(tok.encode('e\u0301')), Array.from(tok.encode('é')), 'NFC');
  t.deepEqual(Array.from(tok.encode('🐱').subarray(0, 6)), [257, 0xf0 + 1, 0x9f + 1, 0x90 + 1, 0xb1 + 1, 258]);
  t.deepEqual(Array.from(tok.encode('\x00')).slice(0, 3), [257, 1, 258], 'a NUL byte is id 1, not padding');
  const short = new ByteTokenizer({ contextLength: 5 });
  t.deepEqual(Array.from(short.encode('abcdef')), [257, 98, 99, 100, 258]);
  t.deepEqual(Array.from(short.encode('abc')), [257, 98, 99, 100, 258], 'exact fit');
  t.is(tok.decode(tok.encode('Grüße, 東京 🐱')), 'Grüße, 東京 🐱');
  t.is(short.decode(short.encode('é東')), 'é\ufffd', 'a cut character decodes as U+FFFD');
});

test('bad input is a RilsInputError', async (t) => {
  const missing = path.join(os.tmpdir(), 'rils-no-such-dir', 'bpe_simple_vocab_16e6.txt.gz');
  await t.throwsAsync(ClipTokenizer.load(missing), {
    instanceOf: RilsInputError,
    message: new RegExp(`for vocabPath but received "${missing.replaceAll('\\', '\\\\')}".*ENOENT`),
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-tok-'));
  const plain = path.join(dir, 'plain.txt');
  writeFileSync(plain, 'not gzip');
  await t.throwsAsync(ClipTokenizer.load(plain), { instanceOf: RilsInputError, message: /plain\.txt/ });
  const short = path.join(dir, 'short.txt.gz');
  writeFileSync(short, gzipSync('#version: 0.2\ni n\nt h\n'));
  await t.throwsAsync(ClipTokenizer.load(short), { instanceOf: RilsInputError, message: /merge lines/ });
  const broken = path.join(dir, 'broken.txt.gz');
  writeFileSync(broken, gzipSync(`#version\n${'a b\n'.repeat(100)}abc\n${'a b\n'.repeat(49000)}`));
  await t.throwsAsync(ClipTokenizer.load(broken), {
    instanceOf: RilsInputError,
    message: /line 102 is not a merge pair/,
  });
  await t.throwsAsync(ClipTokenizer.load(42 as any), {
    instanceOf: RilsInputError,
    message: /Expected a file path for vocabPath but received number 42/,
  });
  await t.throwsAsync(ClipTokenizer.load(''), { instanceOf: RilsInputError });

  for (const bad of [1, 0, -3, 2.5, '77', Number.NaN, null]) {
    t.throws(() => new ByteTokenizer({ contextLength: bad as any }), {
      instanceOf: RilsInputError,
      message: /Expected an integer >= 2 for contextLength but received/,
    });
    await t.throwsAsync(ClipTokenizer.load(VOCAB, { contextLength: bad as any }), {
      instanceOf: RilsInputError,
      message: /contextLength/,
    });
  }
  t.throws(() => new ByteTokenizer(7 as any), {
    instanceOf: RilsInputError,
    message: /Expected an object for options/,
  });

  const tok = await clip();
  for (const target of [tok, new ByteTokenizer()]) {
    t.throws(() => target.encode(42 as any), {
      instanceOf: RilsInputError,
      message: /Expected a string for text but received number 42/,
    });
    t.throws(() => target.encode(undefined as any), { instanceOf: RilsInputError });
    t.throws(() => target.encodeBatch([]), {
      instanceOf: RilsInputError,
      message: /Expected a non-empty array of strings for texts but received an array of 0/,
    });
    t.throws(() => target.encodeBatch('abc' as any), {
      instanceOf: RilsInputError,
      message: /non-empty array of strings for texts/,
    });
    t.throws(() => target.encodeBatch(['ok', 3] as any), {
      instanceOf: RilsInputError,
      message: /Expected a string for texts\[1\] but received number 3/,
    });
    // eslint-disable-next-line no-sparse-arrays -- a hole, as a caller's sparse array has
    t.throws(() => target.encodeBatch(['ok', , 'ok'] as any), {
      instanceOf: RilsInputError,
      message: /texts\[1\] but received undefined/,
    });
    t.throws(() => target.decode([target.vocabSize]), { instanceOf: RilsInputError, message: /ids\[0\]/ });
    t.throws(() => target.decode([1.5]), { instanceOf: RilsInputError });
  }
  t.throws(() => tok.tokenize(null as any), { instanceOf: RilsInputError });
});

/** mulberry32: a seeded generator, so a fuzz failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function randomText(rnd: () => number): string {
  const pick = (items: readonly string[]) => items[Math.floor(rnd() * items.length)]!;
  const odd = [
    '\ud800',
    '\udfff',
    '\x00',
    '\x07',
    '\x1c',
    '\x7f',
    '\x85',
    '\ufeff',
    '\u0345',
    '\u0301',
    '&amp;',
    '&#55296;',
    '&#x110000;',
    '&#99999999999999999999;',
    '&copy',
    "'S",
    "'ll",
    '<|endoftext|>',
    '<|startoftext|>',
    'İ',
    'Σ',
    'ß',
    'ﬁ',
  ];
  let s = '';
  for (let n = Math.floor(rnd() * 60); n > 0; n--) {
    const r = rnd();
    if (r < 0.2) s += pick(odd);
    else if (r < 0.45)
      s += String.fromCharCode(Math.floor(rnd() * 0x80)); // ASCII with control characters
    else if (r < 0.65)
      s += String.fromCharCode(Math.floor(rnd() * 0x10000)); // any BMP unit, lone surrogates too
    else if (r < 0.75)
      s += String.fromCodePoint(0x10000 + Math.floor(rnd() * 0x100000)); // a surrogate pair
    else if (r < 0.8)
      s += pick(['a', 'é', '!', '7', ' ', '東', '🐱', '\t']).repeat(Math.floor(rnd() * 400)); // long runs
    else s += `${pick(['photo', 'The', "don't", 'Café', '123', '...', 'http://x.y/z?q=1'])} `;
  }
  return s;
}

test('fuzz: 2000 random strings never throw and give valid rows', async (t) => {
  const rnd = random(20240601);
  const texts = Array.from({ length: 2000 }, () => randomText(rnd));
  for (const tok of [await clip(), new ByteTokenizer({ contextLength: 32 })]) {
    const L = tok.contextLength;
    const batch = tok.encodeBatch(texts);
    let bad = 0;
    texts.forEach((text, i) => {
      const row = tok.encode(text);
      const lastEot = row.lastIndexOf(tok.eot);
      const ok =
        row.length === L &&
        row[0] === tok.sot &&
        lastEot > 0 &&
        row.every((id) => id >= 0 && id < tok.vocabSize) &&
        row.subarray(lastEot + 1).every((id) => id === 0) &&
        row.every((id, k) => id === batch[i * L + k]);
      if (!ok && bad++ < 5)
        t.log(`${tok.constructor.name} text ${i}: ${JSON.stringify(text.slice(0, 80))} → ${Array.from(row)}`);
    });
    t.is(bad, 0, tok.constructor.name);
  }
});

test('truncate: false refuses over-long captions instead of cutting them', async (t) => {
  const strict = new ByteTokenizer({ contextLength: 6, truncate: false });
  t.deepEqual([...strict.encode('abcd')], [257, 98, 99, 100, 101, 258]);
  t.throws(() => strict.encodeBatch(['ok', 'abcde']), {
    instanceOf: RilsInputError,
    message: /at most 4 tokens \(contextLength 6\) for texts\[1\]/,
  });
  const words = WordTokenizer.fromTexts(['one two three'], { contextLength: 4, truncate: false });
  t.throws(() => words.encode('one two three'), { instanceOf: RilsInputError });
  t.is(words.encode('one two').length, 4);
  t.throws(() => new ByteTokenizer({ truncate: 'no' as unknown as boolean }), { instanceOf: RilsInputError });
});
