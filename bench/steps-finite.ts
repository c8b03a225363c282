// N training steps of a preset in a precision, on synthetic batches: every loss and gradient norm
// finite (the "200 bf16 steps of vit_ti16 finite"). Usage:
// node --import tsx bench/steps-finite.ts [PRESET] [STEPS] [BATCH] [fp32|bf16]
import { Rils } from '../lib/index.js';
import { syntheticBatch } from './batches.js';

const [preset = 'vit_ti16', steps = '200', batch = '8', precision = 'bf16'] = process.argv.slice(2);
const model = await Rils.create({
  preset: preset as 'micro',
  seed: 0,
  lr: 1e-4,
  weightDecay: 0.1,
  precision: precision as 'bf16',
});
const batches = [1, 2, 3, 4].map((seed) => syntheticBatch(model, Number(batch), seed));
let bad = 0;
const started = performance.now();
for (let i = 0; i < Number(steps); i++) {
  const s = await model.trainStep(batches[i % 4]!);
  if (s.nonFinite || !Number.isFinite(s.loss) || !Number.isFinite(s.gradNorm)) bad += 1;
  if (i % 50 === 0 || i + 1 === Number(steps))
    console.log(`step ${i + 1}: loss ${s.loss.toFixed(4)} grad norm ${s.gradNorm.toFixed(3)}`);
}
console.log(
  `${preset} B${batch} ${model.precision}: ${steps} steps, ${bad} non-finite, ${((performance.now() - started) / 1000).toFixed(0)} s`,
);
model.dispose();
process.exit(bad === 0 ? 0 : 1);
