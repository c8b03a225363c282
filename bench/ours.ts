// One benchmark case for rils, in its own process so its peak RSS is its own; the addon is the one
// lib/ loads (RILS_ADDON picks another).
// Usage: node --import tsx bench/ours.ts PRESET BATCH STEPS THREADS [fp32|bf16] [gate|no-gate]
//        node --import tsx bench/ours.ts --info      (the addon's runtimeInfo() as JSON)
// `no-gate` trains with retrievalGate: false: every image runs the masked branch, the work the
// reference does. With torchrun's variables set, one rank of a data-parallel job: BATCH is then the
// global batch.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { Rils, distributedFromEnv, runtimeInfo, setNumThreads } from '../lib/index.js';
import { syntheticBatch } from './batches.js';

if (process.argv[2] === '--info') {
  console.log(JSON.stringify(runtimeInfo()));
  process.exit(0);
}
const [preset, batch, steps, threads, precision = 'fp32', gate = 'gate'] = process.argv.slice(2);
if (precision !== 'fp32' && precision !== 'bf16') throw new Error(`Expected fp32 or bf16, got ${precision}`);
if (gate !== 'gate' && gate !== 'no-gate') throw new Error(`Expected gate or no-gate, got ${gate}`);
const distributed = distributedFromEnv();
const B = Number(batch) / (distributed?.worldSize ?? 1),
  K = Number(steps);
setNumThreads(Number(threads));
const model = await Rils.create({
  preset: preset as 'micro',
  seed: 0,
  lr: 1e-4,
  weightDecay: 0.1,
  distributed,
  precision,
  retrievalGate: gate === 'gate',
});
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
const info = runtimeInfo();
const blasLibs = [
  ...new Set(
    readFileSync('/proc/self/maps', 'utf-8')
      .split('\n')
      .map((l) => l.split(/\s+/).pop() ?? '')
      .filter((l) => /blas|lapack|mkl|dnnl/.test(l))
      .map((l) => path.basename(l)),
  ),
].sort();
console.log(
  JSON.stringify({
    train_ms: train,
    encode_ms: encode,
    gated_fraction: gated,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    precision: model.precision,
    libtorch: info.libtorchVersion,
    gemms: info.cpuGemms,
    blas_libs: blasLibs,
  }),
);
