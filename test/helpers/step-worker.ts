// A worker_threads worker that trains a micro model in a loop, for the teardown test.
import { parentPort } from 'node:worker_threads';

import { Rils } from '../../lib/index.js';
import { randomBatch } from './batches.js';

const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
const batch = randomBatch(model, 32);
parentPort!.postMessage('ready');
for (;;) await model.trainStep(batch);
