/**
 * A word-level tokenizer whose vocabulary is built from the captions themselves.
 * @module
 */
import { invalid } from '../validate.js';
import { checkText, checkTexts, encodeRows, readContextLength, readTruncate } from './rows.js';
import type { Tokenizer, TokenizerOptions } from './rows.js';
import { solidPrefixEnd } from './solid.js';

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
    if (!Array.isArray(words) || !words.every((w) => typeof w === 'string'))
      throw invalid('an array of words', 'words', words);
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
    for (const text of checkTexts(texts)) for (const [w] of WordTokenizer.#split(text)) words.add(w);
    return new WordTokenizer([...words], options);
  }

  encode(text: string): Int32Array {
    return encodeRows(this, [checkText(text, 'text')], (t, limit) => this.#encodeWords(t, limit));
  }

  encodeBatch(texts: readonly string[]): Int32Array {
    return encodeRows(this, checkTexts(texts), (t, limit) => this.#encodeWords(t, limit));
  }

  /** The words of `text` that are not in the vocabulary (they encode as UNK), each once. */
  unknownWords(text: string): string[] {
    const words = [...WordTokenizer.#split(checkText(text, 'text'))].map(([w]) => w);
    return [...new Set(words.filter((w) => !this.#ids.has(w)))];
  }

  /**
   * The first `limit` word ids. Each solid symbol or mark is a word of its own (a run of letters is one
   * word, however long), so the start holding `limit` of them is all that can reach the row.
   */
  #encodeWords(text: string, limit: number): number[] {
    const ids: number[] = [];
    const start = text.slice(0, solidPrefixEnd(text, limit, { clip: false, letters: false }));
    for (const [w] of WordTokenizer.#split(start)) {
      if (ids.length >= limit) break;
      ids.push(this.#ids.get(w) ?? WordTokenizer.UNK);
    }
    return ids;
  }

  static #split(text: string): IterableIterator<RegExpMatchArray> {
    return text.normalize('NFC').toLowerCase().matchAll(WORDS);
  }
}
