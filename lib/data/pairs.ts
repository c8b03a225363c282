/**
 * Image–caption pairs for retrieval, from any captioned set the training side reads: a folder
 * (`x.jpg` + `x.txt`), a JSONL or CSV index, or WebDataset `.tar` shards (streamed: no shard is
 * held in memory).
 * @module
 */
import { RilsInputError } from '../errors.js';
import type { EvalImage } from '../io/images.js';
import { invalid } from '../validate.js';
import { readCaptionIndex } from './files.js';
import { shardUrls } from './shard-spec.js';
import { shardSamples } from './webdataset.js';

/** One image with one of its captions. */
export interface CaptionedImage {
  /** The image: a path, encoded bytes or pixels. */
  image: EvalImage;
  /** A caption of it. */
  caption: string;
  /** Identifies the image: pairs with the same key are one image with several captions (as in COCO). Default: the path, when `image` is one. */
  key?: string;
}

/** What {@link openCaptionedPairs} opened. */
export interface CaptionedPairs {
  /** The pairs, in the set's order (read as they are consumed, for shards). */
  pairs: AsyncIterable<CaptionedImage>;
  /** The number of distinct images, when known up front (not for shards). */
  images: number | undefined;
  /** Rows or samples without an image or a caption so far (left out). */
  skipped(): number;
}

function fromShards(shards: string[]): CaptionedPairs {
  let skipped = 0;
  async function* pairs(): AsyncGenerator<CaptionedImage> {
    for (const shard of shards) {
      for await (const s of shardSamples(shard)) {
        if (s.image && s.caption) yield { image: s.image, caption: s.caption, key: `${shard}:${s.key}` };
        else skipped++;
      }
    }
  }
  return { pairs: pairs(), images: undefined, skipped: () => skipped };
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
  if (typeof spec !== 'string' || spec.trim() === '') throw invalid('a folder, or a .jsonl, .csv or .tar file', 'the captioned set', spec);
  if (spec === 'mnist') throw new RilsInputError("'mnist' is a labelled set without captions: retrieval needs a folder, JSONL, CSV or .tar shards");
  const shards = shardUrls(spec);
  if (shards) return fromShards(shards);
  const { items, skipped } = await readCaptionIndex(spec);
  async function* pairs(): AsyncGenerator<CaptionedImage> {
    for (const item of items) yield { image: item.image, caption: item.caption, key: item.image };
  }
  return { pairs: pairs(), images: new Set(items.map((i) => i.image)).size, skipped: () => skipped };
}
