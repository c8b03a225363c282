/**
 * Every dataset format rils reads, in one list: the name a spec string resolves to, and what the
 * format can open (training batches, image–caption pairs for retrieval, labelled images for
 * classification). `openDataset`, `openCaptionedPairs` and `openLabelledImages` (and so every
 * command's `--data`) resolve a spec here; a new format is a module with a {@link DatasetFormat}
 * and a line in {@link FORMATS}.
 * @module
 */
import { RilsInputError } from '../errors.js';
import { checkInteger, invalid } from '../validate.js';
import type { CaptionedPairs, Dataset, OpenDatasetOptions, Share } from './dataset.js';
import { CAPTION_INDEX_FORMAT } from './files.js';
import { IMAGE_FOLDER_FORMAT } from './image-folder.js';
import type { LabelledData, OpenLabelledImagesOptions } from './labelled.js';
import { MNIST_FORMAT } from './mnist.js';
import { WEBDATASET_FORMAT } from './webdataset.js';

/** A dataset format: how a spec names it, and what it opens. */
export interface DatasetFormat {
  /** Its name (a training {@link Dataset}'s `kind`). */
  name: string;
  /** What it is, for messages: "WebDataset shards", "a caption index (folder, JSONL or CSV)". */
  title: string;
  /** Whether `spec` names a set of this format. Formats are asked in {@link FORMATS}' order. */
  matches(spec: string): boolean;
  /** A plain path on disk: asked only when no other format matches (a folder may be one of several). */
  fallback?: boolean;
  /** Training batches of this process's share. */
  training?(spec: string, options: OpenDatasetOptions, share: Share): Promise<Dataset>;
  /** Image–caption pairs, for retrieval. */
  pairs?(spec: string): Promise<CaptionedPairs>;
  /** Labelled images, for classification. */
  labelled?(spec: string, options: OpenLabelledImagesOptions): Promise<LabelledData>;
}

/** What a dataset is opened for. */
type Purpose = 'training' | 'pairs' | 'labelled';

const PURPOSE: Readonly<Record<Purpose, string>> = {
  training: 'training',
  pairs: 'retrieval',
  labelled: 'classification',
};

/** The formats, in the order a spec is matched: the first that matches and serves the purpose opens it. */
export const FORMATS: readonly DatasetFormat[] = [
  MNIST_FORMAT,
  WEBDATASET_FORMAT,
  CAPTION_INDEX_FORMAT,
  IMAGE_FOLDER_FORMAT,
];

/** The formats that serve `purpose`, for messages. */
const serving = (purpose: Purpose) =>
  FORMATS.filter((f) => f[purpose])
    .map((f) => f.title)
    .join(', or ');

/** The format that opens `spec` for `purpose`, or a RilsInputError saying which formats do. */
export function resolveFormat<P extends Purpose>(
  spec: unknown,
  purpose: P,
): DatasetFormat & Required<Pick<DatasetFormat, P>> {
  if (typeof spec !== 'string' || spec.trim() === '')
    throw invalid(serving(purpose), `the dataset for ${PURPOSE[purpose]}`, spec);
  const claimed = FORMATS.filter((f) => !f.fallback && f.matches(spec));
  const matching = claimed.length ? claimed : FORMATS.filter((f) => f.fallback && f.matches(spec));
  const format = matching.find((f) => f[purpose]);
  if (format) return format as DatasetFormat & Required<Pick<DatasetFormat, P>>;
  const named = matching[0]
    ? `${JSON.stringify(spec)} is ${matching[0].title}`
    : `${JSON.stringify(spec)} names no dataset rils reads`;
  throw new RilsInputError(`${named}: ${PURPOSE[purpose]} needs ${serving(purpose)}`);
}

/**
 * Opens the dataset `spec` names for training: `'mnist'`, a folder, a `.jsonl` or `.csv` index, or
 * WebDataset shards (`data/{00000..00127}.tar`, `https://host/cc12m-{00000..01242}.tar`,
 * `pipe:aws s3 cp s3://bucket/{0000..0099}.tar -`, several joined with `::`). With `worldSize` > 1,
 * this rank reads every `worldSize`-th example (shards for WebDataset, unless resampled) starting at its rank.
 *
 * @example
 * ```ts
 * const { source, tokenizer } = await openDataset('captions.jsonl', {
 *   tokenizer: (captions) => WordTokenizer.fromTexts(captions(), { contextLength: 16 }), batchSize: 64, seed: 0, size: 32,
 * });
 * ```
 */
export async function openDataset(spec: string, options: OpenDatasetOptions): Promise<Dataset> {
  const format = resolveFormat(spec, 'training');
  const worldSize = checkInteger(options.worldSize ?? 1, 'worldSize', 1);
  const rank = checkInteger(options.rank ?? 0, 'rank', 0);
  if (rank >= worldSize) throw invalid(`an integer < worldSize (${worldSize})`, 'rank', rank);
  return format.training(spec, options, { rank, worldSize });
}

/**
 * Opens a captioned set for retrieval: a folder, a `.jsonl` or `.csv` index (rows without an image
 * or a caption are skipped and counted), or WebDataset shards (local, `http(s)://`, `pipe:`; braces and `::` lists as for training).
 *
 * @example
 * ```ts
 * const { pairs } = await openCaptionedPairs('coco-val.jsonl');
 * const r = await evaluateRetrieval(model, pairs);
 * ```
 */
export async function openCaptionedPairs(spec: string): Promise<CaptionedPairs> {
  return resolveFormat(spec, 'pairs').pairs(spec);
}

/**
 * Opens labelled images for evaluation: `'mnist'` (the built-in digits: 8 000 training, 2 000 test)
 * or a folder with one subfolder per class, with a separate training folder or a seeded split.
 *
 * @example
 * ```ts
 * const { test, train, notes } = await openLabelledImages('pets/val', { train: 'pets/train' });
 * ```
 */
export async function openLabelledImages(spec: string, options: OpenLabelledImagesOptions = {}): Promise<LabelledData> {
  return resolveFormat(spec, 'labelled').labelled(spec, options);
}
