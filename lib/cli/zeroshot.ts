/**
 * `rils zeroshot`: classifies image files among class names with prompt templates.
 * @internal
 * @module
 */
import { invalid } from '../validate.js';
import { MODEL_OPTIONS, fail, integerOption, loadModel, parseCommand, templatesOption } from './common.js';
import type { Command } from './common.js';

/** `--classes a,b,c`: the names, trimmed; none may be empty. */
function classesOf(raw: string): string[] {
  const names = raw.split(',').map((c) => c.trim());
  if (names.some((n) => n === '')) throw invalid('non-empty class names separated by commas', '--classes', raw);
  return names;
}

async function zeroshot(argv: string[]): Promise<void> {
  const { values: a, positionals: images } = parseCommand(argv, zeroshotCommand, {
    ...MODEL_OPTIONS, classes: { type: 'string' }, templates: { type: 'string', multiple: true }, top: { type: 'string', default: '5' },
  }, true);
  if (!a.classes || images.length === 0) fail('zeroshot needs --classes a,b,c and image files');
  const classes = classesOf(a.classes), topK = integerOption(a.top, 'top', 1);
  const model = await loadModel(a);
  const classifier = await model.zeroShotClassifier(classes, { templates: templatesOption(a.templates, 'slip7') });
  const r = await classifier.classify(images, { topK });
  r.top.forEach((top, i) => {
    console.log(`${images[i]}: ${top.labels.map((l, k) => `${l} ${(100 * top.probabilities[k]!).toFixed(1)}%`).join(', ')}`);
  });
  model.dispose();
}

export const zeroshotCommand: Command = {
  usage: 'rils zeroshot --weights W --classes a,b,c [--templates slip7|clip80|FILE|"a photo of {}."...] [--top 5] IMAGE...',
  run: zeroshot,
};
