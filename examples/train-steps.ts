// A first look at the API: a few RILS training steps of the `micro` preset on random tensors.
// (Random data only shows the mechanics; real training data comes with the dataset loaders.)
// Run: npx tsx examples/train-steps.ts
import { Rils } from 'rils';

const model = await Rils.create({
  preset: 'micro',
  vocabSize: 1000,
  seed: 0,
  lr: 1e-3,
  warmupSteps: 2,
  totalSteps: 10,
});
const { imageSize: S, contextLength: L, vocabSize: V } = model.config;
const B = 16;
const images = Float32Array.from({ length: B * 3 * S * S }, () => Math.random() * 2 - 1);
const tokens = new Int32Array(B * L);
for (let b = 0; b < B; b++) tokens.set([V - 2, 10 + b, 20 + (b % 4), V - 1], b * L); // SOT, two ids, EOT

for (let i = 0; i < 10; i++) {
  const s = await model.trainStep({ images, tokens, batchSize: B });
  console.log(
    `step ${s.step}: loss ${s.loss.toFixed(4)} (clip ${s.clipLoss.toFixed(4)}, recon ${s.reconLoss.toFixed(4)}), ` +
      `clip acc ${(100 * s.clipAcc).toFixed(0)}%, gated ${(100 * s.gatedFraction).toFixed(0)}%, lr ${s.lr.toExponential(2)}`,
  );
}
await model.saveWeights('micro.safetensors');
model.dispose();
