/**
 * Where a checkpoint's tensors go in a model: each placed among the model's parameters by its
 * layout's naming (OpenAI's names are the model's own; Hugging Face's map onto them, a third of a
 * packed in-projection or transposed), then checked to cover the model exactly, each of the shape
 * its place needs, before any byte is loaded.
 * @internal
 * @module
 */
import { RilsWeightsError } from '../errors.js';
import { isExtraTensor } from './clip-names.js';
import type { NamePlacement } from './clip-names.js';
import type { Checkpoint, StoredTensor } from './open.js';

/** A checkpoint tensor and where it goes in the model (a parameter's name, a third of it, transposed). */
export interface Placed {
  tensor: StoredTensor;
  to: NamePlacement;
}

/** Every tensor of the checkpoint placed by `place`; a tensor that has no place is an error. */
export function placeTensors(c: Checkpoint, place: (name: string) => NamePlacement | undefined): Placed[] {
  const out: Placed[] = [];
  for (const tensor of c.tensors) {
    if (isExtraTensor(tensor.name)) continue;
    const to = place(tensor.name);
    if (!to)
      throw new RilsWeightsError(
        `${c.where}: '${tensor.name}' is no tensor of OpenAI's CLIP ViT (another architecture?)`,
      );
    out.push({ tensor, to });
  }
  return out;
}

/** A parameter a checkpoint may fill: its shape once the model is built, and whether it must be filled. */
export interface Slot {
  name: string;
  shape?: number[] | undefined;
  required: boolean;
}

const shown = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** The shape the file should hold for `p` to fill `shape` (a third of its rows; transposed as the file stores it). */
function neededShape(p: Placed, shape: readonly number[]): number[] {
  const rows = p.to.part === undefined ? [...shape] : [(shape[0] ?? 0) / 3, ...shape.slice(1)];
  return p.to.transpose ? rows.reverse() : rows;
}

/**
 * Every required slot filled exactly once (whole, or by its three q, k, v parts), every tensor going
 * to a slot of the model, of the shape it needs (when the slot's shape is known).
 */
export function checkCoverage(c: Checkpoint, placed: readonly Placed[], slots: readonly Slot[]): void {
  const parts = new Map<string, number>();
  const own = new Map(slots.map((s) => [s.name, s]));
  for (const p of placed) {
    const key = p.to.name,
      slot = own.get(key);
    const seen = parts.get(key) ?? 0,
      bit = p.to.part === undefined ? 7 : 1 << p.to.part;
    if (seen & bit) throw new RilsWeightsError(`${c.where}: '${p.tensor.name}' fills '${key}' twice`);
    parts.set(key, seen | bit);
    if (!slot) throw new RilsWeightsError(`${c.where}: '${key}' is not a parameter of the model the file describes`);
    const needed = slot.shape && neededShape(p, slot.shape);
    if (needed && shown(needed) !== shown(p.tensor.shape)) {
      throw new RilsWeightsError(
        `${c.where}: '${p.tensor.name}' has shape ${shown(p.tensor.shape)} where the model needs ` +
          `${shown(needed)} (weights of another preset or config?)`,
      );
    }
  }
  for (const s of slots) {
    if (s.required && parts.get(s.name) !== 7) {
      throw new RilsWeightsError(
        `${c.where}: '${s.name}' is missing${parts.has(s.name) ? ' (part of its q, k, v)' : ''}`,
      );
    }
  }
}
