/**
 * A tokenizer's description as stored in weight files, and the tokenizer it describes.
 * @module
 */
import { RilsInputError } from '../errors.js';
import { ByteTokenizer } from './byte.js';
import { BUNDLED_CLIP_VOCAB, ClipTokenizer } from './clip.js';
import type { Tokenizer } from './rows.js';
import { WordTokenizer } from './word.js';

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
  if (tokenizer instanceof WordTokenizer)
    return { type: 'word', contextLength: tokenizer.contextLength, words: [...tokenizer.words] };
  if (tokenizer instanceof ByteTokenizer) return { type: 'byte', contextLength: tokenizer.contextLength };
  if (tokenizer instanceof ClipTokenizer) return { type: 'clip', contextLength: tokenizer.contextLength };
  return undefined;
}

/** Rebuilds a tokenizer; the CLIP one from `clipVocabPath`, else from the vocabulary bundled with rils. */
export async function tokenizerFromSpec(spec: TokenizerSpec, clipVocabPath?: string): Promise<Tokenizer> {
  const options = { contextLength: spec.contextLength };
  if (spec.type === 'word') return new WordTokenizer(spec.words, options);
  if (spec.type === 'byte') return new ByteTokenizer(options);
  if (spec.type === 'clip') return ClipTokenizer.load(clipVocabPath ?? BUNDLED_CLIP_VOCAB, options);
  throw new RilsInputError(
    `Expected a word, byte or clip tokenizer spec but received ${JSON.stringify(spec).slice(0, 80)}`,
  );
}
