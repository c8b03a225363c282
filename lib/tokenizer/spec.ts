/**
 * A tokenizer's description as stored in weight files, and the tokenizer it describes.
 * @module
 */
import { RilsInputError } from '../errors.js';
import { ByteTokenizer } from './byte.js';
import { ClipTokenizer } from './clip.js';
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
