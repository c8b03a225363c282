// Image embeddings (and patch tokens) of a trained model, for retrieval or downstream tasks,
// written to a safetensors file any framework can read.
// Run: npx tsx examples/embed-images.ts WEIGHTS.safetensors OUT.safetensors IMAGE...
import { Rils, writeSafetensors } from 'rils';

const [weights, out, ...images] = process.argv.slice(2);
if (!weights || !out || images.length === 0) throw new Error('usage: embed-images.ts WEIGHTS OUT.safetensors IMAGE...');

const model = await Rils.fromWeights(weights);
const { embeddings, patchTokens } = await model.encodeImages(images, { patchTokens: true });
const { embedDim: E, visionWidth: D } = model.config;
await writeSafetensors(
  out,
  [
    { name: 'embeddings', dtype: 'F32', shape: [images.length, E], data: embeddings },
    { name: 'patch_tokens', dtype: 'F32', shape: [images.length, model.numPatches, D], data: patchTokens! },
  ],
  { images: JSON.stringify(images) },
);
console.log(`${images.length} embeddings of ${E} dims (unit norm) and ${model.numPatches} patch tokens each: ${out}`);
model.dispose();
