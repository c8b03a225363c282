// Synthetic training batches for the benchmarks, made with the library's public API only.
import { Random } from '../lib/data/augment.js';
import type { Batch, Rils } from '../lib/index.js';

/**
 * Seeded random normalised images and captions of random length ([SOT, ids…, EOT, 0…]) that fit
 * `model`: the same numbers for the same seed, so every run times the same work.
 */
export function syntheticBatch(model: Rils, batchSize: number, seed: number): Batch {
  const { imageSize: S, inChans: C, contextLength: L, vocabSize: V } = model.config;
  const random = new Random(seed);
  const images = Float32Array.from({ length: batchSize * C * S * S }, () => random.next() * 4 - 2);
  const tokens = new Int32Array(batchSize * L);
  for (let b = 0; b < batchSize; b++) {
    const caption = tokens.subarray(b * L, (b + 1) * L);
    const words = 1 + random.int(L - 2);
    caption[0] = V - 2;
    for (let i = 1; i <= words; i++) caption[i] = 1 + random.int(V - 3);
    caption[words + 1] = V - 1;
  }
  return { images, tokens, batchSize };
}
