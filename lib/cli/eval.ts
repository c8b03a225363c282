/**
 * `rils eval`: the MNIST evaluation of a model (zero-shot with unseen templates, k-NN, 10-shot,
 * linear probe), as one JSON line.
 * @internal
 * @module
 */
import { loadMnist } from '../data/mnist.js';
import { mnistFrozenFeatures, mnistZeroShot } from '../mnist-eval.js';
import { MODEL_OPTIONS, fail, loadModel, parseCommand } from './common.js';
import type { Command } from './common.js';

async function evaluate(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, evalCommand, { ...MODEL_OPTIONS, data: { type: 'string', default: 'mnist' } });
  if (a.data !== 'mnist') fail('eval supports --data mnist (labelled test digits)');
  const model = await loadModel(a);
  const train = loadMnist('train'), test = loadMnist('test');
  const { top1, top5 } = await mnistZeroShot(model, test);
  const { knn, fewShot10, linearProbe } = await mnistFrozenFeatures(model, train, test);
  console.log(JSON.stringify({ zeroShotTop1: top1, zeroShotTop5: top5, knn20: knn, fewShot10, linearProbe }));
  model.dispose();
}

export const evalCommand: Command = {
  usage: 'rils eval     --weights W --data mnist   (zero-shot top-1/top-5 with unseen templates, k-NN, 10-shot, linear probe)',
  run: evaluate,
};
