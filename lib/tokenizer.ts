/**
 * Caption tokenizers: OpenAI CLIP's BPE (spec §6) and a vocabulary-free byte tokenizer.
 *
 * The CLIP BPE is written by hand (about a hundred lines) instead of taken from npm: nothing in
 * node_modules provides it, `@xenova/transformers` would pull onnxruntime-web and sharp into a
 * LibTorch package for one function, and `@huggingface/tokenizers` is a 0.x package built around
 * Hugging Face `tokenizer.json` files rather than CLIP's merges file. Owning the code also lets us
 * pin the exact semantics the reference ids in shared/data were made with.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

import { RilsInputError } from './errors.js';
import { checkInteger, checkPlainObject, invalid } from './validate.js';

/** Turns captions into the fixed-length id rows the text encoder takes. */
export interface Tokenizer {
  /** Number of ids; the model's embedding table must be this large. */
  readonly vocabSize: number;
  /** Start-of-text id, the first id of every row (V − 2). */
  readonly sot: number;
  /** End-of-text id, the largest id (V − 1), so the model can find it with an argmax. */
  readonly eot: number;
  /** Length L of every row; captions are cut to fit and rows are zero-padded to it. */
  readonly contextLength: number;
  /** Whether over-long captions are cut (true) or refused (false). Default true. */
  readonly truncate?: boolean;
  /** One row of `contextLength` ids: SOT, the caption's ids, EOT, then zeros. */
  encode(text: string): Int32Array;
  /** `[texts.length, contextLength]` row-major, written straight into one array (no per-row copies). */
  encodeBatch(texts: readonly string[]): Int32Array;
}

/** Options shared by both tokenizers. */
export interface TokenizerOptions {
  /** Row length L (default 77, CLIP's). At least 2, room for SOT and EOT. */
  contextLength?: number;
  /**
   * Cut captions longer than L − 2 tokens, keeping EOT last (open_clip's behaviour). `false` makes
   * an over-long caption a RilsInputError instead. Default true.
   */
  truncate?: boolean;
}

const DEFAULT_CONTEXT = 77;
/** CLIP's SimpleTokenizer reads lines 1 .. 49152-256-2 of the file (`merges[1:49152-256-2+1]`). */
const MERGE_COUNT = 49152 - 256 - 2;
/** Caches of distinct words are cleared past this size, so a long-running data loader cannot grow without bound. */
const CACHE_LIMIT = 100_000;

/** Python's `str.isspace()` set, which `re`'s `\s` and `str.strip()` use; JS `\s` differs (it has U+FEFF, lacks U+001C–U+001F, U+0085). */
const WHITESPACE_RUN = /[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/g;
/** CLIP's pre-split. `\s` became a plain space: after whitespace cleaning no other whitespace is left. */
const PIECES = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^ \p{L}\p{N}]+/giu;
/** Python `html.unescape`'s pattern: numeric references with optional `;`, names up to 32 characters. */
const ENTITY = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/**
 * HTML's legacy entities, the only ones that also match without `;` (and as a prefix: "&copyright" is
 * "©right" in Python too): the Latin-1 names for U+00A0 … U+00FF in order, plus these ten. With them the
 * missing-`;` and prefix rules match Python's `html.unescape` exactly.
 */
const LEGACY = new Map<string, string>([
  ...('nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute '
    + 'micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig '
    + 'Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash '
    + 'Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute '
    + 'ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc '
    + 'uuml yacute thorn yuml').split(' ').map((name, i): [string, string] => [name, String.fromCharCode(0xa0 + i)]),
  ['amp', '&'], ['lt', '<'], ['gt', '>'], ['quot', '"'], ['AMP', '&'], ['LT', '<'], ['GT', '>'], ['QUOT', '"'],
  ['COPY', '©'], ['REG', '®'],
]);
/** Other named entities (with `;` only) common in web captions; Python knows every HTML5 name; these are the usual ones. */
const NAMED = new Map<string, string>([
  ...LEGACY, ['apos', "'"], ['trade', '™'], ['hellip', '…'], ['mdash', '—'], ['ndash', '–'], ['lsquo', '‘'],
  ['rsquo', '’'], ['sbquo', '‚'], ['ldquo', '“'], ['rdquo', '”'], ['bdquo', '„'], ['bull', '•'], ['euro', '€'],
]);
/** What Python substitutes for `&#128;` … `&#159;` (the Windows-1252 reading browsers use). */
const CP1252 = '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f'
  + '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

/** One character reference, resolved as Python's `html.unescape` does (exactly, but for rare names outside the tables). */
function resolveEntity(match: string, body: string): string {
  if (body.startsWith('#')) {
    const hex = body[1] === 'x' || body[1] === 'X';
    const n = Number.parseInt(body.slice(hex ? 2 : 1), hex ? 16 : 10);
    if (n === 0) return '\ufffd';
    if (n === 0x0d) return '\r';
    if (n >= 0x80 && n <= 0x9f) return CP1252[n - 0x80]!;
    if ((n >= 0xd800 && n <= 0xdfff) || !(n <= 0x10ffff)) return '\ufffd';
    const forbidden = n <= 0x08 || n === 0x0b || (n >= 0x0e && n <= 0x1f) || n === 0x7f
      || (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe;
    return forbidden ? '' : String.fromCodePoint(n);
  }
  const full = body.endsWith(';') ? NAMED.get(body.slice(0, -1)) : LEGACY.get(body);
  if (full !== undefined) return full;
  for (let end = body.length - 1; end > 1; end--) {
    const char = LEGACY.get(body.slice(0, end));
    if (char !== undefined) return char + body.slice(end);
  }
  return match;
}

function unescapeHtml(text: string): string {
  return text.includes('&') ? text.replace(ENTITY, resolveEntity) : text;
}

/** Collapses every whitespace run to one space and strips the ends (CLIP's `whitespace_clean`). */
function cleanWhitespace(text: string): string {
  const s = text.replace(WHITESPACE_RUN, ' ');
  const start = s.startsWith(' ') ? 1 : 0;
  const end = s.length > start && s.endsWith(' ') ? s.length - 1 : s.length;
  return s.slice(start, end);
}

function readContextLength(options: unknown): number {
  const { contextLength } = checkPlainObject(options ?? {}, 'options');
  return contextLength === undefined ? DEFAULT_CONTEXT : checkInteger(contextLength, 'contextLength', 2);
}

function readTruncate(options: unknown): boolean {
  const { truncate } = checkPlainObject(options ?? {}, 'options');
  if (truncate !== undefined && typeof truncate !== 'boolean') throw invalid('a boolean', 'truncate', truncate);
  return truncate ?? true;
}

function checkText(text: unknown, what: string): string {
  if (typeof text !== 'string') throw invalid('a string', what, text);
  return text;
}

function checkTexts(texts: unknown): readonly string[] {
  if (!Array.isArray(texts) || texts.length === 0) throw invalid('a non-empty array of strings', 'texts', texts);
  for (let i = 0; i < texts.length; i++) checkText(texts[i], `texts[${i}]`); // a loop, so holes are caught too
  return texts as readonly string[];
}

/** Writes [SOT] + ids + [EOT] at `offset`; the ids are cut to L − 2 so EOT always ends a full row (open_clip). */
function writeRow(out: Int32Array, offset: number, ids: readonly number[], t: Tokenizer): void {
  const n = Math.min(ids.length, t.contextLength - 2);
  out[offset] = t.sot;
  for (let i = 0; i < n; i++) out[offset + 1 + i] = ids[i]!;
  out[offset + 1 + n] = t.eot;
}

/** Fills one fresh zeroed array with a row per text; `ids` needs only the first L − 2 ids of each. */
function encodeRows(t: Tokenizer, texts: readonly string[], ids: (text: string, limit: number) => number[]): Int32Array {
  const L = t.contextLength;
  const strict = t.truncate === false;
  const out = new Int32Array(texts.length * L);
  texts.forEach((text, i) => {
    const row = ids(text, strict ? L - 1 : L - 2); // one more id is enough to tell an over-long caption
    if (strict && row.length > L - 2) {
      throw new RilsInputError(
        `Expected a caption of at most ${L - 2} tokens (contextLength ${L}) for texts[${i}] but received a longer one; ` +
          'shorten it or tokenize with truncate: true',
      );
    }
    writeRow(out, i * L, row, t);
  });
  return out;
}

/** GPT-2/CLIP `bytes_to_unicode`: printable bytes stand for themselves, the rest map to U+0100 onwards. */
function byteSymbols(): { order: number[]; symbol: string[] } {
  const order: number[] = [];
  for (const [lo, hi] of [[0x21, 0x7e], [0xa1, 0xac], [0xae, 0xff]] as const) for (let b = lo; b <= hi; b++) order.push(b);
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

/**
 * OpenAI CLIP's byte-level BPE (49408 ids; SOT 49406, EOT 49407), matching its SimpleTokenizer id for
 * id except that Unicode NFC stands in for ftfy, as spec §6 asks. Load it once and share it.
 */
export class ClipTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly sot: number;
  readonly eot: number;
  readonly contextLength: number;
  readonly truncate: boolean;
  readonly #symbol: string[];
  readonly #byteOf = new Map<string, number>();
  readonly #vocab: string[];
  readonly #encoder = new Map<string, number>();
  readonly #ranks = new Map<string, number>();
  readonly #cache = new Map<string, number[]>();

  private constructor(merges: readonly (readonly [string, string])[], contextLength: number, truncate: boolean) {
    const { order, symbol } = byteSymbols();
    this.#symbol = symbol;
    const bytes = order.map((b) => symbol[b]!);
    order.forEach((b) => this.#byteOf.set(symbol[b]!, b));
    this.#vocab = [...bytes, ...bytes.map((s) => `${s}</w>`), ...merges.map(([a, b]) => a + b),
      '<|startoftext|>', '<|endoftext|>'];
    this.#vocab.forEach((s, id) => this.#encoder.set(s, id)); // a repeated string keeps its last id, as Python's dict does
    merges.forEach(([a, b], rank) => this.#ranks.set(`${a} ${b}`, rank));
    this.vocabSize = this.#vocab.length;
    this.sot = this.vocabSize - 2;
    this.eot = this.vocabSize - 1;
    this.contextLength = contextLength;
    this.truncate = truncate;
  }

  /**
   * Reads CLIP's `bpe_simple_vocab_16e6.txt.gz`. The file is not bundled (it is CLIP's, 1.3 MB), so the caller
   * names it; an unreadable, non-gzip or short file rejects with {@link RilsInputError} naming the path.
   */
  static async load(vocabPath: string, options?: TokenizerOptions): Promise<ClipTokenizer> {
    if (typeof vocabPath !== 'string' || vocabPath === '') throw invalid('a file path', 'vocabPath', vocabPath);
    const contextLength = readContextLength(options);
    const truncate = readTruncate(options);
    const fail = (why: string) => new RilsInputError(
      `Expected a gzipped CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) for vocabPath but received ${JSON.stringify(vocabPath)}: ${why}`);
    let text: string;
    try {
      text = (await promisify(gunzip)(await readFile(vocabPath))).toString('utf8');
    } catch (error) {
      throw fail(error instanceof Error ? error.message : String(error));
    }
    const lines = text.split('\n').slice(1, MERGE_COUNT + 1);
    const merges = lines.map((line) => line.split(' '));
    if (lines.length < MERGE_COUNT) throw fail(`it has ${lines.length} merge lines, CLIP reads ${MERGE_COUNT}`);
    const bad = merges.findIndex((pair) => pair.length !== 2 || !pair[0] || !pair[1]);
    if (bad >= 0) throw fail(`line ${bad + 2} is not a merge pair: ${JSON.stringify(lines[bad])}`);
    return new ClipTokenizer(merges as [string, string][], contextLength, truncate);
  }

  /** A caption's BPE ids without SOT/EOT and without truncation: what CLIP's `SimpleTokenizer.encode` returns. */
  tokenize(text: string): number[] {
    return this.#ids(checkText(text, 'text'), Infinity);
  }

  encode(text: string): Int32Array {
    return encodeRows(this, [checkText(text, 'text')], (t, limit) => this.#ids(t, limit));
  }

  encodeBatch(texts: readonly string[]): Int32Array {
    return encodeRows(this, checkTexts(texts), (t, limit) => this.#ids(t, limit));
  }

  /**
   * Ids back to text, CLIP's way (each `</w>` becomes a space, bad UTF-8 becomes U+FFFD). A row (first id SOT)
   * is read up to its EOT, since its zero padding would otherwise decode as "!" (id 0).
   */
  decode(ids: ArrayLike<number>): string {
    let [start, end] = [0, ids.length];
    if (ids[0] === this.sot) {
      start = 1;
      const eot = Array.prototype.indexOf.call(ids, this.eot) as number;
      if (eot >= 0) end = eot;
    }
    const bytes: number[] = [];
    for (let i = start; i < end; i++) {
      const id = ids[i];
      const s = typeof id === 'number' && Number.isInteger(id) ? this.#vocab[id] : undefined;
      if (s === undefined) throw invalid(`an integer id in [0, ${this.vocabSize})`, `ids[${i}]`, id);
      for (const ch of s) bytes.push(this.#byteOf.get(ch)!);
    }
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(Uint8Array.from(bytes)).replaceAll('</w>', ' ');
  }

  /** The ids of `text`, stopping once `limit` are known (later words cannot change earlier ids). */
  #ids(text: string, limit: number): number[] {
    let clean = unescapeHtml(unescapeHtml(text)).normalize('NFC');
    // U+0345 case-folds to a letter, so under CLIP's IGNORECASE no branch of the pre-split takes it and
    // Python's findall skips it like a space; JS's /iu takes it into a letter run. A space reproduces Python.
    clean = cleanWhitespace(clean).toLowerCase().replaceAll('\u0345', ' ');
    const ids: number[] = [];
    for (const [piece] of clean.matchAll(PIECES)) {
      if (ids.length >= limit) break;
      let word = '';
      for (const b of Buffer.from(piece, 'utf8')) word += this.#symbol[b]!;
      for (const id of this.#bpe(word)) ids.push(id);
    }
    return ids;
  }

  /** BPE of one pre-split word (in byte symbols), lowest-ranked pair first, cached as CLIP does. */
  #bpe(word: string): number[] {
    const cached = this.#cache.get(word);
    if (cached !== undefined) return cached;
    // Like CLIP's cache seed: a literal special token in a caption maps to its special id.
    if (word === '<|startoftext|>' || word === '<|endoftext|>') return [this.#encoder.get(word)!];
    let parts = [...word];
    parts.push(`${parts.pop()!}</w>`);
    while (parts.length > 1) {
      let best = Infinity;
      let first = '';
      let second = '';
      for (let i = 0; i + 1 < parts.length; i++) {
        const rank = this.#ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (rank !== undefined && rank < best) [best, first, second] = [rank, parts[i]!, parts[i + 1]!];
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < parts.length; i++) {
        if (parts[i] === first && parts[i + 1] === second) merged.push(first + parts[++i]!);
        else merged.push(parts[i]!);
      }
      parts = merged;
    }
    const ids = parts.map((s) => this.#encoder.get(s)!); // every merge result and byte symbol is in the vocabulary
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(word, ids);
    return ids;
  }
}

/**
 * A vocabulary-free tokenizer for tests and small runs without CLIP's file: id = UTF-8 byte + 1 (0 stays
 * padding), SOT 257, EOT 258, 259 ids. Text is NFC-normalised and whitespace-collapsed; case is kept.
 */
export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 259;
  readonly sot = 257;
  readonly eot = 258;
  readonly contextLength: number;
  readonly truncate: boolean;

  /** Takes only the row length; there is nothing to load. */
  constructor(options?: TokenizerOptions) {
    this.contextLength = readContextLength(options);
    this.truncate = readTruncate(options);
  }

  encode(text: string): Int32Array {
    return encodeRows(this, [checkText(text, 'text')], ByteTokenizer.#ids);
  }

  encodeBatch(texts: readonly string[]): Int32Array {
    return encodeRows(this, checkTexts(texts), ByteTokenizer.#ids);
  }

  /** Ids back to text: padding and SOT are skipped, reading stops at EOT, bad UTF-8 becomes U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw invalid(`an integer id in [0, ${this.vocabSize})`, `ids[${i}]`, id);
      }
      if (id === this.eot) break;
      if (id !== 0 && id !== this.sot) bytes.push(id - 1);
    }
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(Uint8Array.from(bytes));
  }

  static #ids(this: void, text: string, limit: number): number[] {
    const bytes = Buffer.from(cleanWhitespace(text.normalize('NFC')), 'utf8');
    return Array.from(bytes.subarray(0, Math.min(bytes.length, limit)), (b) => b + 1);
  }
}

/** The words of a caption: lowercase runs of letters or digits, and single other symbols. */
const WORDS = /[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu;

/**
 * A word-level tokenizer built from a corpus of captions, for small datasets without CLIP's
 * vocabulary file: each distinct lowercase word gets an id; unseen words map to UNK (1); 0 is
 * padding; SOT and EOT are the two last ids. Save {@link WordTokenizer.words | words} to rebuild the same ids.
 *
 * @example
 * ```ts
 * const tokenizer = WordTokenizer.fromTexts(captions, { contextLength: 16 });
 * const model = await Rils.create({ preset: 'micro', vocabSize: tokenizer.vocabSize, contextLength: 16, tokenizer });
 * ```
 */
export class WordTokenizer implements Tokenizer {
  /** Id of words not in the vocabulary. */
  static readonly UNK = 1;
  readonly vocabSize: number;
  readonly sot: number;
  readonly eot: number;
  readonly contextLength: number;
  readonly truncate: boolean;
  /** The vocabulary in id order (word i has id i + 2). */
  readonly words: readonly string[];
  readonly #ids: Map<string, number>;

  /** A tokenizer over exactly these words (e.g. a saved `words` list). */
  constructor(words: readonly string[], options?: TokenizerOptions) {
    if (!Array.isArray(words) || !words.every((w) => typeof w === 'string')) throw invalid('an array of words', 'words', words);
    this.contextLength = readContextLength(options);
    this.truncate = readTruncate(options);
    this.words = Object.freeze([...new Set(words)]);
    this.#ids = new Map(this.words.map((w, i) => [w, i + 2]));
    this.vocabSize = this.words.length + 4;
    this.sot = this.vocabSize - 2;
    this.eot = this.vocabSize - 1;
  }

  /** Collects the words of `texts` in order of first appearance. */
  static fromTexts(texts: readonly string[], options?: TokenizerOptions): WordTokenizer {
    const words = new Set<string>();
    for (const text of checkTexts(texts)) for (const w of WordTokenizer.#split(text)) words.add(w);
    return new WordTokenizer([...words], options);
  }

  encode(text: string): Int32Array {
    return encodeRows(this, [checkText(text, 'text')], (t, limit) => this.#encodeWords(t, limit));
  }

  encodeBatch(texts: readonly string[]): Int32Array {
    return encodeRows(this, checkTexts(texts), (t, limit) => this.#encodeWords(t, limit));
  }

  #encodeWords(text: string, limit: number): number[] {
    return WordTokenizer.#split(text).slice(0, limit).map((w) => this.#ids.get(w) ?? WordTokenizer.UNK);
  }

  static #split(text: string): string[] {
    return text.normalize('NFC').toLowerCase().match(WORDS) ?? [];
  }
}

/** A tokenizer's description as stored in weight files, enough to rebuild it. */
export type TokenizerSpec =
  | {
      /** {@link ByteTokenizer}. */
      type: 'byte';
      /** Row length. */
      contextLength: number;
    }
  | {
      /** {@link WordTokenizer}. */
      type: 'word';
      /** Row length. */
      contextLength: number;
      /** The vocabulary in id order. */
      words: string[];
    }
  | {
      /** {@link ClipTokenizer} (its vocabulary file is not stored). */
      type: 'clip';
      /** Row length. */
      contextLength: number;
    };

/** Describes a tokenizer for {@link tokenizerFromSpec}. */
export function tokenizerSpec(tokenizer: Tokenizer): TokenizerSpec | undefined {
  if (tokenizer instanceof WordTokenizer) return { type: 'word', contextLength: tokenizer.contextLength, words: [...tokenizer.words] };
  if (tokenizer instanceof ByteTokenizer) return { type: 'byte', contextLength: tokenizer.contextLength };
  if (tokenizer instanceof ClipTokenizer) return { type: 'clip', contextLength: tokenizer.contextLength };
  return undefined;
}

/** Rebuilds a tokenizer; the CLIP one needs its vocabulary file. */
export async function tokenizerFromSpec(spec: TokenizerSpec, clipVocabPath?: string): Promise<Tokenizer> {
  const options = { contextLength: spec.contextLength };
  if (spec.type === 'word') return new WordTokenizer(spec.words, options);
  if (spec.type === 'byte') return new ByteTokenizer(options);
  if (spec.type === 'clip' && clipVocabPath) return ClipTokenizer.load(clipVocabPath, options);
  throw new RilsInputError(`This model uses the CLIP BPE tokenizer: pass the path of bpe_simple_vocab_16e6.txt.gz`);
}
