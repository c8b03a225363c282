/**
 * Caption tokenizers: OpenAI CLIP's BPE (spec §6), a vocabulary-free byte tokenizer and a word tokenizer
 * built from the captions (one module each under tokenizer/).
 * @module
 */
export { ByteTokenizer } from './tokenizer/byte.js';
export { BUNDLED_CLIP_VOCAB, CLIP_VOCAB_SIZE, ClipTokenizer } from './tokenizer/clip.js';
export type { Tokenizer, TokenizerOptions } from './tokenizer/rows.js';
export { checkTokenizerOption, isTokenizer } from './tokenizer/rows.js';
export { tokenizerFromSpec, tokenizerSpec } from './tokenizer/spec.js';
export type { TokenizerSpec } from './tokenizer/spec.js';
export { WordTokenizer } from './tokenizer/word.js';
