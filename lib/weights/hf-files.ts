/**
 * The files a Hugging Face model folder has besides its weights, made from a rils model's tokenizer
 * and config: `tokenizer.json` (the `tokenizers` format, which transformers.js and Python's fast
 * tokenizers read), `tokenizer_config.json`, `special_tokens_map.json`, CLIP's `vocab.json` and
 * `merges.txt`, and `preprocessor_config.json` (CLIPImageProcessor). Written by `saveWeights(…,
 * { layout: 'hf' })` and by the ONNX export; read back by `Rils.fromPretrained(folder)`.
 *
 * Each rils tokenizer is spelled in the format so that it gives rils's ids: CLIP's BPE with rils's
 * cleaning (HTML references unescaped twice as plain replacements, NFC, lowercase, the pre-split with
 * Python's whitespace), the word tokenizer as a `WordLevel` model, the byte tokenizer as a byte-level
 * BPE without merges. A tokenizer of another class cannot be spelled: a typed error names it.
 * @internal
 * @module
 */
import path from 'node:path';

import { RilsInputError, RilsWeightsError } from '../errors.js';
import type { ModelConfig } from '../model/options.js';
import { readRegularFile } from '../io/regular-file.js';
import { CONFIG_FIELDS, expected, fieldAllows } from '../model/schema.js';
import { invalid, own } from '../validate.js';
import { ByteTokenizer, ClipTokenizer, WordTokenizer } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { byteSymbols } from '../tokenizer/bpe.js';
import { spelledReferences } from '../tokenizer/html.js';
import { PYTHON_SPACE } from '../tokenizer/rows.js';

const SOT = '<|startoftext|>',
  EOT = '<|endoftext|>',
  PAD = '<pad>',
  UNK = '<unk>';
/** tokenizer_config.json's key naming rils's word or byte tokenizer, so that fromPretrained rebuilds it. */
const MARK = 'rils_tokenizer';

/** File name → content. */
export type HfFiles = Record<string, string>;

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** A regex class of the characters `re` matches (of the basic plane), spelled as literal ranges: both regex engines read it alike. */
function literalClass(re: RegExp): string {
  let out = '';
  for (let c = 0; c < 0x10000; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    if (!re.test(String.fromCharCode(c))) continue;
    let end = c;
    while (end + 1 < 0xd800 && re.test(String.fromCharCode(end + 1))) end++;
    const ch = (k: number) => (/[\\\]\-^]/.test(String.fromCharCode(k)) ? '\\' : '') + String.fromCharCode(k);
    out += end > c ? `${ch(c)}-${ch(end)}` : ch(c);
    c = end;
  }
  return out;
}

const template = (sot: string, eot: string) => ({
  type: 'TemplateProcessing',
  single: [
    { SpecialToken: { id: sot, type_id: 0 } },
    { Sequence: { id: 'A', type_id: 0 } },
    { SpecialToken: { id: eot, type_id: 0 } },
  ],
  pair: [
    { SpecialToken: { id: sot, type_id: 0 } },
    { Sequence: { id: 'A', type_id: 0 } },
    { Sequence: { id: 'B', type_id: 1 } },
    { SpecialToken: { id: eot, type_id: 0 } },
  ],
  special_tokens: {},
});

function withIds(processor: ReturnType<typeof template>, ids: Record<string, number>) {
  processor.special_tokens = Object.fromEntries(
    Object.entries(ids).map(([t, id]) => [t, { id: t, ids: [id], tokens: [t] }]),
  );
  return processor;
}

const replace = (from: string | { Regex: string }, to: string) => ({
  type: 'Replace',
  pattern: typeof from === 'string' ? { String: from } : from,
  content: to,
});

/** CLIP's BPE as rils runs it (lib/tokenizer/clip.ts), in the `tokenizers` format. */
function clipTokenizerJson(t: ClipTokenizer): object {
  const vocab = t.vocabulary();
  const html = spelledReferences().map((g) => replace({ Regex: g.pattern }, g.character));
  const space = literalClass(new RegExp(`[${PYTHON_SPACE}]`));
  const added = (id: number) => ({
    id,
    content: vocab[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [added(t.sot), added(t.eot)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        ...html,
        ...html,
        replace({ Regex: '\u0345{3,}' }, '\u0345\u0345'),
        { type: 'NFC' },
        { type: 'Lowercase' },
        replace('\u0345', ' '),
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          behavior: 'Removed',
          invert: true,
          pattern: {
            Regex: `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${space}\\p{L}\\p{N}]+`,
          },
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: withIds(template(vocab[t.sot]!, vocab[t.eot]!), { [vocab[t.sot]!]: t.sot, [vocab[t.eot]!]: t.eot }),
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: vocab[t.eot],
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab: Object.fromEntries(vocab.map((s, id) => [s, id])),
      merges: t.merges().map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** The word tokenizer (lib/tokenizer/word.ts): NFC, lowercase, runs of letters or digits and single symbols, a WordLevel vocabulary. */
function wordTokenizerJson(t: WordTokenizer): object {
  const vocab: Record<string, number> = { [PAD]: 0, [UNK]: WordTokenizer.UNK };
  t.words.forEach((w, i) => (vocab[w] = i + 2));
  Object.assign(vocab, { [SOT]: t.sot, [EOT]: t.eot });
  const space = literalClass(/\s/);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Split',
      behavior: 'Removed',
      invert: true,
      pattern: { Regex: `[\\p{L}\\p{N}]+|[^${space}\\p{L}\\p{N}]` },
    },
    post_processor: withIds(template(SOT, EOT), { [SOT]: t.sot, [EOT]: t.eot }),
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: UNK },
  };
}

/** The byte tokenizer (lib/tokenizer/byte.ts): NFC, Python's whitespace collapsed and stripped, each UTF-8 byte its id + 1. */
function byteTokenizerJson(t: ByteTokenizer): object {
  const { symbol } = byteSymbols();
  const vocab: Record<string, number> = { [PAD]: 0 };
  symbol.forEach((s, b) => (vocab[s] = b + 1));
  Object.assign(vocab, { [SOT]: t.sot, [EOT]: t.eot });
  const space = literalClass(new RegExp(`[${PYTHON_SPACE}]`));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        replace({ Regex: `^[${space}]+|[${space}]+$` }, ''),
        replace({ Regex: `[${space}]+` }, ' '),
      ],
    },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    post_processor: withIds(template(SOT, EOT), { [SOT]: t.sot, [EOT]: t.eot }),
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [],
    },
  };
}

/**
 * The tokenizer files of a Hugging Face folder for `tokenizer` (none for a model without one).
 * @throws {@link RilsInputError} for a tokenizer rils cannot spell in the format (not one of its own classes).
 */
export function hfTokenizerFiles(tokenizer: Tokenizer | undefined): HfFiles {
  if (tokenizer === undefined) return {};
  const special =
    tokenizer instanceof ClipTokenizer
      ? { bos_token: SOT, eos_token: EOT, unk_token: EOT, pad_token: EOT }
      : { bos_token: SOT, eos_token: EOT, unk_token: UNK, pad_token: PAD };
  const config = {
    tokenizer_class: tokenizer instanceof ClipTokenizer ? 'CLIPTokenizer' : 'PreTrainedTokenizerFast',
    model_max_length: tokenizer.contextLength,
    ...special,
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    ...(tokenizer instanceof ClipTokenizer ? { do_lower_case: true, errors: 'replace' } : {}),
    ...(tokenizer instanceof WordTokenizer
      ? { [MARK]: 'word' }
      : tokenizer instanceof ByteTokenizer
        ? { [MARK]: 'byte' }
        : {}),
  };
  const files: HfFiles = { 'tokenizer_config.json': json(config), 'special_tokens_map.json': json(special) };
  if (tokenizer instanceof ClipTokenizer) {
    const vocab = tokenizer.vocabulary();
    files['tokenizer.json'] = json(clipTokenizerJson(tokenizer));
    files['vocab.json'] = json(Object.fromEntries(vocab.map((s, id) => [s, id])));
    files['merges.txt'] = `#version: 0.2\n${tokenizer
      .merges()
      .map(([a, b]) => `${a} ${b}`)
      .join('\n')}\n`;
  } else if (tokenizer instanceof WordTokenizer) {
    files['tokenizer.json'] = json(wordTokenizerJson(tokenizer));
  } else if (tokenizer instanceof ByteTokenizer) {
    files['tokenizer.json'] = json(byteTokenizerJson(tokenizer));
  } else {
    const name = (tokenizer as object).constructor?.name ?? typeof tokenizer;
    throw new RilsInputError(
      `Expected a ClipTokenizer, WordTokenizer or ByteTokenizer for the model's tokenizer but received a ${name}: ` +
        "Hugging Face's tokenizer.json cannot describe it; give the model one of rils's tokenizers",
    );
  }
  return files;
}

/** `preprocessor_config.json`: CLIP's image processor with the model's size, mean/std and interpolation (resize the shorter side, centre crop). */
export function hfPreprocessorConfig(c: Readonly<ModelConfig>): string {
  return json({
    image_processor_type: 'CLIPImageProcessor',
    feature_extractor_type: 'CLIPFeatureExtractor',
    processor_class: 'CLIPProcessor',
    do_resize: true,
    size: { shortest_edge: c.imageSize },
    resample: c.interpolation === 'bicubic' ? 3 : 2,
    do_center_crop: true,
    crop_size: { height: c.imageSize, width: c.imageSize },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    do_convert_rgb: true,
    image_mean: [c.imageMeanR, c.imageMeanG, c.imageMeanB],
    image_std: [c.imageStdR, c.imageStdG, c.imageStdB],
  });
}

/** The model fields a folder's preprocessor_config.json gives (size aside: the weights fix it). */
export async function preprocessorFields(dir: string): Promise<Partial<ModelConfig>> {
  const file = path.join(dir, 'preprocessor_config.json');
  const p = await readJsonObject(file);
  if (!p) return {};
  const mean = own(p, 'image_mean'),
    std = own(p, 'image_std'),
    resample = own(p, 'resample');
  const three = (v: unknown): v is [number, number, number] =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number');
  const fields: Partial<ModelConfig> = {
    ...(three(mean) ? { imageMeanR: mean[0], imageMeanG: mean[1], imageMeanB: mean[2] } : {}),
    ...(three(std) ? { imageStdR: std[0], imageStdG: std[1], imageStdB: std[2] } : {}),
    ...(resample === 3
      ? { interpolation: 'bicubic' as const }
      : resample === 2
        ? { interpolation: 'bilinear' as const }
        : {}),
  };
  for (const [key, value] of Object.entries(fields)) {
    // the file's values, named as the file names them
    const f = CONFIG_FIELDS.get(key)!;
    if (!fieldAllows(f, value))
      throw new RilsWeightsError(
        `${file}: ${invalid(expected(f), key.startsWith('imageMean') ? 'image_mean' : 'image_std', value).message}`,
      );
  }
  return fields;
}

/**
 * The word or byte tokenizer rils wrote into a folder (named by tokenizer_config.json; undefined for any other: CLIP's
 * BPE is read from vocab.json and merges.txt).
 */
export async function hfWordOrByteTokenizer(dir: string, contextLength: number): Promise<Tokenizer | undefined> {
  const config = await readJsonObject(path.join(dir, 'tokenizer_config.json'));
  const mark = config ? own(config, MARK) : undefined;
  if (mark === 'byte') return new ByteTokenizer({ contextLength });
  if (mark !== 'word') return undefined;
  const file = path.join(dir, 'tokenizer.json');
  const t = await readJsonObject(file);
  if (!t)
    throw new RilsWeightsError(
      `${file} is missing: tokenizer_config.json names rils's word tokenizer, whose vocabulary it holds`,
    );
  const model = own(t, 'model');
  const vocab =
    ((typeof model === 'object' && model !== null ? own(model, 'vocab') : undefined) as
      Record<string, number> | undefined) ?? {};
  const words: string[] = [];
  for (const [w, id] of Object.entries(vocab)) if (id >= 2 && id < Object.keys(vocab).length - 2) words[id - 2] = w;
  if (words.length !== Object.keys(vocab).length - 4 || words.some((w) => w === undefined)) {
    throw new RilsWeightsError(
      `${file}: its word vocabulary is not the one rils wrote (ids must run 0 … ${Object.keys(vocab).length - 1})`,
    );
  }
  return new WordTokenizer(words, { contextLength });
}

/** A JSON object file of a checkpoint folder (undefined when there is none): a regular file, or a RilsWeightsError naming it. */
export async function readJsonObject(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = (await readRegularFile(file, 'a JSON file', RilsWeightsError)).toString('utf-8');
  } catch (error) {
    if (((error as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new RilsWeightsError(`${file} is not readable JSON (${(error as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new RilsWeightsError(`${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}
