// Fine-tune pretrained CLIP weights on your own captioned images (a folder of x.jpg + x.txt, or a
// JSONL/CSV index): the CLIP loss, or with --rils also RILS's reconstruction term through a new
// feature decoder (the class token kept, patches masked after the positional embedding). Saves
// OpenAI/open_clip safetensors that open_clip and clip_ref.py load.
// Run: npx tsx examples/clip-finetune.ts CHECKPOINT DATA_DIR [STEPS] [OUT.safetensors] [--rils]
import { FileCaptionSource, Rils, fit, readCaptionIndex } from 'rils';

const args = process.argv.slice(2).filter((a) => a !== '--rils');
const [checkpoint, dir, steps = '100', out = 'finetuned.safetensors'] = args;
if (!checkpoint || !dir)
  throw new Error('usage: clip-finetune.ts CHECKPOINT DATA_DIR [STEPS] [OUT.safetensors] [--rils]');
const rils = process.argv.includes('--rils');

const model = await Rils.fromPretrained(checkpoint, {
  lr: 1e-5,
  weightDecay: 0.2,
  warmupSteps: 10,
  totalSteps: Number(steps), // a fine-tuning rate, not pre-training's
  ...(rils ? { decoderDepth: 1, reconWeight: 0.5 } : { reconWeight: 0 }),
});
const { items } = await readCaptionIndex(dir);
const batchSize = Math.min(32, items.length - (items.length % 2));
const source = new FileCaptionSource({
  items,
  tokenizer: model.tokenizer!,
  batchSize,
  seed: 0,
  size: model.config.imageSize,
});
await fit(model, source, {
  steps: Number(steps),
  onStep: (p) => {
    if (p.step % 10 === 0 || p.step === Number(steps)) console.log(`step ${p.step}: loss ${p.loss.toFixed(4)}`);
  },
});
await model.saveWeights(out, { layout: 'openai' });
console.log(`weights: ${out}`);
model.dispose();
