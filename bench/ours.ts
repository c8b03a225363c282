// One benchmark case for rils, in its own process so its peak RSS is its own.
// Usage: node --import tsx bench/ours.ts PRESET BATCH STEPS THREADS
// With torchrun's variables set, one rank of a data-parallel job: BATCH is then the global batch.
import { Rils, distributedFromEnv, setNumThreads } from '../lib/index.js';
import { syntheticBatch } from './batches.js';

const [preset, batch, steps, threads] = process.argv.slice(2);
const distributed = distributedFromEnv();
const B = Number(batch) / (distributed?.worldSize ?? 1), K = Number(steps);
setNumThreads(Number(threads));
const model = await Rils.create({ preset: preset as 'micro', seed: 0, lr: 1e-4, weightDecay: 0.1, distributed });
// Four distinct random batches in turn, as the reference's bench does.
const batches = [1, 2, 3, 4].map((seed) => syntheticBatch(model, B, seed));
let next = 0;
const data = batches[0]!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = async (fn: () => Promise<unknown>, warmup: number, n: number) => {
  for (let i = 0; i < warmup; i++) await fn();
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return median(ms);
};
const train = await time(() => model.trainStep(batches[next++ % 4]!), 2, K);
const encode = distributed ? NaN : await time(() => model.encodeImages({ images: data.images, batchSize: B }), 1, K);
const gated = (await model.evaluateLoss(data)).gatedFraction;
console.log(JSON.stringify({ train_ms: train, encode_ms: encode, gated_fraction: gated, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
