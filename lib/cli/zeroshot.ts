/**
 * `rils zeroshot`: classifies image files among class names with prompt templates.
 * @internal
 * @module
 */
import { decodeChunk } from '../eval/embed.js';
import { imageArguments } from './images.js';
import { parseCommand } from './args.js';
import type { Command } from './args.js';
import {
  MODEL_OPTIONS,
  TEMPLATES_OPTION,
  fail,
  integerOption,
  loadModel,
  modelOptions,
  templatesOption,
} from './common.js';
import { invalid } from '../validate.js';

const OPTIONS = {
  ...MODEL_OPTIONS,
  classes: { type: 'string', value: 'a,b,c', help: 'the class names, separated by commas' },
  templates: { ...TEMPLATES_OPTION, help: `${TEMPLATES_OPTION.help} (default slip7)` },
  top: { type: 'string', value: 'K', default: '5', help: 'classes shown per image' },
} as const;

/** Images decoded and classified together. */
const CHUNK = 64;

/** `--classes a,b,c`: the names, trimmed; none may be empty. */
function classesOf(raw: string): string[] {
  const names = raw.split(',').map((c) => c.trim());
  if (names.some((n) => n === '')) throw invalid('non-empty class names separated by commas', '--classes', raw);
  return names;
}

async function zeroshot(argv: string[]): Promise<void> {
  const { values: a, positionals } = parseCommand(argv, zeroshotCommand, true);
  modelOptions(a); // bad model options fail first
  if (!a.classes || positionals.length === 0)
    fail('zeroshot needs --classes a,b,c and image files (or folders of them)');
  const classes = classesOf(a.classes),
    topK = integerOption(a.top, 'top', 1),
    templates = templatesOption(a.templates, 'slip7');
  const { images, notImages } = await imageArguments(positionals);
  if (notImages.length) console.log(`skipped ${notImages.length} file(s) that are not images (first: ${notImages[0]})`);
  if (images.length === 0) fail(`no image among ${positionals.join(', ')}`);
  const model = await loadModel(a);
  const classifier = await model.zeroShotClassifier(classes, { templates });
  const { imageSize: S, interpolation } = model.config;
  const unreadable: string[] = [];
  for (let start = 0; start < images.length; start += CHUNK) {
    const chunk = await decodeChunk(images.slice(start, start + CHUNK), start, S, false, interpolation);
    unreadable.push(...chunk.failed.map((f) => `${f.name} (${f.reason})`));
    if (chunk.ok.length === 0) continue;
    const r = await classifier.classify({ images: chunk.pixels, batchSize: chunk.ok.length }, { topK });
    r.top.forEach((top, i) => {
      console.log(
        `${images[chunk.ok[i]!]}: ${top.labels.map((l, k) => `${l} ${(100 * top.probabilities[k]!).toFixed(1)}%`).join(', ')}`,
      );
    });
  }
  if (unreadable.length) console.log(`skipped ${unreadable.length} unreadable image(s) (first: ${unreadable[0]})`);
  model.dispose();
}

export const zeroshotCommand: Command<typeof OPTIONS> = {
  name: 'zeroshot',
  summary:
    'Classifies images among class names: each class is the mean embedding of its prompts, the best classes are printed per image.',
  synopsis: '--weights W --classes a,b,c [options] IMAGE|DIR...',
  options: OPTIONS,
  notes: 'A folder stands for the images directly in it; other files are skipped and counted.',
  run: zeroshot,
};
