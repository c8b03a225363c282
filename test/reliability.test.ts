// Memory stays flat over long loops, and the safetensors reader survives random and mutated input.
import test from 'ava';

import { Rils, RilsWeightsError, parseSafetensors } from '../lib/index.js';
import { Random } from '../lib/data/augment.js';
import { randomBatch } from './helpers/batches.js';

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

test('RSS stays flat over 1000 encodeImages and 300 trainStep calls', async (t) => {
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  const batch = randomBatch(model, 4);
  const encode = async (n: number) => {
    for (let i = 0; i < n; i++) await model.encodeImages({ images: batch.images, batchSize: 4 }, { patchTokens: true });
  };
  const train = async (n: number) => {
    for (let i = 0; i < n; i++) await model.trainStep(batch);
  };
  await encode(100); // warm-up: allocator pools, optimizer state
  await train(30);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const base = rssMb();
  await encode(1000);
  gc?.();
  const afterEncode = rssMb();
  await train(300);
  gc?.();
  const afterTrain = rssMb();
  t.log(`RSS: ${base.toFixed(0)} MB → ${afterEncode.toFixed(0)} MB after 1000 encodeImages → ${afterTrain.toFixed(0)} MB after 300 trainStep`);
  // A leak of even one output (4×64×128 floats = 128 KB) per call would add 125 MB over 1000 calls.
  t.true(afterEncode - base < 60, `encode: ${base.toFixed(0)} → ${afterEncode.toFixed(0)} MB`);
  t.true(afterTrain - afterEncode < 60, `train: ${afterEncode.toFixed(0)} → ${afterTrain.toFixed(0)} MB`);
  model.dispose();
});

test('the safetensors reader never crashes or hangs on random and mutated files', (t) => {
  const r = new Random(123);
  const header = Buffer.from(JSON.stringify({
    __metadata__: { format: 'x' }, a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] }, b: { dtype: 'I64', shape: [], data_offsets: [24, 32] },
  }));
  const good = Buffer.concat([Buffer.alloc(8), header, Buffer.alloc(32, 1)]);
  good.writeBigUInt64LE(BigInt(header.length));
  t.is(parseSafetensors(good).tensors.size, 2);
  let refused = 0;
  for (let i = 0; i < 5000; i++) {
    const bytes = i % 2 === 0
      ? Uint8Array.from({ length: r.int(200) }, () => r.int(256))
      : (() => {
        const m = Buffer.from(good);
        for (let k = 0; k < 1 + r.int(4); k++) m[r.int(m.length)] = r.int(256);
        return m;
      })();
    try {
      const f = parseSafetensors(bytes);
      for (const e of f.tensors.values()) t.true(e.bytes.byteOffset + e.bytes.byteLength <= bytes.byteOffset + bytes.byteLength);
    } catch (error) {
      if (!(error instanceof RilsWeightsError)) throw error;
      refused++;
    }
  }
  t.true(refused > 2500);
});
