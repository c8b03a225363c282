// Frozen-feature protocols on clustered synthetic features: k-NN, few-shot prototypes, linear probe.
import test from 'ava';

import {
  RilsInputError,
  accuracy,
  knnClassify,
  linearProbeClassify,
  prototypeClassify,
  sampleShots,
} from '../lib/index.js';
import { Random } from '../lib/data/augment.js';

function clusters(perClass: number, seed: number, noise: number) {
  const r = new Random(seed),
    dim = 8,
    classes = 4;
  const features = new Float32Array(classes * perClass * dim),
    labels = new Int32Array(classes * perClass);
  for (let c = 0; c < classes; c++)
    for (let i = 0; i < perClass; i++) {
      const k = c * perClass + i;
      labels[k] = c;
      for (let d = 0; d < dim; d++) features[k * dim + d] = (d === c ? 1 : 0) + noise * (r.next() - 0.5);
    }
  return { features, labels };
}

test('k-NN, prototypes and a linear probe separate clustered features', async (t) => {
  const train = clusters(30, 1, 0.6),
    test_ = clusters(20, 2, 0.6);
  for (const predict of [
    knnClassify(train, test_.features, { numClasses: 4, k: 5 }),
    prototypeClassify(sampleShots(train, 5, 4), test_.features, { numClasses: 4 }),
    linearProbeClassify(train, test_.features, { numClasses: 4 }),
  ]) {
    t.true(accuracy(await predict, test_.labels) > 0.9);
  }
  const shots = sampleShots(train, 3, 4, 7);
  t.is(shots.labels.length, 12);
  t.deepEqual([...new Set(shots.labels)].sort(), [0, 1, 2, 3]);
});

test('bad feature input is a typed error', async (t) => {
  const train = clusters(3, 1, 0.1);
  await t.throwsAsync(knnClassify(train, new Float32Array(3), { numClasses: 4 }), { instanceOf: RilsInputError });
  await t.throwsAsync(knnClassify({ ...train, labels: train.labels.map(() => 9) }, train.features, { numClasses: 4 }), {
    instanceOf: RilsInputError,
    message: /trainLabels/,
  });
  t.throws(() => accuracy([1], [1, 2]), { instanceOf: RilsInputError });
});
