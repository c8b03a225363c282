// An exported folder in transformers.js (@huggingface/transformers), offline: its tokenizer gives
// rils's ids on hard captions (CLIP's BPE, the word and the byte tokenizers), CLIPTextModelWithProjection
// and CLIPVisionModelWithProjection give rils's embeddings, and the zero-shot pipeline on image
// files agrees with `rils zeroshot` on the top class.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';
import {
  AutoTokenizer,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  Tensor,
  env,
  pipeline,
} from '@huggingface/transformers';

import sharp from 'sharp';

import { ByteTokenizer, ClipTokenizer, Rils, WordTokenizer, loadImages } from '../lib/index.js';
import type { Tokenizer } from '../lib/index.js';
import { rilsRun } from './helpers/cli.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const images = path.join(here, 'fixtures', 'clip', 'images');
const root = mkdtempSync(path.join(os.tmpdir(), 'rils-transformers-'));
env.allowRemoteModels = false;
env.localModelPath = root;

/** Hard captions: the CLIP reference's cases (unicode, punctuation, long, empty, HTML entities) and more of each. */
const CAPTIONS = [
  ...(
    JSON.parse(readFileSync(path.resolve(here, '../../shared/data/clip_tokenizer_cases.json'), 'utf-8')) as {
      cases: { text: string }[];
    }
  ).cases.map((c) => c.text),
  'Tom &amp;amp; Jerry &quot;&lt;b&gt;&quot; &copy;2024 &notit; &#8217;s caf&eacute; &#x27;q&#X27; &#039; &#39 &ampere &hellip;',
  'ÅΣ ΣΑΣ ǅ İstanbul ß ﬁ ῼ \u0345\u0345\u0345 x',
  'a\u2028b\u00a0c\u0085d\ufeffe\u001cf',
  '<|endoftext|> inside, <|STARTOFTEXT|>',
  '   ',
  'x'.repeat(3000),
  'long '.repeat(200),
];

const cosine = (a: Float32Array, b: Float32Array) => {
  let d = 0,
    x = 0,
    y = 0;
  for (let i = 0; i < a.length; i++) [d, x, y] = [d + a[i]! * b[i]!, x + a[i]! ** 2, y + b[i]! ** 2];
  return d / Math.sqrt(x * y);
};

/** A micro model with `tokenizer`, exported as `name` under env.localModelPath. */
async function exported(name: string, preset: 'clip_micro' | 'micro', tokenizer: Tokenizer): Promise<Rils> {
  const model = await Rils.create({
    preset,
    seed: 5,
    precision: 'fp32',
    vocabSize: tokenizer.vocabSize,
    contextLength: tokenizer.contextLength,
    tokenizer,
    ...(preset === 'clip_micro' ? { reconWeight: 0 } : {}),
  });
  await model.exportOnnx(path.join(root, name));
  return model;
}

/**
 * The tokenizer's ids equal rils's row up to its end-of-text, and the text model gives rils's
 * embedding. A caption longer than the row: transformers.js truncates after adding the special
 * tokens, so its last id is the caption's next one where rils has end-of-text; the graph reads such a
 * row as rils does, so the embeddings still agree.
 */
async function checkText(
  t: import('ava').ExecutionContext,
  name: string,
  model: Rils,
  tokenizer: Tokenizer,
): Promise<void> {
  const theirs = await AutoTokenizer.from_pretrained(name);
  const textModel = await CLIPTextModelWithProjection.from_pretrained(name);
  const L = tokenizer.contextLength,
    E = model.config.embedDim;
  const ours = (await model.encodeTexts(CAPTIONS, { normalize: false })).embeddings;
  let cut = 0;
  for (const [i, caption] of CAPTIONS.entries()) {
    const row = Array.from(tokenizer.encode(caption));
    const expected = row.slice(0, row.lastIndexOf(tokenizer.eot) + 1); // a caption may hold a literal end-of-text
    const ids = (theirs(caption, { truncation: true, return_tensor: false }) as unknown as { input_ids: number[] })
      .input_ids;
    if (expected.length === L && ids.length === L && ids.at(-1) !== tokenizer.eot) {
      cut++;
      t.deepEqual(ids.slice(0, -1), expected.slice(0, -1), `${name}: ${JSON.stringify(caption.slice(0, 40))}`);
    } else {
      t.deepEqual(ids, expected, `${name}: ${JSON.stringify(caption.slice(0, 40))}`);
    }
    const inputs = theirs(caption, { truncation: true });
    const { text_embeds } = await textModel(inputs);
    const c = cosine(text_embeds.data as Float32Array, ours.subarray(i * E, (i + 1) * E));
    t.true(c >= 0.99999, `${name}: ${JSON.stringify(caption.slice(0, 40))} cosine ${c}`);
  }
  t.true(cut >= 2, `${name}: the long captions were cut (${cut})`);
  await textModel.dispose();
}

test("CLIP BPE: AutoTokenizer gives rils's ids, CLIPText/VisionModelWithProjection rils's embeddings, the pipeline rils zeroshot's top class", async (t) => {
  const tokenizer = await ClipTokenizer.load(undefined, { contextLength: 77 });
  const model = await exported('clip', 'clip_micro', tokenizer);
  await checkText(t, 'clip', model, tokenizer);
  const S = model.config.imageSize,
    n = 4,
    E = model.config.embedDim;
  const pixels = Float32Array.from({ length: n * 3 * S * S }, (_, i) => Math.cos(i * 0.11));
  const vision = await CLIPVisionModelWithProjection.from_pretrained('clip');
  const { image_embeds } = await vision({ pixel_values: new Tensor('float32', pixels, [n, 3, S, S]) });
  const ours = (await model.encodeImages({ images: pixels, batchSize: n }, { normalize: false })).embeddings;
  for (let b = 0; b < n; b++)
    t.true(
      cosine((image_embeds.data as Float32Array).subarray(b * E, (b + 1) * E), ours.subarray(b * E, (b + 1) * E)) >=
        0.99999,
    );
  await vision.dispose();

  // The photos cut to the model's size by rils's own eval transform, as PNG files: both sides then
  // read the same pixels (transformers.js resizes with sharp, rils as PIL does: at 32 × 32 from a
  // 720-pixel photo the two differ by ~0.4 normalised units per pixel, which a random micro model's
  // near-tied classes cannot tell from a real disagreement).
  const classes = ['cat', 'rocket', 'coffee', 'astronaut', 'camera'];
  const photos = ['square.jpg', 'wide.jpg', 'tall.jpg', 'small.png', 'alpha.png', 'gray.png', 'exif-rotated.jpg'];
  const pixelsU8 = await loadImages(
    photos.map((f) => path.join(images, f)),
    S,
    { interpolation: model.config.interpolation },
  );
  const files = await Promise.all(
    photos.map(async (f, i) => {
      const file = path.join(root, `${path.parse(f).name}.png`);
      await sharp(pixelsU8.subarray(i * S * S * 3, (i + 1) * S * S * 3), { raw: { width: S, height: S, channels: 3 } })
        .png()
        .toFile(file);
      return file;
    }),
  );
  const weights = path.join(root, 'clip.safetensors');
  await model.saveWeights(weights);
  const cli = await rilsRun([
    'zeroshot',
    '--weights',
    weights,
    '--classes',
    classes.join(','),
    '--templates',
    'a photo of a {}.',
    '--top',
    '1',
    ...files,
  ]);
  t.is(cli.code, 0, cli.stderr);
  const classify = await pipeline('zero-shot-image-classification', 'clip');
  for (const [i, file] of files.entries()) {
    const [, top, percent] = /: (\S+) ([\d.]+)%/.exec(cli.stdout.split('\n')[i]!)!;
    const result = (await classify(file, classes, { hypothesis_template: 'a photo of a {}.' })) as {
      label: string;
      score: number;
    }[];
    t.is(
      result[0]!.label,
      top!,
      `${path.basename(file)}: ${JSON.stringify(result.slice(0, 2))} vs ${cli.stdout.split('\n')[i]}`,
    );
    t.true(
      Math.abs(100 * result[0]!.score - Number(percent)) < 0.1,
      `${path.basename(file)}: ${100 * result[0]!.score}% vs ${percent}%`,
    );
  }
  await classify.dispose();
  model.dispose();
});

test("the word tokenizer (WordLevel) and the byte tokenizer give rils's ids and embeddings in transformers.js", async (t) => {
  const word = WordTokenizer.fromTexts(CAPTIONS.slice(0, 12), { contextLength: 16 });
  const wordModel = await exported('word', 'micro', word);
  await checkText(t, 'word', wordModel, word);
  wordModel.dispose();
  const byte = new ByteTokenizer({ contextLength: 24 });
  const byteModel = await exported('byte', 'clip_micro', byte);
  await checkText(t, 'byte', byteModel, byte);
  byteModel.dispose();
});

test("an fp16 export loads in transformers.js by config.json's dtype, close to rils's embeddings", async (t) => {
  const model = await Rils.create({ preset: 'micro', seed: 6, precision: 'fp32' });
  await model.exportOnnx(path.join(root, 'half'), { dtype: 'fp16' });
  const S = model.config.imageSize,
    E = model.config.embedDim;
  const pixels = Float32Array.from({ length: 2 * 3 * S * S }, (_, i) => Math.sin(i * 0.05));
  const vision = await CLIPVisionModelWithProjection.from_pretrained('half');
  const { image_embeds } = await vision({ pixel_values: new Tensor('float32', pixels, [2, 3, S, S]) });
  const ours = (await model.encodeImages({ images: pixels, batchSize: 2 }, { normalize: false })).embeddings;
  for (let b = 0; b < 2; b++)
    t.true(
      cosine((image_embeds.data as Float32Array).subarray(b * E, (b + 1) * E), ours.subarray(b * E, (b + 1) * E)) >=
        0.999,
    );
  await vision.dispose();
  model.dispose();
});
