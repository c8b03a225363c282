/**
 * Outputs that would destroy inputs: a command refuses, before any work, an output path that is
 * one of its inputs (the same file, through links and hard links alike), a data file inside an input
 * folder (an image, a caption, a class list; any file of a weights folder), an output folder that
 * holds an input, or the path of another of its outputs.
 * @internal
 * @module
 */
import { realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import path from 'node:path';

import { isImageFileName } from '../data/image-folder.js';
import { shardKind, shardUrls } from '../data/shard-spec.js';
import { RilsInputError } from '../errors.js';

/** What a command reads, by option (`'--data'`, `'IMAGE'`): paths, or data specs (shard lists expanded, local ones kept). */
export type Inputs = Record<string, string | readonly string[] | undefined>;
/** What a command writes, by option (`'--out'`). */
export type Outputs = Record<string, string | undefined>;

/** Files the readers take from a data folder: images, captions (`.txt`) and class lists. */
const folderData = (file: string) =>
  isImageFileName(file) || /\.txt$/i.test(file) || path.basename(file) === 'classes.json';
/** Files an index (JSONL, CSV) beside them may name: images. */
const indexData = (file: string) => isImageFileName(file);
/** A weights folder (Hugging Face's) is read whole. */
const anyFile = () => true;

/** An input that exists; a folder's data files (or those beside an index) are inputs too. */
interface Input {
  option: string;
  path: string;
  info: Stats;
  folder?: { real: string; holds: (file: string) => boolean; what: string };
}

const statOf = (p: string): Stats | undefined => statSync(p, { throwIfNoEntry: false });
const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;
function inside(file: string, folder: string): boolean {
  const rel = path.relative(folder, file);
  return rel !== '' && rel.split(path.sep)[0] !== '..' && !path.isAbsolute(rel);
}

/** Where a path leads: its real path, or (for a new file) its real folder and its name. */
function realTarget(p: string): string {
  const info = statOf(p);
  if (info) return realpathSync(p);
  const folder = path.dirname(path.resolve(p));
  return path.join(statOf(folder) ? realpathSync(folder) : folder, path.basename(p));
}

/** Each input path that exists, with the folder whose data files are inputs too; `whole` folders are read whole. */
function existingInputs(inputs: Inputs, whole: ReadonlySet<string>): Input[] {
  const out: Input[] = [];
  for (const [option, value] of Object.entries(inputs)) {
    const specs = value === undefined ? [] : typeof value === 'string' ? [value] : value;
    for (const spec of specs) {
      for (const p of (shardUrls(spec) ?? [spec]).filter((url) => shardKind(url) === 'file')) {
        const info = statOf(p);
        if (!info) continue; // 'mnist', or a path the command reports itself
        const folder = info.isDirectory()
          ? {
              real: realpathSync(p),
              holds: whole.has(option) ? anyFile : folderData,
              what: `a file inside ${option} (${p})`,
            }
          : /\.(jsonl|csv)$/i.test(p)
            ? {
                real: path.dirname(realpathSync(p)),
                holds: indexData,
                what: `an image under the folder of ${option} (${p})`,
              }
            : undefined;
        out.push({ option, path: p, info, ...(folder ? { folder } : {}) });
      }
    }
  }
  return out;
}

const refuse = (option: string, file: string, why: string) =>
  new RilsInputError(
    `Expected an output path that is none of the inputs for ${option} but received ${JSON.stringify(file)}, ${why}; nothing was written`,
  );

/**
 * Refuses outputs that are inputs, data files inside input folders, folders that hold an input, or
 * another output's path. The options in `whole` (weights, checkpoints) name folders read whole.
 */
export function checkOutputs(
  outputs: Outputs,
  inputs: Inputs,
  whole: readonly string[] = ['--weights', '--init'],
): void {
  const read = existingInputs(inputs, new Set(whole));
  const targets = new Map<string, string>();
  for (const [option, file] of Object.entries(outputs)) {
    if (file === undefined) continue;
    const target = realTarget(file);
    const other = targets.get(target);
    if (other !== undefined) throw refuse(option, file, `the path of ${other} too`);
    targets.set(target, option);
    const info = statOf(file);
    if (!info) continue; // a new file is no input
    for (const input of read) {
      if (sameFile(info, input.info)) throw refuse(option, file, `which is ${input.option} (${input.path})`);
      if (input.folder && info.isFile() && input.folder.holds(target) && inside(target, input.folder.real)) {
        throw refuse(option, file, input.folder.what);
      }
      if (info.isDirectory() && inside(realpathSync(input.path), target))
        throw refuse(option, file, `a folder that holds ${input.option} (${input.path})`);
    }
  }
}
