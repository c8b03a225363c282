/**
 * The one path from a weight file to a model, whatever its layout: open the file and recognise its
 * layout, place its tensors, take the model's options from the file (the layout's `config`), refuse
 * a file too small for the model it describes, build the model, then stream the tensors in about
 * 64 MB at a time. The whole file is never in memory beside the model (a TorchScript archive is, as
 * LibTorch reads it whole). Nothing half-loaded survives an error.
 * @internal
 * @module
 */
import type { NativeTensorLoad } from '../addon/binding.js';
import { RilsWeightsError } from '../errors.js';
import type { RilsOptions } from '../model/options.js';
import type { ParameterInfo } from '../types.js';
import { isFeatureDecoderTensor } from './clip-names.js';
import { LAYOUTS } from './layouts.js';
import type { LoadRequest, WeightLayout } from './layouts.js';
import { openCheckpoint } from './open.js';
import type { Checkpoint } from './open.js';
import { checkCoverage, placeTensors } from './place.js';
import type { Placed } from './place.js';
import { checkModelFits, numel } from './size.js';

/** What {@link loadPlaced} needs of a model. */
export interface LoadTarget {
  parameters(): ParameterInfo[];
  loadTensors(entries: TensorLoad[]): Promise<void>;
}

/** One tensor's bytes and where they go: the addon's loadTensors entry. */
export type TensorLoad = NativeTensorLoad;

/** Bytes of file per native call while a checkpoint streams in. */
export const BATCH_BYTES = 64 << 20;

/**
 * A model from a weight file in any layout: `request` says what the caller gives (options over the
 * file's); `refuse` may turn a layout away before anything is read (fromWeights takes rils's files only).
 */
export async function openModel<M extends LoadTarget & { dispose(): void }>(
  file: string,
  request: LoadRequest,
  create: (options: RilsOptions) => Promise<M>,
  refuse?: (c: Checkpoint) => Error | undefined,
): Promise<M> {
  const c = await openCheckpoint(file);
  try {
    const refused = refuse?.(c);
    if (refused) throw refused;
    const layout: WeightLayout = LAYOUTS[c.layout];
    const placed = placeTensors(c, layout.place);
    const options = await layout.config(c, placed, request);
    // Before anything is built: the file holds at least the numbers of the model it describes.
    checkModelFits(
      c.where,
      options,
      placed.reduce((n, p) => n + numel(p.tensor.shape), 0),
      { decoder: layout.holdsDecoder },
    );
    const tokenizer = request.options.tokenizer ?? (await layout.tokenizer(c, options, request));
    const model = await create({ ...options, ...(tokenizer ? { tokenizer } : {}) });
    try {
      await loadPlaced(c, placed, model, layout.holdsDecoder);
    } catch (error) {
      model.dispose();
      throw error instanceof RilsWeightsError && !error.message.startsWith(c.path)
        ? new RilsWeightsError(`${c.where}: ${error.message}`)
        : error;
    }
    return model;
  } finally {
    await c.close();
  }
}

/**
 * Streams the placed tensors into `target`, about 64 MB of file at a time, read into one reused
 * buffer (the native side has copied a batch into the parameters when its call settles): the peak
 * is the model, one buffer and the process itself. First every trainable parameter must be covered
 * (the feature decoder only when the file `holdsDecoder`: a CLIP checkpoint's is new), each tensor of
 * its parameter's shape; native loadTensors refuses a frozen table the file holds that is not the fixed one.
 */
export async function loadPlaced(
  c: Checkpoint,
  placed: readonly Placed[],
  target: LoadTarget,
  holdsDecoder: boolean,
): Promise<void> {
  const parameters = target.parameters();
  checkCoverage(
    c,
    placed,
    parameters.map((p) => ({
      name: p.name,
      shape: p.shape,
      required: p.trainable && (holdsDecoder || !isFeatureDecoderTensor(p.name)),
    })),
  );
  const rowsOf = new Map(parameters.map((p) => [p.name, p.shape[0] ?? 0]));
  const arena = new Uint8Array(Math.max(BATCH_BYTES, ...placed.map((p) => p.tensor.byteLength)));
  let batch: TensorLoad[] = [],
    used = 0;
  for (const p of placed) {
    if (used + p.tensor.byteLength > arena.byteLength) {
      await target.loadTensors(batch);
      [batch, used] = [[], 0];
    }
    const data = await p.tensor.bytes(arena.subarray(used, used + p.tensor.byteLength));
    if (data.buffer === arena.buffer) used += p.tensor.byteLength;
    const third = Math.floor((rowsOf.get(p.to.name) ?? 0) / 3);
    batch.push({
      name: p.to.name,
      data,
      dtype: p.tensor.dtype,
      shape: p.tensor.shape,
      ...(p.to.part === undefined ? {} : { rows: [p.to.part * third, (p.to.part + 1) * third] as [number, number] }),
      ...(p.to.transpose ? { transpose: true } : {}),
    });
  }
  if (batch.length) await target.loadTensors(batch);
}
