/**
 * Labelled images on disk in torchvision's `ImageFolder` layout: one subfolder per class, holding
 * that class's images (in any depth of subfolders, any format sharp reads). Class names come from
 * the folder names (`_` and `-` become spaces), or from a `classes.txt` or `classes.json` next to
 * the class folders. Files that are not images are skipped and counted. Each file counts once: the
 * walk does not follow symbolic links to folders below the class folders (a link to `..` would read
 * the dataset again, other classes' images included), and a file reached twice (hard or symbolic
 * links) is read the first time only.
 * @module
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { RilsInputError } from '../errors.js';
import { readRegularFile } from '../io/regular-file.js';
import { IMAGE_EXT } from './files.js';
import type { DatasetFormat } from './formats.js';
import { alignTrainSet, splitImageSet } from './labelled.js';
import type { LabelledData, LabelledImageSet, OpenLabelledImagesOptions } from './labelled.js';

/** Extensions of the formats sharp may read beyond the training sources' (an unreadable one is skipped when decoded). */
const MORE_EXT = new Set(['.svg', '.heic', '.heif', '.jxl', '.jp2', '.bmp', '.jfif']);

/**
 * Where class names come from: a list in the sorted order of the class folders, an object from
 * folder name to class name (folders it leaves out keep their own name), or the path of a
 * `.txt` (one name per line, in folder order) or `.json` file holding either.
 */
export type ClassNameSource = readonly string[] | Readonly<Record<string, string>> | string;

/** Options of {@link readImageFolder}. */
export interface ReadImageFolderOptions {
  /** Class names for the folders. Default: `classes.txt` or `classes.json` in the folder, else the folder names. */
  classNames?: ClassNameSource;
  /** Fewest classes accepted. Default 2 (classification needs two). */
  minClasses?: number;
}

/** What {@link readImageFolder} found. */
export interface ImageFolder {
  /** The images of the non-empty class folders, with their classes. */
  images: LabelledImageSet;
  /** Files in the class folders that are not images (by extension). */
  skipped: number;
  /** Class folders without any image (left out). */
  emptyClasses: string[];
  /** Image files reached again through another link (hard or symbolic): read once, left out here. */
  duplicates: number;
  /** Symbolic links to folders inside class folders: not followed. */
  linkedFolders: string[];
}

/** Whether a file name is one the readers take for an image (by its extension). @internal */
export function isImageFileName(name: string): boolean {
  const ext = path.extname(name).toLowerCase();
  return IMAGE_EXT.has(ext) || MORE_EXT.has(ext);
}

/** A folder name as a class name: Unicode NFC, `_` and `-` as spaces, single spaces. */
export function classNameOf(folder: string): string {
  return folder.normalize('NFC').replace(/[_-]+/g, ' ').replace(/\s+/g, ' ').trim() || folder;
}

/** The key under which two class names count as the same (prompts would not tell them apart). */
const sameNameKey = (name: string) => name.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}

/** What a walk of class folders found besides the images. @internal */
export interface WalkCounts {
  /** Files that are not images. */
  other: number;
  /** Image files reached a second time. */
  duplicates: number;
  /** Symbolic links to folders, not followed. */
  linkedFolders: string[];
  /** The files read so far, by device and inode: each is read once. */
  seen: Set<string>;
}

/** A new walk's counts; `seen` may be shared with another walk (a test set's files, to keep out of its training set). @internal */
export const newWalk = (seen = new Set<string>()): WalkCounts => ({ other: 0, duplicates: 0, linkedFolders: [], seen });

/** The file's identity (device and inode), or its path when it cannot be read (decoding will report it). */
async function fileId(file: string): Promise<string> {
  const info = await stat(file, { bigint: true }).catch(() => null);
  return info ? `${info.dev}:${info.ino}` : file;
}

/** Image files under `dir` (recursively, sorted), not through symbolic links to folders, each file once. */
async function imagesUnder(dir: string, walk: WalkCounts): Promise<string[]> {
  const files: string[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (entry.name.startsWith('.')) continue; // .DS_Store, editor and VCS files
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await imagesUnder(full, walk)));
    else if (entry.isSymbolicLink() && (await isDirectory(full))) walk.linkedFolders.push(full);
    else if (isImageFileName(entry.name)) {
      const id = await fileId(full);
      if (walk.seen.has(id)) walk.duplicates++;
      else {
        walk.seen.add(id);
        files.push(full);
      }
    } else walk.other++;
  }
  return files;
}

/** A class-name list or mapping from a `.txt` or `.json` file. */
async function readClassNameFile(file: string): Promise<readonly string[] | Record<string, string>> {
  const text = (await readRegularFile(file, 'a class-name file (.txt or .json)')).toString('utf-8');
  if (!file.endsWith('.json'))
    return text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '');
  try {
    return JSON.parse(text) as readonly string[] | Record<string, string>;
  } catch (error) {
    throw new RilsInputError(
      `Expected JSON (a list of class names or an object from folder to name) in ${file} but received ${(error as Error).message}`,
    );
  }
}

/** The mapping given, or the one in the folder, or none. */
async function classNameSource(
  dir: string,
  given: ClassNameSource | undefined,
): Promise<{ names: ClassNameSource; from: string } | undefined> {
  if (given !== undefined) {
    return typeof given === 'string'
      ? { names: await readClassNameFile(given), from: given }
      : { names: given, from: 'classNames' };
  }
  for (const file of ['classes.json', 'classes.txt']) {
    const p = path.join(dir, file);
    if ((await stat(p).catch(() => null))?.isFile()) return { names: await readClassNameFile(p), from: p };
  }
  return undefined;
}

/** Each folder's class name, from the mapping where it has one. */
function namesFor(folders: readonly string[], mapping: { names: ClassNameSource; from: string } | undefined): string[] {
  const own = folders.map(classNameOf);
  if (!mapping) return own;
  const { names, from } = mapping;
  if (Array.isArray(names)) {
    if (names.length !== folders.length || !names.every((n) => typeof n === 'string' && n.trim() !== '')) {
      throw new RilsInputError(
        `Expected ${folders.length} class names in ${from} (one per class folder, in sorted order) but received ${names.length}`,
      );
    }
    return names.map((n: string) => n.normalize('NFC').trim());
  }
  if (typeof names !== 'object' || names === null)
    throw new RilsInputError(`Expected a list or an object of class names in ${from}`);
  // Keys and folder names compared in NFC: macOS file systems hand back NFD names.
  const record = new Map(Object.entries(names as Record<string, unknown>).map(([k, v]) => [k.normalize('NFC'), v]));
  const unknown = [...record.keys()].filter((k) => !folders.some((f) => f.normalize('NFC') === k));
  if (unknown.length)
    throw new RilsInputError(
      `${from} names folders that do not exist: ${unknown.map((u) => JSON.stringify(u)).join(', ')}`,
    );
  return folders.map((f, i) => {
    const n = record.get(f.normalize('NFC'));
    if (n === undefined) return own[i]!;
    if (typeof n !== 'string' || n.trim() === '')
      throw new RilsInputError(
        `Expected a class name for folder ${JSON.stringify(f)} in ${from} but received ${JSON.stringify(n)}`,
      );
    return n.normalize('NFC').trim();
  });
}

/** Refuses two classes whose prompts would be the same text. */
function checkDistinct(folders: readonly string[], names: readonly string[], dir: string): void {
  const seen = new Map<string, number>();
  names.forEach((n, i) => {
    const first = seen.get(sameNameKey(n));
    if (first !== undefined) {
      throw new RilsInputError(
        `Expected distinct class names in ${dir} but folders ${JSON.stringify(folders[first])} and ${JSON.stringify(folders[i])} ` +
          `are both ${JSON.stringify(n)}: rename one, or name them in a classes.json ({"folder": "name"})`,
      );
    }
    seen.set(sameNameKey(n), i);
  });
}

/** The class folders of `dir` (sorted), or why there are none. */
async function classFolders(dir: string): Promise<string[]> {
  if (!(await stat(dir).catch(() => null)))
    throw new RilsInputError(`Dataset not found: ${dir} (expected a folder with one subfolder per class)`);
  if (!(await isDirectory(dir)))
    throw new RilsInputError(`Expected a folder with one subfolder per class but received the file ${dir}`);
  const entries = await readdir(dir, { withFileTypes: true });
  const folders: string[] = [];
  for (const e of entries) {
    if (
      !e.name.startsWith('.') &&
      (e.isDirectory() || (e.isSymbolicLink() && (await isDirectory(path.join(dir, e.name)))))
    )
      folders.push(e.name);
  }
  if (folders.length === 0) {
    const loose = entries.some((e) => IMAGE_EXT.has(path.extname(e.name).toLowerCase()));
    throw new RilsInputError(
      `Expected one subfolder per class in ${dir} but it has no subfolder${loose ? ' (it holds images: a captioned folder is for training and --retrieval)' : ''}`,
    );
  }
  return folders.sort();
}

/**
 * Reads a folder of class folders. Folders without images are left out (and listed); files that
 * are not images are counted. Fewer than `minClasses` classes, or two classes with the same name,
 * is an error that says what to change.
 *
 * @example
 * ```ts
 * const { images, skipped } = await readImageFolder('flowers/test'); // flowers/test/daisy/*.jpg, …
 * console.log(images.classNames, images.images.length, skipped);
 * ```
 */
export async function readImageFolder(dir: string, options: ReadImageFolderOptions = {}): Promise<ImageFolder> {
  return walkImageFolder(dir, options, newWalk());
}

/** {@link readImageFolder} with the walk's state given (files already seen are left out). @internal */
export async function walkImageFolder(
  dir: string,
  options: ReadImageFolderOptions,
  walk: WalkCounts,
): Promise<ImageFolder> {
  const folders = await classFolders(dir);
  const allNames = namesFor(folders, await classNameSource(dir, options.classNames));
  checkDistinct(folders, allNames, dir);
  const classNames: string[] = [],
    emptyClasses: string[] = [],
    images: string[] = [],
    labels: number[] = [];
  const before = { other: walk.other, duplicates: walk.duplicates, linked: walk.linkedFolders.length };
  for (const [i, folder] of folders.entries()) {
    const files = await imagesUnder(path.join(dir, folder), walk);
    if (files.length === 0) {
      emptyClasses.push(folder);
      continue;
    }
    files.forEach((f) => (images.push(f), labels.push(classNames.length)));
    classNames.push(allNames[i]!);
  }
  const min = options.minClasses ?? 2;
  if (classNames.length < min) {
    const found = classNames.length ? ` (${classNames.map((c) => JSON.stringify(c)).join(', ')})` : '';
    const empty = emptyClasses.length ? `; empty: ${emptyClasses.join(', ')}` : '';
    throw new RilsInputError(
      `Expected at least ${min} class folders with images in ${dir} but found ${classNames.length}${found}${empty}`,
    );
  }
  const names = images.map((f) => path.relative(dir, f));
  return {
    images: { classNames, images, labels: Int32Array.from(labels), names },
    skipped: walk.other - before.other,
    emptyClasses,
    duplicates: walk.duplicates - before.duplicates,
    linkedFolders: walk.linkedFolders.slice(before.linked),
  };
}

/** What a user should know of a folder's walk: empty class folders, links not followed, files read once. */
function walkNotes(folder: ImageFolder, dir: string, train: boolean): string[] {
  const notes = folder.emptyClasses.map((c) => `class folder ${JSON.stringify(c)} in ${dir} holds no image: left out`);
  if (folder.linkedFolders.length) {
    notes.push(
      `${folder.linkedFolders.length} symbolic link(s) to folders inside the class folders of ${dir} not followed (the first: ${folder.linkedFolders[0]})`,
    );
  }
  if (folder.duplicates) {
    notes.push(
      `${folder.duplicates} image file(s) in ${dir} reached again through another link${train ? ', or test images too,' : ''} left out: each file counts once`,
    );
  }
  return notes;
}

async function openLabelled(spec: string, o: OpenLabelledImagesOptions): Promise<LabelledData> {
  const named = o.classNames === undefined ? {} : { classNames: o.classNames };
  const walk = newWalk(); // shared: a training image that is a test image too is left out of the training set
  const data = await walkImageFolder(spec, named, walk);
  const notes = walkNotes(data, spec, false);
  if (o.train === undefined) {
    const fraction = o.testFraction ?? 0.5,
      seed = o.seed ?? 0;
    notes.push(`no training folder: ${spec} is split, ${fraction} of each class for testing (seed ${seed})`);
    const split = splitImageSet(data.images, fraction, seed);
    if (split.train.images.length === 0)
      notes.push(`every class of ${spec} has a single image, which is kept for testing: no training images`);
    return { ...split, skipped: data.skipped, notes };
  }
  const trainFolder = await walkImageFolder(o.train, { ...named, minClasses: 1 }, walk);
  notes.push(...walkNotes(trainFolder, o.train, true));
  const aligned = alignTrainSet(data.images, trainFolder.images);
  if (aligned.extraClasses.length) {
    const [images, classes] =
      aligned.skipped === 1
        ? ['image', 'a class the test set lacks was']
        : ['images', 'classes the test set lacks were'];
    notes.push(`${aligned.skipped} training ${images} of ${classes} left out: ${aligned.extraClasses.join(', ')}`);
  }
  return {
    test: data.images,
    train: aligned.train,
    skipped: data.skipped + trainFolder.skipped + aligned.skipped,
    notes,
  };
}

/** A folder of class folders (torchvision's `ImageFolder`), for classification. */
export const IMAGE_FOLDER_FORMAT: DatasetFormat = {
  name: 'image-folder',
  title: 'a folder of class folders',
  matches: (spec) => !/\.(jsonl|csv)$/i.test(spec),
  fallback: true,
  labelled: openLabelled,
};
