/**
 * How much of a caption can reach its row. A row holds L − 2 tokens, so once the start of a caption
 * surely gives more than that, the rest of it cannot change the row and need not be cleaned at all:
 * this is what keeps a megabyte caption, or ten thousand combining marks (which ICU's NFC reorders in
 * quadratic time), as cheap as a short one.
 *
 * "Surely" is counted in *solid* code points: ones that every tokenizer's cleaning (NFC, whitespace
 * collapsing, lowercasing, CLIP's U+0345 rule; HTML is unescaped before this count) keeps as at least
 * one byte of a non-space token, whatever comes after them. A code point is solid unless it is
 * - whitespace (Python's or JS's), or U+0345 for CLIP (its pre-split drops it);
 * - one of the first three combining code points after a starter: NFC composes at most three into it
 *   (no canonical decomposition is longer than four code points). Marks after whitespace are solid.
 * No lowercase or NFC mapping turns a solid code point into whitespace, U+0345 or a letter from a
 * non-letter (checked over every code point of Node's ICU when this was written).
 * @module
 */
import { PYTHON_SPACE } from './rows.js';

const enum Kind {
  /** Letters and digits. */
  Letter,
  /** Symbols and punctuation: each a word of its own for the word tokenizer. */
  Symbol,
  /** A combining mark: NFC may compose it into the starter before it. */
  Mark,
  /** A Hangul vowel or final consonant jamo: a letter that NFC composes into a syllable. */
  Jamo,
  /** Whitespace: never a byte of a token, and nothing composes with it. */
  Space,
  /** U+0345, a combining mark that CLIP's pre-split drops like a space. */
  Ypogegrammeni,
  /** May be composed into the starter before it, and may compose what follows it. */
  Starter,
}

/** Which code points count: every solid one, or (the word tokenizer) only solid symbols and marks, each a word of its own. */
export interface SolidRule {
  /** CLIP's cleaning, which drops U+0345 like a space. */
  clip: boolean;
  /** Letters and jamo count (for the word tokenizer a run of them is one word whatever its length, so they do not). */
  letters: boolean;
}

let bmp: Uint8Array | undefined;
const astral = new Map<number, Kind>();
/** Astral code points that are both composed into a starter and compose what follows (Unicode 16). */
const ASTRAL_STARTERS = new Set([0x113c2, 0x1611e, 0x16129, 0x16d67]);
const SPACE = `${PYTHON_SPACE}\\s`;

function kindOf(ch: string): Kind {
  if (ch === '\u0345') return Kind.Ypogegrammeni;
  if (new RegExp(`^[${SPACE}]$`, 'u').test(ch)) return Kind.Space;
  if (/^\p{M}$/u.test(ch)) return Kind.Mark;
  return /^[\p{L}\p{N}]$/u.test(ch) ? Kind.Letter : Kind.Symbol;
}

/** The kinds of the basic plane, built once on first use, by runs of each class (~10 ms; a regex test per code unit takes 30). */
function bmpKinds(): Uint8Array {
  if (bmp) return bmp;
  const kinds = new Uint8Array(0x10000).fill(Kind.Symbol);
  const units = Uint16Array.from({ length: 0x10000 }, (_, c) => (c >= 0xd800 && c <= 0xdfff ? 0x21 : c));
  const plane = new TextDecoder('utf-16le').decode(units); // every code unit but the surrogates, at its own index
  const mark = (pattern: string, kind: Kind) => {
    const runs = new RegExp(`${pattern}+`, 'gu');
    for (let m = runs.exec(plane); m; m = runs.exec(plane)) kinds.fill(kind, m.index, m.index + m[0].length);
  };
  mark('[\\p{L}\\p{N}]', Kind.Letter);
  mark('\\p{M}', Kind.Mark);
  mark('[\\u1161-\\u1175\\u11a8-\\u11c2]', Kind.Jamo);
  mark(`[${SPACE}]`, Kind.Space);
  kinds[0x345] = Kind.Ypogegrammeni;
  kinds.fill(Kind.Symbol, 0xd800, 0xe000);
  return (bmp = kinds);
}

function astralKind(cp: number): Kind {
  let kind = astral.get(cp);
  if (kind === undefined) {
    kind = ASTRAL_STARTERS.has(cp) ? Kind.Starter : kindOf(String.fromCodePoint(cp));
    if (astral.size < 65536) astral.set(cp, kind);
  }
  return kind;
}

/**
 * The end of the shortest start of `text` that holds `needed` solid code points under `rule`, or
 * `text.length` when the whole text holds fewer. That start, cleaned on its own, keeps them all.
 */
export function solidPrefixEnd(text: string, needed: number, rule: SolidRule): number {
  if (needed <= 0) return 0;
  const kinds = bmpKinds();
  let solid = 0;
  let composable = 0; // combining code points since the last starter that NFC may still compose into it (≤ 3)
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let kind = kinds[c]! as Kind;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        kind = astralKind(((c - 0xd800) << 10) + low - 0xdc00 + 0x10000);
        i++;
      }
    }
    if (kind === Kind.Ypogegrammeni && !rule.clip) kind = Kind.Mark;
    let counts =
      kind === Kind.Symbol || kind === Kind.Mark || (rule.letters && (kind === Kind.Letter || kind === Kind.Jamo));
    if (kind === Kind.Mark || kind === Kind.Jamo) {
      if (counts && composable < 3) {
        composable++;
        counts = false;
      }
    } else if (kind !== Kind.Ypogegrammeni) {
      composable = kind === Kind.Space ? 3 : 0; // nothing composes with whitespace
    }
    if (counts && ++solid >= needed) return i + 1;
  }
  return text.length;
}
