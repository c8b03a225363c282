// Data wait of the loader at a preset's step rate: fit() trains PRESET for STEPS steps of BATCH on the
// photo shards (WebDatasetSource, `workers` readers, the same pipeline as bench/loader.ts), and prints
// the run's data-wait fraction and step rate as one JSON line. The first step's wait (the pipeline
// filling) is included. Usage: node --import tsx bench/loader-fit.ts PRESET BATCH STEPS WORKERS THREADS SHARD...
import { ClipTokenizer, Rils, WebDatasetSource, fit, setNumThreads } from '../lib/index.js';
import type { PresetName, StepProgress } from '../lib/index.js';

const [preset, batch, steps, workers, threads] = process.argv.slice(2, 7) as [
  PresetName,
  string,
  string,
  string,
  string,
];
const shards = process.argv.slice(7);
setNumThreads(Number(threads));
const tokenizer = await ClipTokenizer.load(undefined, { contextLength: 77 });
const model = await Rils.create({
  preset,
  vocabSize: tokenizer.vocabSize,
  contextLength: 77,
  tokenizer,
  seed: 0,
  retrievalGate: false,
});
const source = new WebDatasetSource({
  shards,
  tokenizer,
  batchSize: Number(batch),
  size: model.config.imageSize,
  seed: 0,
  workers: Number(workers),
  shuffle: 0,
  decodeThreads: Number(workers),
});
let last: StepProgress | undefined;
await fit(model, source, { steps: Number(steps), handleSigint: false, onStep: (p) => (last = p) });
console.log(
  JSON.stringify({
    preset,
    batch: Number(batch),
    steps: Number(steps),
    data_wait: last!.dataWaitFraction,
    images_per_s: last!.imagesPerSecond,
    seconds: last!.elapsedSeconds,
  }),
);
model.dispose();
