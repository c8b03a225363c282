// Train in Node, serve in the browser: fine-tune a model (a few steps on your captioned images, a
// folder of x.jpg + x.txt), export it to ONNX, then run it with transformers.js exactly as a web page
// would (here in Node, offline): zero-shot classification of an image among class names.
// Run: npx tsx examples/export-for-the-web.ts CHECKPOINT DATA_DIR IMAGE "class a,class b" [STEPS] [OUT_DIR]
import path from 'node:path';

import { FileCaptionSource, Rils, fit, readCaptionIndex } from 'rils';

/** The part of transformers.js used here: it is your web app's dependency (npm install @huggingface/transformers), not rils's. */
interface TransformersJs {
  env: { allowRemoteModels: boolean; localModelPath: string };
  pipeline(
    task: 'zero-shot-image-classification',
    model: string,
  ): Promise<{
    (
      image: string,
      labels: string[],
      options: { hypothesis_template: string },
    ): Promise<{ label: string; score: number }[]>;
    dispose(): Promise<void>;
  }>;
}

const [checkpoint, dir, image, classes, steps = '20', out = 'my-clip-onnx'] = process.argv.slice(2);
if (!checkpoint || !dir || !image || !classes) {
  throw new Error('usage: export-for-the-web.ts CHECKPOINT DATA_DIR IMAGE "class a,class b" [STEPS] [OUT_DIR]');
}

// 1. Fine-tune (fromPretrained's fine-tuning schedule over the steps, the CLIP loss).
const model = await Rils.fromPretrained(checkpoint, { totalSteps: Number(steps) });
const { items } = await readCaptionIndex(dir);
const batchSize = Math.min(32, items.length - (items.length % 2));
const source = new FileCaptionSource({
  items,
  tokenizer: model.tokenizer!,
  batchSize,
  seed: 0,
  size: model.config.imageSize,
});
await fit(model, source, { steps: Number(steps) });

// 2. Export: onnx/{vision_model,text_model,model}.onnx, config.json, preprocessor_config.json, tokenizer files.
const { files } = await model.exportOnnx(out, { force: true });
console.log(`${out}: ${files.join(', ')}`);
model.dispose();

// 3. transformers.js, the five lines a web page has (in a browser: env.localModelPath = '/models/').
const transformers = '@huggingface/transformers';
const { env, pipeline } = (await import(transformers)) as TransformersJs;
env.allowRemoteModels = false;
env.localModelPath = path.dirname(path.resolve(out));
const classify = await pipeline('zero-shot-image-classification', path.basename(out));
const result = await classify(image, classes.split(','), { hypothesis_template: 'a photo of a {}.' });
console.log(result.map((r) => `${r.label} ${(100 * r.score).toFixed(1)}%`).join(', '));
await classify.dispose();
