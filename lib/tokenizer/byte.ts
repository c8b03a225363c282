/**
 * A tokenizer that needs no vocabulary file: one id per UTF-8 byte.
 * @module
 */
import { invalid } from '../validate.js';
import { checkText, checkTexts, cleanWhitespace, encodeRows, readContextLength, readTruncate } from './rows.js';
import type { Tokenizer, TokenizerOptions } from './rows.js';
import { solidPrefixEnd } from './solid.js';

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

  /** The first `limit` byte ids; every solid code point is at least one byte, so that many are all that can reach the row. */
  static #ids(this: void, text: string, limit: number): number[] {
    const start = text.slice(0, solidPrefixEnd(text, limit, { clip: false, letters: true }));
    const bytes = Buffer.from(cleanWhitespace(start.normalize('NFC')), 'utf8');
    return Array.from(bytes.subarray(0, Math.min(bytes.length, limit)), (b) => b + 1);
  }
}
