/**
 * `rils export`: a model (rils's weights or any CLIP checkpoint) as an ONNX folder that onnxruntime and
 * transformers.js load as it is (lib/export/onnx.ts).
 * @internal
 * @module
 */
import { MODEL_OPTIONS, choiceOption, fail, loadModel, modelOptions, optionalInteger, parseCommand } from './common.js';
import type { Command } from './common.js';
import { OPSETS } from '../export/onnx-file.js';

async function exportModel(argv: string[]): Promise<void> {
  const { values: a } = parseCommand(argv, exportCommand, {
    ...MODEL_OPTIONS, out: { type: 'string' }, opset: { type: 'string' }, dtype: { type: 'string', default: 'fp32' },
    force: { type: 'boolean', default: false }, 'external-data': { type: 'boolean', default: false },
  });
  if (!a.weights || !a.out) fail('export needs --weights W and --out DIR');
  modelOptions(a);
  const options = {
    dtype: choiceOption(a.dtype, 'dtype', ['fp32', 'fp16'] as const), force: a.force,
    ...(a.opset === undefined ? {} : { opset: optionalInteger(a.opset, 'opset', OPSETS.min, OPSETS.max)! }),
    ...(a['external-data'] ? { externalData: true } : {}),
  };
  const model = await loadModel(a);
  try {
    const { files } = await model.exportOnnx(a.out, options);
    console.log(`${a.out}: ONNX (${options.dtype}, ${model.config.visionTower} vision tower${model.tokenizer ? '' : ', no tokenizer: token ids only'}): ${files.join(', ')}`);
  } finally {
    model.dispose();
  }
}

export const exportCommand: Command = {
  usage: 'rils export   --weights W --out DIR [--opset 17…21] [--dtype fp32|fp16] [--force] [--external-data] ' +
    '[--vocab FILE] [--act gelu|quick_gelu] [--device D] [--precision P]',
  run: exportModel,
};
