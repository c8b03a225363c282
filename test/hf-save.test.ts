// saveWeights(…, { layout: 'hf' }) writes the files a Hugging Face CLIP folder has (tokenizer and
// preprocessor included), and Rils.fromPretrained(folder) reloads rils's own export with its
// tokenizer (CLIP's BPE, the word or the byte tokenizer) and eval transform, with no vocabulary path.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';
import { AutoTokenizer, env } from '@huggingface/transformers';

import { ByteTokenizer, ClipTokenizer, Rils, WordTokenizer } from '../lib/index.js';
import type { Tokenizer } from '../lib/index.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'rils-hf-save-'));
env.allowRemoteModels = false;
env.localModelPath = root;
const CAPTIONS = [
  'a photo of a cat.',
  'Tom &amp; Jerry&#39;s house',
  'naïve café — déjà vu 🐱',
  '',
  'hello-world_foo.bar/baz?q=1',
];

async function saved(name: string, tokenizer: Tokenizer): Promise<Rils> {
  const model = await Rils.create({
    preset: 'clip_micro',
    reconWeight: 0,
    seed: 7,
    vocabSize: tokenizer.vocabSize,
    contextLength: tokenizer.contextLength,
    tokenizer,
    imageMeanR: 0.5,
    imageStdB: 0.3,
    interpolation: 'bilinear',
  });
  await model.saveWeights(path.join(root, name), { layout: 'hf' });
  return model;
}

async function checkReload(
  t: import('ava').ExecutionContext,
  name: string,
  model: Rils,
  kind: typeof ClipTokenizer | typeof WordTokenizer | typeof ByteTokenizer,
) {
  const back = await Rils.fromPretrained(path.join(root, name));
  t.true(back.tokenizer instanceof kind, `${name}: ${back.tokenizer?.constructor.name}`);
  t.deepEqual(back.tokenizer!.encodeBatch(CAPTIONS), model.tokenizer!.encodeBatch(CAPTIONS));
  for (const k of ['imageMeanR', 'imageStdB', 'interpolation', 'contextLength'] as const)
    t.is(back.config[k], model.config[k], k);
  t.deepEqual((await back.encodeTexts(CAPTIONS)).embeddings, (await model.encodeTexts(CAPTIONS)).embeddings);
  const hf = await AutoTokenizer.from_pretrained(name);
  for (const caption of CAPTIONS) {
    const row = Array.from(model.tokenizer!.encode(caption));
    t.deepEqual(
      (hf(caption, { return_tensor: false }) as unknown as { input_ids: number[] }).input_ids,
      row.slice(0, row.lastIndexOf(model.tokenizer!.eot) + 1),
    );
  }
  back.dispose();
}

test("a CLIP model with CLIP's BPE saves a whole Hugging Face folder and reloads with no vocabulary path", async (t) => {
  const model = await saved('clip', await ClipTokenizer.load(undefined, { contextLength: 77 }));
  t.deepEqual(readdirSync(path.join(root, 'clip')).sort(), [
    'config.json',
    'merges.txt',
    'model.safetensors',
    'preprocessor_config.json',
    'special_tokens_map.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'vocab.json',
  ]);
  const vocab = JSON.parse(readFileSync(path.join(root, 'clip', 'vocab.json'), 'utf-8')) as Record<string, number>;
  t.is(Object.keys(vocab).length, 49408);
  t.is(vocab['<|endoftext|>'], 49407);
  t.is(readFileSync(path.join(root, 'clip', 'merges.txt'), 'utf-8').split('\n')[1], 'i n');
  const pre = JSON.parse(readFileSync(path.join(root, 'clip', 'preprocessor_config.json'), 'utf-8'));
  t.like(pre, {
    size: { shortest_edge: 32 },
    crop_size: { height: 32, width: 32 },
    resample: 2,
    image_processor_type: 'CLIPImageProcessor',
  });
  t.like(JSON.parse(readFileSync(path.join(root, 'clip', 'tokenizer_config.json'), 'utf-8')), {
    tokenizer_class: 'CLIPTokenizer',
    model_max_length: 77,
  });
  await checkReload(t, 'clip', model, ClipTokenizer);
  model.dispose();
});

test('the word and byte tokenizers are saved in tokenizer.json and come back', async (t) => {
  const word = await saved('word', WordTokenizer.fromTexts(CAPTIONS, { contextLength: 16 }));
  t.like(JSON.parse(readFileSync(path.join(root, 'word', 'tokenizer.json'), 'utf-8')).model, {
    type: 'WordLevel',
    unk_token: '<unk>',
  });
  await checkReload(t, 'word', word, WordTokenizer);
  word.dispose();
  const byte = await saved('byte', new ByteTokenizer({ contextLength: 40 }));
  await checkReload(t, 'byte', byte, ByteTokenizer);
  byte.dispose();
});
