/**
 * A declared model must fit the bytes that hold it: before a model is built from what a weight file
 * says (its metadata, or a config inferred from its tensors' shapes), the numbers that model holds,
 * counted by the addon from the config alone, are compared with the numbers the file's tensors hold.
 * A file of a few kilobytes whose header declares absurd shapes (zero-element tensors, a width of a
 * billion) is refused at once instead of allocating its model.
 * @internal
 * @module
 */
import { native } from '../addon/binding.js';
import { RilsInputError, RilsWeightsError, fromNative } from '../errors.js';
import { toNativeOptions } from '../model/native-options.js';
import type { RilsOptions } from '../model/options.js';
import { CONFIG_FIELDS } from '../model/schema.js';

/** The element count of a shape. */
export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The size of the model of `options` (its model fields; each checked, as the addon checks them together). */
function countOf(options: RilsOptions): { total: number; decoder: number; preset: string } {
  const modelFields = Object.entries(options).filter(([k]) => k === 'preset' || CONFIG_FIELDS.has(k));
  const { preset, config } = toNativeOptions(Object.fromEntries(modelFields) as RilsOptions);
  try {
    return { ...native.parameterCount({ preset, config }), preset };
  } catch (error) {
    throw fromNative(error);
  }
}

/**
 * Checks the model config a file gives by itself (its metadata): an invalid one is the file's fault,
 * a RilsWeightsError naming it, not an error of the caller's options.
 */
export function checkFileConfig(where: string, fromFile: RilsOptions): void {
  try {
    countOf(fromFile);
  } catch (error) {
    if (!(error instanceof RilsInputError)) throw error;
    throw new RilsWeightsError(`${where}: its metadata does not describe a valid model: ${error.message}`);
  }
}

/**
 * Refuses a file whose tensors hold `stored` numbers when the model of `options` needs more
 * (without its feature decoder when `decoder` is false: a CLIP checkpoint has none). `where` names
 * the file. Invalid options fail as they would when the model is created.
 */
export function checkModelFits(
  where: string,
  options: RilsOptions,
  stored: number,
  { decoder }: { decoder: boolean },
): void {
  const count = countOf(options);
  const needed = decoder ? count.total : count.total - count.decoder;
  if (needed > stored) {
    throw new RilsWeightsError(
      `${where}: its tensors hold ${stored} numbers but the model they describe needs ${needed} ` +
        `(${describeModel(options, count.preset)}): the file is cut short, or its shapes or metadata are not its own`,
    );
  }
}

/** The fields that size a model, for messages. */
function describeModel(o: RilsOptions, preset: string): string {
  const keys = [
    'visionWidth',
    'visionDepth',
    'textWidth',
    'textLayers',
    'vocabSize',
    'contextLength',
    'imageSize',
    'patchSize',
  ] as const;
  return [`preset ${preset}`, ...keys.filter((k) => o[k] !== undefined).map((k) => `${k} ${String(o[k])}`)].join(', ');
}
