// RILS's language-semantic view of an image: per patch, a probability over the given texts.
// Writes one heat map per text (PNG, the image with the map over it).
// Run: npx tsx examples/patch-maps.ts WEIGHTS.safetensors IMAGE "a red square" "a blue circle" ...
import { writeFileSync } from 'node:fs';

import { Rils, renderHeatmap } from 'rils';

const [weights, image, ...texts] = process.argv.slice(2);
if (!weights || !image || texts.length < 2) throw new Error('usage: patch-maps.ts WEIGHTS IMAGE TEXT TEXT...');

const model = await Rils.fromWeights(weights);
const { probabilities, gridSize } = await model.patchSemantics([image], texts);
const patches = gridSize * gridSize;
for (const [k, text] of texts.entries()) {
  // probabilities is [1, patches, texts]: this text's column.
  const map = Float32Array.from({ length: patches }, (_, p) => probabilities[p * texts.length + k]!);
  const file = `patch-map-${k}.png`;
  writeFileSync(file, await renderHeatmap(image, map, gridSize, { size: 192 }));
  const mean = map.reduce((a, b) => a + b, 0) / patches;
  console.log(`"${text}": mean patch probability ${(100 * mean).toFixed(1)}% → ${file}`);
}
model.dispose();
