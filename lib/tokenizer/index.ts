/**
 * Caption tokenizers: OpenAI CLIP's BPE (spec §6), a vocabulary-free byte tokenizer and a word tokenizer
 * built from the captions (one module each under tokenizer/).
 * @module
 */
export { ByteTokenizer } from './byte.js';
export { BUNDLED_CLIP_VOCAB, CLIP_VOCAB_SIZE, ClipTokenizer } from './clip.js';
export type { Tokenizer, TokenizerOptions } from './rows.js';
export { checkTokenizerOption, isTokenizer } from './rows.js';
export { tokenizerFromSpec, tokenizerSpec } from './spec.js';
export type { TokenizerSpec } from './spec.js';
export { WordTokenizer } from './word.js';
