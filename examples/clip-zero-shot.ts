// Zero-shot classification with pretrained CLIP weights: OpenAI's ViT-B-16.pt (what clip.load
// downloads to ~/.cache/clip/), a Hugging Face folder (e.g. openai/clip-vit-base-patch16), or
// open_clip's open_clip_model.safetensors (add { act: 'gelu' } for its GELU models). rils reads the
// file you have; it downloads nothing. CLIP's tokenizer comes with rils.
// Run: npx tsx examples/clip-zero-shot.ts CHECKPOINT cat,dog,bird IMAGE...
import { Rils } from 'rils';

const [checkpoint, classes, ...images] = process.argv.slice(2);
if (!checkpoint || !classes || images.length === 0)
  throw new Error('usage: clip-zero-shot.ts CHECKPOINT a,b,c IMAGE...');

const model = await Rils.fromPretrained(checkpoint);
const classifier = await model.zeroShotClassifier(classes.split(','), { templates: 'clip80' }); // CLIP's 80 ImageNet prompts
const { top } = await classifier.classify(images, { topK: Math.min(3, classifier.classNames.length) });
top.forEach((t, i) => {
  console.log(
    `${images[i]}: ${t.labels.map((label, k) => `${label} ${(100 * t.probabilities[k]!).toFixed(1)}%`).join(', ')}`,
  );
});
model.dispose();
