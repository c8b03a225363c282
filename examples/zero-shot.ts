// Zero-shot classification: class names become text embeddings through prompt templates, and
// each image gets the classes whose embeddings it is closest to.
// Run: npx tsx examples/zero-shot.ts WEIGHTS.safetensors cat,dog,bird IMAGE...
import { Rils } from 'rils';

const [weights, classes, ...images] = process.argv.slice(2);
if (!weights || !classes || images.length === 0) throw new Error('usage: zero-shot.ts WEIGHTS a,b,c IMAGE...');

const model = await Rils.fromWeights(weights); // the file carries its tokenizer
const classifier = await model.zeroShotClassifier(classes.split(','), {
  templates: ['a photo of a {}.', 'a {}.', '{}'],
});
const { top } = await classifier.classify(images, { topK: Math.min(3, classifier.classNames.length) });
top.forEach((t, i) => {
  console.log(
    `${images[i]}: ${t.labels.map((label, k) => `${label} ${(100 * t.probabilities[k]!).toFixed(1)}%`).join(', ')}`,
  );
});
model.dispose();
