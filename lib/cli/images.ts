/**
 * Image arguments of the commands that take image files: each argument a file or a folder (the
 * images directly in it, by name; other files are counted, subfolders are not entered).
 * @internal
 * @module
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { IMAGE_EXT } from '../data/files.js';
import { RilsInputError } from '../errors.js';

/** The images of the arguments, in order, and the files that are not images. */
export async function imageArguments(args: readonly string[]): Promise<{ images: string[]; notImages: string[] }> {
  const images: string[] = [],
    notImages: string[] = [];
  const isImage = (name: string) => IMAGE_EXT.has(path.extname(name).toLowerCase());
  for (const arg of args) {
    const info = await stat(arg).catch(() => undefined);
    if (!info) throw new RilsInputError(`No such file or folder: ${arg}`);
    if (!info.isDirectory()) {
      (isImage(arg) ? images : notImages).push(arg);
      continue;
    }
    const entries = (await readdir(arg, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const entry of entries) {
      if (!entry.isFile() && !entry.isSymbolicLink()) continue;
      (isImage(entry.name) ? images : notImages).push(path.join(arg, entry.name));
    }
  }
  return { images, notImages };
}
