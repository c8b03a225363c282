/**
 * `rils export`: a model (rils's weights or any CLIP checkpoint) as an ONNX folder that onnxruntime and
 * transformers.js load as it is (lib/export/onnx.ts).
 * @internal
 * @module
 */
import { OPSETS } from '../export/onnx-file.js';
import { parseCommand } from './args.js';
import type { Command } from './args.js';
import {
  MODEL_OPTIONS,
  choiceOption,
  fail,
  loadModel,
  modelOptions,
  optionalInteger,
  outputFolderOption,
} from './common.js';
import { checkOutputs } from './outputs.js';

const OPTIONS = {
  ...MODEL_OPTIONS,
  out: { type: 'string', value: 'DIR', help: 'the folder to write (new or empty, unless --force)' },
  opset: {
    type: 'string',
    value: 'N',
    default: String(OPSETS.min),
    help: `the ONNX opset, ${OPSETS.min} … ${OPSETS.max}`,
  },
  dtype: {
    type: 'string',
    value: 'fp32|fp16',
    default: 'fp32',
    help: 'fp16 halves the files for the web (*_fp16.onnx, float32 inputs and outputs)',
  },
  force: { type: 'boolean', default: false, help: 'replace --out when it holds files' },
  'external-data': {
    type: 'boolean',
    default: false,
    help: 'the weights in onnx/*.onnx_data beside each model (always past 2 GB)',
  },
} as const;

async function exportModel(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, exportCommand);
  modelOptions(a); // bad model options fail first
  if (!a.weights || !a.out) fail('export needs --weights W and --out DIR');
  outputFolderOption(a.out, 'out');
  checkOutputs({ '--out': a.out }, { '--weights': a.weights, '--vocab': a.vocab });
  const options = {
    dtype: choiceOption(a.dtype, 'dtype', ['fp32', 'fp16'] as const),
    force: a.force,
    opset: optionalInteger(a.opset, 'opset', OPSETS.min, OPSETS.max)!,
    ...(a['external-data'] ? { externalData: true } : {}),
  };
  const model = await loadModel(a);
  try {
    const { files } = await model.exportOnnx(a.out, options);
    const what = `${options.dtype}, ${model.config.visionTower} vision tower${model.tokenizer ? '' : ', no tokenizer: token ids only'}`;
    console.log(`${a.out}: ONNX (${what}): ${files.join(', ')}`);
  } finally {
    model.dispose();
  }
}

export const exportCommand: Command<typeof OPTIONS> = {
  name: 'export',
  summary:
    'Exports a model to ONNX: a folder that onnxruntime and transformers.js load as it is (onnx/vision_model.onnx, ' +
    "text_model.onnx, model.onnx, config.json, preprocessor_config.json, the tokenizer's files).",
  synopsis: '--weights W --out DIR [options]',
  options: OPTIONS,
  run: exportModel,
};
