// A child process for the crash test: trains and checkpoints in a loop until it is killed.
import { Rils } from '../../lib/index.js';
import { randomBatch } from './batches.js';

const path = process.argv[2]!;
const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
const batch = randomBatch(model, 4);
await model.saveCheckpoint(path, { data: null });
process.stdout.write('ready\n');
for (;;) {
  await model.trainStep(batch);
  await model.saveCheckpoint(path, { data: model.step });
}
