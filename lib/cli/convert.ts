/**
 * `rils convert`: weights from one layout to another (a CLIP checkpoint to rils's own file, or to
 * OpenAI's safetensors or a Hugging Face folder).
 * @internal
 * @module
 */
import { FOLDER_LAYOUTS, LAYOUTS, SAVE_LAYOUTS, SAVE_LAYOUTS_HELP } from '../weights/layouts.js';
import type { SaveLayout } from '../weights/layouts.js';
import { parseCommand } from './args.js';
import type { Command } from './args.js';
import {
  MODEL_OPTIONS,
  choiceOption,
  fail,
  loadModel,
  modelOptions,
  outputFolderOption,
  outputOption,
} from './common.js';
import { checkOutputs } from './outputs.js';

const OPTIONS = {
  ...MODEL_OPTIONS,
  out: {
    type: 'string',
    value: 'OUT',
    help: `the converted weights: a file, or a folder for --layout ${FOLDER_LAYOUTS.join('|')}`,
  },
  layout: { type: 'string', value: SAVE_LAYOUTS.join('|'), default: 'rils', help: SAVE_LAYOUTS_HELP },
} as const;

async function convert(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, convertCommand);
  modelOptions(a); // bad model options fail first
  if (!a.weights || !a.out) fail('convert needs --weights IN and --out OUT');
  const layout: SaveLayout = choiceOption(a.layout, 'layout', SAVE_LAYOUTS);
  const { folder, output } = LAYOUTS[layout].save;
  if (folder) outputFolderOption(a.out, 'out');
  else outputOption(a.out, 'out');
  checkOutputs({ '--out': a.out }, { '--weights': a.weights, '--vocab': a.vocab });
  const model = await loadModel(a);
  await model.saveWeights(a.out, { layout });
  console.log(`${a.out}: ${output} (${model.config.visionTower} vision tower)`);
  model.dispose();
}

export const convertCommand: Command<typeof OPTIONS> = {
  name: 'convert',
  summary:
    "Converts weights from one layout to another (a CLIP checkpoint to rils's file, OpenAI's safetensors or a Hugging Face folder).",
  synopsis: '--weights IN --out OUT [options]',
  options: OPTIONS,
  run: convert,
};
