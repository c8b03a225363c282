/**
 * Image↔text retrieval on captioned images: recall@k image→text and text→image. Pairs that share
 * an image key are one image with several captions (an image retrieves well when any of its
 * captions ranks high, as in COCO's protocol). Images stream through the encoder in chunks.
 * @module
 */
import type { CaptionedImage } from '../data/dataset.js';
import { RilsInputError } from '../errors.js';
import type { EvalImage } from '../io/images.js';
import type { Rils } from '../rils.js';
import { checkInteger } from '../validate.js';
import { embedImages } from './embed.js';
import type { EmbedProgress, SkippedImage } from './embed.js';
import { retrievalRanks } from './protocols.js';
import { recallAt } from './scores.js';

/** Options of {@link evaluateRetrieval}. */
export interface EvaluateRetrievalOptions {
  /** The k of recall@k. Default `[1, 5, 10]`. */
  ks?: readonly number[];
  /** Images decoded and encoded together. Default 64. */
  chunkSize?: number;
  /** Texts encoded together. Default 256. */
  textChunkSize?: number;
  /** Unreadable images: `'skip'` (default) leaves them and their captions out, `'throw'` stops. */
  onError?: 'skip' | 'throw';
  /** The number of distinct images, for progress, when `pairs` is a stream. */
  images?: number;
  /** Progress of the image encoding. */
  onProgress?: (progress: EmbedProgress) => void;
}

/** What {@link evaluateRetrieval} measured. */
export interface RetrievalResults {
  /** Distinct images evaluated. */
  images: number;
  /** Captions evaluated. */
  texts: number;
  /** k → share of images with one of their captions among the k best texts. */
  imageToText: Record<number, number>;
  /** k → share of captions whose image is among the k best images. */
  textToImage: Record<number, number>;
  /** Median rank (1 = first) of the true match, each way. */
  medianRank: {
    /** Of each image's best-ranked own caption among the captions. */
    imageToText: number;
    /** Of each caption's image among the images. */
    textToImage: number;
  };
  /** Images that could not be decoded (left out with their captions). */
  skipped: SkippedImage[];
  /** Captions left out with their image. */
  skippedTexts: number;
  /** Seconds spent, in all. */
  seconds: number;
  /** Things that qualify the numbers. */
  notes: string[];
}

/** Distinct images in order of first appearance, and per caption the index of its image. */
function distinctImages(pairs: Iterable<CaptionedImage> | AsyncIterable<CaptionedImage>) {
  const captions: string[] = [],
    captionImage: number[] = [];
  const index = new Map<string, number>();
  let count = 0;
  async function* images(): AsyncGenerator<EvalImage> {
    for await (const pair of pairs) {
      if (typeof pair?.caption !== 'string' || pair.caption.trim() === '')
        throw new RilsInputError(
          `Expected a caption for pair ${captions.length} but received ${JSON.stringify(pair?.caption)}`,
        );
      const key = pair.key ?? (typeof pair.image === 'string' ? pair.image : undefined);
      const known = key === undefined ? undefined : index.get(key);
      captions.push(pair.caption);
      if (known !== undefined) {
        captionImage.push(known);
        continue;
      }
      if (key !== undefined) index.set(key, count);
      captionImage.push(count++);
      yield pair.image;
    }
  }
  return { images: images(), captions, captionImage };
}

async function encodeCaptions(model: Rils, captions: readonly string[], chunk: number): Promise<Float32Array> {
  const dim = model.config.embedDim;
  const out = new Float32Array(captions.length * dim);
  for (let i = 0; i < captions.length; i += chunk) {
    const { embeddings } = await model.encodeTexts(captions.slice(i, i + chunk));
    out.set(embeddings, i * dim);
  }
  return out;
}

const median = (ranks: Int32Array) => {
  const sorted = Int32Array.from(ranks).sort();
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! + 1 : NaN;
};

/**
 * Retrieval recall@k both ways over image–caption pairs (an array or a stream, e.g. from
 * {@link openCaptionedPairs}). Memory holds the embeddings and the captions, not the images, and
 * the scores are computed natively a block of rows at a time (never the images × captions matrix).
 *
 * @example
 * ```ts
 * const { pairs, images } = await openCaptionedPairs('val.jsonl');
 * const r = await evaluateRetrieval(model, pairs, { images });
 * console.log(r.imageToText[1], r.textToImage[5]);
 * ```
 */
export async function evaluateRetrieval(
  model: Rils,
  pairs: Iterable<CaptionedImage> | AsyncIterable<CaptionedImage>,
  options: EvaluateRetrievalOptions = {},
): Promise<RetrievalResults> {
  const ks = [...(options.ks ?? [1, 5, 10])];
  ks.forEach((k) => checkInteger(k, 'ks', 1));
  const started = performance.now();
  const distinct = distinctImages(pairs);
  const embedded = await embedImages(model, distinct.images, {
    ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
    onError: options.onError ?? 'skip',
    ...(options.images !== undefined ? { total: options.images } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const row = new Int32Array(embedded.count + embedded.skipped.length).fill(-1); // distinct image → embedding row
  embedded.kept.forEach((image, r) => (row[image] = r));
  const keptTexts = distinct.captionImage.flatMap((image, t) => (row[image]! >= 0 ? [t] : []));
  if (embedded.count < 2 || keptTexts.length < 2) {
    throw new RilsInputError(
      `Expected at least 2 images with captions for retrieval but received ${embedded.count} (${embedded.skipped.length} unreadable)`,
    );
  }
  const texts = await encodeCaptions(
    model,
    keptTexts.map((t) => distinct.captions[t]!),
    checkInteger(options.textChunkSize ?? 256, 'textChunkSize', 1),
  );
  const textImage = Int32Array.from(keptTexts, (t) => row[distinct.captionImage[t]!]!);
  const ranks = await retrievalRanks(embedded.embeddings, texts, textImage, model.config.embedDim);
  const notes = ks.flatMap((k) => [
    ...(k >= keptTexts.length ? [`image→text recall@${k} is 1 by construction (${keptTexts.length} captions)`] : []),
    ...(k >= embedded.count ? [`text→image recall@${k} is 1 by construction (${embedded.count} images)`] : []),
  ]);
  return {
    images: embedded.count,
    texts: keptTexts.length,
    imageToText: recallAt(ranks.imageToText, ks),
    textToImage: recallAt(ranks.textToImage, ks),
    medianRank: { imageToText: median(ranks.imageToText), textToImage: median(ranks.textToImage) },
    skipped: embedded.skipped,
    skippedTexts: distinct.captions.length - keptTexts.length,
    seconds: (performance.now() - started) / 1000,
    notes,
  };
}
