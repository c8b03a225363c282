/**
 * `rils convert`: weights from one layout to another (a CLIP checkpoint to rils's own file, or to
 * OpenAI's safetensors or a Hugging Face folder).
 * @internal
 * @module
 */
import { SAVE_LAYOUTS } from '../weights/clip-save.js';
import type { SaveLayout } from '../weights/clip-save.js';
import { MODEL_OPTIONS, choiceOption, fail, loadModel, outputFolderOption, outputOption, parseCommand } from './common.js';
import type { Command } from './common.js';
import { checkOutputs } from './outputs.js';

async function convert(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, convertCommand, { ...MODEL_OPTIONS, out: { type: 'string' }, layout: { type: 'string', default: 'rils' } });
  if (!a.weights || !a.out) fail('convert needs --weights IN and --out OUT');
  const layout: SaveLayout = choiceOption(a.layout, 'layout', SAVE_LAYOUTS);
  if (layout === 'hf') outputFolderOption(a.out, 'out');
  else outputOption(a.out, 'out');
  checkOutputs({ '--out': a.out }, { '--weights': a.weights, '--vocab': a.vocab });
  const model = await loadModel(a);
  await model.saveWeights(a.out, { layout });
  console.log(`${a.out}: ${layout === 'hf' ? 'a Hugging Face folder' : `${layout} weights`} (${model.config.visionTower} vision tower)`);
  model.dispose();
}

export const convertCommand: Command = {
  usage: 'rils convert  --weights IN --out OUT [--layout rils|openai|hf] [--act gelu|quick_gelu]',
  run: convert,
};
