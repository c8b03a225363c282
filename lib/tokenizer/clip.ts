/**
 * OpenAI CLIP's BPE tokenizer (spec §6), written by hand (about a hundred lines) instead of taken from
 * npm: nothing in node_modules provides it, `@xenova/transformers` would pull onnxruntime-web and sharp
 * into a LibTorch package for one function, and `@huggingface/tokenizers` is a 0.x package built around
 * Hugging Face `tokenizer.json` files rather than CLIP's merges file. Owning the code also lets us pin
 * the exact semantics the reference ids in shared/data were made with.
 * @module
 */
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';

import { RilsInputError } from '../errors.js';
import { readRegularFile } from '../io/regular-file.js';
import { invalid } from '../validate.js';
import { BpeMerges, byteSymbols } from './bpe.js';
import { unescapeTwice } from './html.js';
import { PYTHON_SPACE, checkText, checkTexts, encodeRows, readContextLength, readTruncate } from './rows.js';
import type { Tokenizer, TokenizerOptions } from './rows.js';
import { solidPrefixEnd } from './solid.js';

/** CLIP's SimpleTokenizer reads lines 1 .. 49152-256-2 of the file (`merges[1:49152-256-2+1]`). */
const MERGE_COUNT = 49152 - 256 - 2;
/** Caches of distinct words are cleared past this size, so a long-running data loader cannot grow without bound. */
const CACHE_LIMIT = 100_000;
/** Longer words are not cached: they are rare, and would make the cache big. */
const CACHED_WORD_LENGTH = 64;
/** Bytes past the ones an over-long word's first tokens can hold that its BPE still sees, so the cut barely reaches them. */
const CUT_MARGIN = 64;
/**
 * Code units at the end of `unescapeTwice(text.slice(0, n))` that may differ from the start of
 * `unescapeTwice(text)`: a reference cut at n spans at most 1 + 64 + 1 units (or is numeric and gives
 * one character), as does one of the second pass.
 */
const UNSETTLED = 2 * 66;
/** Three or more U+0345 in a row: NFC moves the marks after them in front of each (quadratic); two behave the same. */
const YPOGEGRAMMENI_RUN = /\u0345{3,}/g;

/** CLIP's vocabulary file as bundled with rils (assets/, beside dist/ and lib/). */
export const BUNDLED_CLIP_VOCAB = fileURLToPath(new URL('../../assets/bpe_simple_vocab_16e6.txt.gz', import.meta.url));
/** The ids of CLIP's vocabulary: 256 bytes, their end-of-word forms, the merges, SOT and EOT. */
export const CLIP_VOCAB_SIZE = 49408;

/** The merge pairs of CLIP's text (its first line is a header, as in both file formats). */
function mergePairs(text: string, fail: (why: string) => Error): [string, string][] {
  const lines = text.split('\n').slice(1, MERGE_COUNT + 1);
  const merges = lines.map((line) => line.split(' '));
  if (lines.length < MERGE_COUNT) throw fail(`it has ${lines.length} merge lines, CLIP reads ${MERGE_COUNT}`);
  const bad = merges.findIndex((pair) => pair.length !== 2 || !pair[0] || !pair[1]);
  if (bad >= 0) throw fail(`line ${bad + 2} is not a merge pair: ${JSON.stringify(lines[bad])}`);
  return merges as [string, string][];
}

/**
 * CLIP's pre-split, whose matches are the pieces (words) of a caption, except that a whitespace run is a
 * match too (group 1), to skip: the same pieces as first making it one space (`whitespace_clean`), in
 * one step instead of one per character of a long run. With `longest`, a run of letters or symbols is
 * cut at that many code points (it is then over-long anyway), so no match scans a whole megabyte.
 */
function pieces(longest?: number): RegExp {
  const run = longest === undefined ? '+' : `{1,${longest}}`;
  return new RegExp(
    `([${PYTHON_SPACE}]+)|<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|` +
      `\\p{L}${run}|\\p{N}|[^${PYTHON_SPACE}\\p{L}\\p{N}]${run}`,
    'giu',
  );
}
const ALL_PIECES = pieces();

/**
 * OpenAI CLIP's byte-level BPE (49408 ids; SOT 49406, EOT 49407), matching its SimpleTokenizer id for
 * id except that Unicode NFC stands in for ftfy, as spec §6 asks. Load it once and share it.
 *
 * A caption costs what its row holds, not its length: only as much of it is cleaned and merged as can
 * reach the row's L − 2 tokens (a few thousand characters at most), so captions of any length encode in
 * milliseconds, with CLIP's exact ids whenever they fit the row.
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
  readonly #merges: BpeMerges;
  readonly #mergePairs: readonly (readonly [string, string])[];
  readonly #cache = new Map<string, number[]>();
  /** Bytes of the longest token (32 for CLIP's file): n bytes are never fewer than n / #longest tokens. */
  readonly #longest: number;
  readonly #pieces: RegExp;

  private constructor(merges: readonly (readonly [string, string])[], contextLength: number, truncate: boolean) {
    const { order, symbol } = byteSymbols();
    this.#symbol = symbol;
    const bytes = order.map((b) => symbol[b]!);
    order.forEach((b) => this.#byteOf.set(symbol[b]!, b));
    this.#vocab = [
      ...bytes,
      ...bytes.map((s) => `${s}</w>`),
      ...merges.map(([a, b]) => a + b),
      '<|startoftext|>',
      '<|endoftext|>',
    ];
    this.#vocab.forEach((s, id) => this.#encoder.set(s, id)); // a repeated string keeps its last id, as Python's dict does
    this.#merges = new BpeMerges(merges);
    this.#mergePairs = merges;
    this.#longest = Math.max(...this.#vocab.map((s) => [...s.replace('</w>', '')].length));
    this.#pieces = pieces((contextLength - 1) * this.#longest + CUT_MARGIN);
    this.vocabSize = this.#vocab.length;
    this.sot = this.vocabSize - 2;
    this.eot = this.vocabSize - 1;
    this.contextLength = contextLength;
    this.truncate = truncate;
  }

  /**
   * Reads CLIP's `bpe_simple_vocab_16e6.txt.gz`; by default the copy bundled with rils (MIT, OpenAI:
   * assets/CLIP-LICENSE). An unreadable, non-gzip or short file rejects with {@link RilsInputError}
   * naming the path.
   */
  static async load(vocabPath: string = BUNDLED_CLIP_VOCAB, options?: TokenizerOptions): Promise<ClipTokenizer> {
    if (typeof vocabPath !== 'string' || vocabPath === '') throw invalid('a file path', 'vocabPath', vocabPath);
    const fail = (why: string) =>
      new RilsInputError(
        `Expected a gzipped CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) for vocabPath but received ${JSON.stringify(vocabPath)}: ${why}`,
      );
    let text: string;
    try {
      text = (await promisify(gunzip)(await readRegularFile(vocabPath, 'a gzipped vocabulary'))).toString('utf8');
    } catch (error) {
      throw fail(error instanceof Error ? error.message : String(error));
    }
    return new ClipTokenizer(mergePairs(text, fail), readContextLength(options), readTruncate(options));
  }

  /**
   * Reads a Hugging Face CLIP tokenizer's `vocab.json` and `merges.txt` (what a `openai/clip-vit-*`
   * folder holds): the same merges, hence the same ids as {@link load}. The vocabulary must be the one
   * the merges make, or the call rejects naming the first token that differs.
   */
  static async fromHuggingFace(
    vocabPath: string,
    mergesPath: string,
    options?: TokenizerOptions,
  ): Promise<ClipTokenizer> {
    const fail = (why: string) => new RilsInputError(`${mergesPath} and ${vocabPath} are no CLIP tokenizer: ${why}`);
    let merges: string, vocab: Record<string, number>;
    try {
      merges = (await readRegularFile(mergesPath, 'a merges.txt')).toString('utf8');
      vocab = JSON.parse((await readRegularFile(vocabPath, 'a vocab.json')).toString('utf8')) as Record<string, number>;
    } catch (error) {
      throw fail(error instanceof Error ? error.message : String(error));
    }
    const tokenizer = new ClipTokenizer(mergePairs(merges, fail), readContextLength(options), readTruncate(options));
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab))
      throw fail('vocab.json is not a JSON object');
    const entries = Object.entries(vocab);
    if (entries.length !== tokenizer.vocabSize)
      throw fail(`vocab.json has ${entries.length} tokens, the merges make ${tokenizer.vocabSize}`);
    for (const [token, id] of entries) {
      if (tokenizer.#encoder.get(token) !== id)
        throw fail(`vocab.json gives '${token}' id ${id}, the merges ${tokenizer.#encoder.get(token)}`);
    }
    return tokenizer;
  }

  /** The tokens in id order (what a Hugging Face vocab.json maps to ids; `</w>` ends a word). */
  vocabulary(): readonly string[] {
    return this.#vocab;
  }

  /** The merge pairs in rank order (what a Hugging Face merges.txt lists after its header). */
  merges(): readonly (readonly [string, string])[] {
    return this.#mergePairs;
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

  /** The ids of `text`: all of them, or (with a finite `limit`) enough for a row, as `encodeRows` asks. */
  #ids(text: string, limit: number): number[] {
    const ids: number[] = [];
    const bounded = limit !== Infinity;
    // `limit` tokens hold at most limit × #longest bytes: a start with more solid bytes is all that matters.
    const source = bounded ? this.#start(text, (limit - 1) * this.#longest + 1) : unescapeTwice(text);
    for (const [piece, space] of this.#clean(source).matchAll(bounded ? this.#pieces : ALL_PIECES)) {
      const room = limit - ids.length;
      if (room <= 0) break;
      if (space === undefined) for (const id of this.#word(piece, room)) ids.push(id);
    }
    return ids;
  }

  /**
   * The shortest start of unescaped `text` holding `needed` solid code points (all of it when it holds
   * fewer), unescaping only a growing start of `text`: a megabyte of character references costs what
   * the few thousand characters of a row cost.
   */
  #start(text: string, needed: number): string {
    for (let read = 2 * needed + UNSETTLED; ; read *= 4) {
      const all = read >= text.length;
      const unescaped = unescapeTwice(all ? text : text.slice(0, read));
      const end = solidPrefixEnd(unescaped, needed, { clip: true, letters: true });
      if (all || end <= unescaped.length - UNSETTLED) return unescaped.slice(0, end);
    }
  }

  /** CLIP's `basic_clean` (HTML already unescaped) and `lower`, with NFC for ftfy; whitespace is left for the pre-split to skip. */
  #clean(text: string): string {
    const clean = text.replace(YPOGEGRAMMENI_RUN, '\u0345\u0345').normalize('NFC').toLowerCase();
    // U+0345 case-folds to a letter, so under CLIP's IGNORECASE no branch of the pre-split takes it and
    // Python's findall skips it like a space; JS's /iu takes it into a letter run. A space reproduces Python.
    return clean.replaceAll('\u0345', ' ');
  }

  /**
   * The ids of one pre-split word, cached as CLIP does. A word with more bytes than `room` tokens can hold
   * cannot fit the row: only its start is merged, for (at least) its first `room` ids.
   */
  #word(piece: string, room: number): number[] {
    const cached = this.#cache.get(piece);
    if (cached !== undefined) return cached;
    // Like CLIP's cache seed: a literal special token in a caption maps to its special id.
    if (piece === '<|startoftext|>' || piece === '<|endoftext|>') return [this.#encoder.get(piece)!];
    const bytes = Buffer.from(piece, 'utf8');
    const cut = bytes.length > room * this.#longest;
    const parts = Array.from(
      cut ? bytes.subarray(0, room * this.#longest + CUT_MARGIN) : bytes,
      (b) => this.#symbol[b]!,
    );
    if (!cut) parts.push(`${parts.pop()!}</w>`);
    const ids = this.#merges.merge(parts).map((s) => this.#encoder.get(s)!); // every merge result and byte symbol is in the vocabulary
    if (cut || piece.length > CACHED_WORD_LENGTH) return ids;
    if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
    this.#cache.set(piece, ids);
    return ids;
  }
}
