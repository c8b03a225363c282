// Each vision tower behind the one interface (native/model/tower.h): every model field either changes
// what the model computes or is refused with a message naming it, so a weight file's metadata never
// records a value that did not run. The table of changed values must cover every field of schema().
import test from 'ava';
import sharp from 'sharp';

import { native } from '../lib/addon/binding.js';
import { Rils, RilsError } from '../lib/index.js';
import type { RilsOptions } from '../lib/index.js';

/** A changed value of every model field, for a base of each tower (micro: RILS; clip_micro with a decoder: CLIP). */
const CHANGES: Record<string, [rils: unknown, clip: unknown]> = {
  visionTower: ['clip', 'rils'],
  imageSize: [48, 48],
  patchSize: [8, 16],
  inChans: [4, 4],
  visionWidth: [64, 64],
  visionDepth: [5, 3],
  visionHeads: [2, 4],
  mlpRatio: [2, 2],
  visionAct: ['quick_gelu', 'gelu'],
  decoderWidth: [64, 64],
  decoderDepth: [2, 2],
  decoderHeads: [2, 4],
  textWidth: [64, 64],
  textLayers: [4, 3],
  textHeads: [2, 4],
  contextLength: [12, 12],
  vocabSize: [400, 400],
  textAct: ['gelu', 'gelu'],
  embedDim: [32, 32],
  visionLnEps: [0.1, 0.1],
  textLnEps: [0.1, 0.1],
  logitScaleInit: [1, 1],
  logitScaleMax: [1, 1],
  interpolation: ['bicubic', 'bilinear'],
  imageMeanR: [0.2, 0.2],
  imageMeanG: [0.2, 0.2],
  imageMeanB: [0.2, 0.2],
  imageStdR: [0.5, 0.5],
  imageStdG: [0.5, 0.5],
  imageStdB: [0.5, 0.5],
};
const BASES: Record<'rils' | 'clip', RilsOptions> = {
  rils: { preset: 'micro' },
  clip: { preset: 'clip_micro', decoderDepth: 1 },
};

/** A fixed 40×24 photo-like PNG: the eval transform resizes it, so the interpolation matters. */
const png = await sharp(Buffer.from(Array.from({ length: 40 * 24 * 3 }, (_, i) => (i * 37) % 251)), {
  raw: { width: 40, height: 24, channels: 3 },
})
  .png()
  .toBuffer();

/** Fields of the vision encoder itself: they must change the embedding of an image file, not only the loss. */
const ENCODER = new Set([
  'imageSize',
  'patchSize',
  'visionWidth',
  'visionDepth',
  'visionHeads',
  'mlpRatio',
  'visionAct',
  'visionLnEps',
  'interpolation',
  'imageMeanR',
  'imageMeanG',
  'imageMeanB',
  'imageStdR',
  'imageStdG',
  'imageStdB',
]);

/**
 * What a model computes: losses (float and uint8 inputs, masked branch on), the scale after a step,
 * and (`image`) the embedding of an image file.
 */
async function signature(options: RilsOptions): Promise<{ all: number[]; image: number[] }> {
  const model = await Rils.create({
    vocabSize: 300,
    seed: 0,
    reconWeight: 0.5,
    retrievalGate: false,
    lr: 1e-3,
    ...options,
  });
  try {
    const { imageSize: S, inChans: C, contextLength: L, vocabSize: V } = model.config;
    const B = 4,
      N = model.numPatches;
    const tokens = new Int32Array(B * L);
    for (let b = 0; b < B; b++) tokens.set([V - 2, 5 + b, 7 + b, V - 1], b * L);
    const maskNoise = Float32Array.from({ length: B * N }, (_, i) => Math.sin(i * 1.7));
    const float = {
      images: Float32Array.from({ length: B * C * S * S }, (_, i) => Math.sin(i * 0.37)),
      tokens,
      batchSize: B,
      maskNoise,
    };
    const out = [...Object.values(await model.evaluateLoss(float)).filter((v): v is number => typeof v === 'number')];
    const image = C === 3 ? [...(await model.encodeImages([png])).embeddings] : [];
    if (C === 3) {
      const u8 = {
        images: Uint8Array.from({ length: B * S * S * 3 }, (_, i) => (i * 13) % 256),
        tokens,
        batchSize: B,
        maskNoise,
      };
      out.push((await model.evaluateLoss(u8)).loss, ...image);
    }
    out.push((await model.trainStep(float)).logitScale);
    return { all: out, image };
  } finally {
    model.dispose();
  }
}

const differ = (a: number[], b: number[]) =>
  a.length !== b.length || a.some((v, i) => Math.abs(v - b[i]!) > 1e-6 * Math.max(1, Math.abs(v)));

for (const tower of ['rils', 'clip'] as const) {
  test(`${tower} tower: every model field changes the forward pass or is refused, naming it`, async (t) => {
    const fields = native.schema().config.map((f) => f.name.replace(/_(.)/g, (_, c: string) => c.toUpperCase()));
    t.deepEqual(Object.keys(CHANGES).sort(), [...fields].sort(), 'the table covers every field');
    const base = await signature(BASES[tower]);
    for (const field of fields) {
      const value = CHANGES[field]![tower === 'rils' ? 0 : 1];
      let changed: { all: number[]; image: number[] };
      try {
        changed = await signature({ ...BASES[tower], [field]: value });
      } catch (error) {
        t.true(
          error instanceof RilsError && error.message.includes(field),
          `${field}: refused, naming it (${String(error)})`,
        );
        t.log(`${field} = ${String(value)}: refused (${(error as Error).message})`);
        continue;
      }
      t.true(differ(base.all, changed.all), `${field} = ${String(value)} changes what the model computes`);
      if (ENCODER.has(field))
        t.true(differ(base.image, changed.image), `${field} = ${String(value)} changes an image's embedding`);
    }
  });
}

test('decoder fields without a decoder are refused; saved metadata holds only fields that acted', async (t) => {
  await t.throwsAsync(Rils.create({ preset: 'clip_micro', decoderWidth: 64 }), {
    message: /decoderWidth acts only with a feature decoder/,
  });
  await t.throwsAsync(Rils.create({ preset: 'clip_micro', decoderDepth: 0, decoderHeads: 4 }), {
    message: /decoderHeads acts only with a feature decoder/,
  });
});
