// Pre-train RILS on a folder of captioned images (x.jpg + x.txt, or a JSONL/CSV index), with
// checkpoints that resume, then save the weights (they carry their config and tokenizer).
// Run: npx tsx examples/train-folder.ts DIR [STEPS] [OUT.safetensors]
import { FileCaptionSource, Rils, WordTokenizer, fit, readCaptionIndex } from 'rils';

const [dir, steps = '200', out = 'folder.safetensors'] = process.argv.slice(2);
if (!dir) throw new Error('usage: train-folder.ts DIR [STEPS] [OUT.safetensors]');

const { items } = await readCaptionIndex(dir);
const tokenizer = WordTokenizer.fromTexts(
  items.map((i) => i.caption),
  { contextLength: 16 },
);
const model = await Rils.create({
  preset: 'micro',
  vocabSize: tokenizer.vocabSize,
  contextLength: 16,
  tokenizer,
  seed: 0,
  lr: 5e-4,
  warmupSteps: 20,
  totalSteps: Number(steps),
});
const batchSize = Math.min(32, items.length - (items.length % 2));
const source = new FileCaptionSource({ items, tokenizer, batchSize, seed: 0, size: model.config.imageSize });
const result = await fit(model, source, {
  steps: Number(steps),
  checkpoint: `${out}.ckpt`,
  checkpointEvery: 50,
  onStep: (p) => {
    if (p.step % 10 === 0 || p.step === Number(steps))
      console.log(`step ${p.step}: loss ${p.loss.toFixed(4)}, clip acc ${(100 * p.clipAcc).toFixed(0)}%`);
  },
});
await model.saveWeights(out);
console.log(
  `${result.stepsDone} steps${result.resumedFrom ? ` (resumed from ${result.resumedFrom})` : ''}; weights: ${out}`,
);
model.dispose();
