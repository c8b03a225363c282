/**
 * What every tokenizer shares: the {@link Tokenizer} contract, its options, the checks of what callers
 * pass, and the row layout (SOT, ids, EOT, zeros).
 * @module
 */
import { RilsInputError } from '../errors.js';
import { checkInteger, checkPlainObject, describe, invalid } from '../validate.js';

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

/** Whether `t` has what a model needs of a {@link Tokenizer}. @internal */
export function isTokenizer(t: unknown): t is Tokenizer {
  const k = t as Partial<Tokenizer> | null;
  return (
    typeof k === 'object' &&
    k !== null &&
    typeof k.encodeBatch === 'function' &&
    typeof k.encode === 'function' &&
    Number.isSafeInteger(k.vocabSize) &&
    Number.isSafeInteger(k.contextLength)
  );
}

/**
 * `t` as a tokenizer, for `what` (a data source's option): a model made without `{ tokenizer }` has
 * none (`model.tokenizer` is undefined), which is the usual way to get here with nothing.
 * @internal
 */
export function checkTokenizerOption(t: unknown, what: string): Tokenizer {
  if (isTokenizer(t)) return t;
  throw new RilsInputError(
    `Expected a tokenizer for ${what} but received ${t === undefined ? 'undefined' : describe(t)}: ` +
      'a model made without { tokenizer } has none (model.tokenizer is undefined); pass the one its token ids come from, ' +
      'e.g. WordTokenizer.fromTexts(captions), ClipTokenizer.load() or new ByteTokenizer()',
  );
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

/** Python's `str.isspace()` set as a regex class body; JS `\s` differs (it has U+FEFF, lacks U+001C–U+001F, U+0085). */
export const PYTHON_SPACE = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITESPACE_RUN = new RegExp(`[${PYTHON_SPACE}]+`, 'g');

/** Collapses every whitespace run to one space and strips the ends (CLIP's `whitespace_clean`). */
export function cleanWhitespace(text: string): string {
  const s = text.replace(WHITESPACE_RUN, ' ');
  const start = s.startsWith(' ') ? 1 : 0;
  const end = s.length > start && s.endsWith(' ') ? s.length - 1 : s.length;
  return s.slice(start, end);
}

export function readContextLength(options: unknown): number {
  const { contextLength } = checkPlainObject(options ?? {}, 'options');
  return contextLength === undefined ? DEFAULT_CONTEXT : checkInteger(contextLength, 'contextLength', 2);
}

export function readTruncate(options: unknown): boolean {
  const { truncate } = checkPlainObject(options ?? {}, 'options');
  if (truncate !== undefined && typeof truncate !== 'boolean') throw invalid('a boolean', 'truncate', truncate);
  return truncate ?? true;
}

export function checkText(text: unknown, what: string): string {
  if (typeof text !== 'string') throw invalid('a string', what, text);
  return text;
}

export function checkTexts(texts: unknown): readonly string[] {
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

/**
 * Fills one fresh zeroed array with a row per text. `ids(text, limit)` gives exactly the text's ids when it
 * has at most `limit`; for a longer text it may give any `limit` or more ids (its leading ones as far as
 * cheap work can tell), so that no caption costs more work than a row holds.
 */
export function encodeRows(
  t: Tokenizer,
  texts: readonly string[],
  ids: (text: string, limit: number) => number[],
): Int32Array {
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
