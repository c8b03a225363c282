/**
 * Pretrained CLIP checkpoints in the layouts users download (OpenAI/open_clip safetensors, a Hugging
 * Face `CLIPModel` folder, OpenAI's TorchScript archives): the model a checkpoint describes, inferred
 * from its tensors' names and shapes alone (and a Hugging Face config.json), and its tokenizer. The
 * layouts' entries in lib/weights/layouts.ts use these; lib/weights/load.ts loads the weights.
 * @internal
 * @module
 */
import { RilsInputError, RilsWeightsError } from '../errors.js';
import type { Activation, RilsOptions } from '../model/options.js';
import { BUNDLED_CLIP_VOCAB, CLIP_VOCAB_SIZE, ClipTokenizer } from '../tokenizer/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { inferClipConfig } from './clip-config.js';
import { clipParameterNames } from './clip-names.js';
import { hfWordOrByteTokenizer, preprocessorFields } from './hf-files.js';
import type { LoadRequest } from './layouts.js';
import type { Checkpoint } from './open.js';
import { checkCoverage } from './place.js';
import type { Placed } from './place.js';

/** Options of {@link Rils.fromPretrained}: the model's options (overriding what the checkpoint says), and two of its own. */
export interface PretrainedOptions extends RilsOptions {
  /**
   * The MLP activation of both towers. OpenAI/open_clip weights do not say which: OpenAI's models use
   * `'quick_gelu'` (the default), most open_clip models `'gelu'`. A Hugging Face folder's config.json says.
   */
  act?: Activation;
  /**
   * CLIP's BPE vocabulary (`bpe_simple_vocab_16e6.txt.gz`). Default: the copy bundled with rils (a
   * Hugging Face folder's own vocab.json and merges.txt come first).
   */
  vocabPath?: string;
}

/** The placed tensors' shapes as OpenAI's names hold them (whole tensors only), for config inference. */
function openaiShapes(placed: readonly Placed[]): Map<string, number[]> {
  return new Map(
    placed
      .filter((p) => p.to.part === undefined)
      .map((p) => [p.to.name, p.to.transpose ? [...p.tensor.shape].reverse() : p.tensor.shape]),
  );
}

/** A shape with a dimension of 0 would size a model that no byte of the file holds. */
function checkNoEmptyTensor(c: Checkpoint, placed: readonly Placed[]): void {
  const empty = placed.find((p) => p.tensor.shape.includes(0));
  if (empty) {
    throw new RilsWeightsError(
      `${c.where}: '${empty.tensor.name}' has shape [${empty.tensor.shape.join(', ')}]: no weight of CLIP has a dimension of 0`,
    );
  }
}

/**
 * The options of the model a CLIP checkpoint describes: its config inferred from the shapes, a
 * Hugging Face folder's preprocessing, CLIP's loss alone (reconWeight 0) unless asked, and then a new
 * feature decoder as wide as the tower; the request's options over all of it. Every tensor of that
 * model is checked to be there before it is built.
 */
export async function clipModelOptions(
  c: Checkpoint,
  placed: readonly Placed[],
  request: LoadRequest,
): Promise<RilsOptions> {
  checkNoEmptyTensor(c, placed);
  const { options: rest, schedule } = request;
  const config = inferClipConfig(openaiShapes(placed), c.hfConfig, request.act, c.where);
  checkCoverage(
    c,
    placed,
    clipParameterNames(config.visionDepth, config.textLayers).map((name) => ({ name, required: true })),
  );
  // RILS's term needs a feature decoder, which no CLIP checkpoint has: a new one, as wide as the
  // tower (OpenAI's heads of 64), unless told otherwise.
  const depth = rest.decoderDepth ?? ((rest.reconWeight ?? 0) > 0 ? 1 : 0);
  const decoder =
    depth > 0 ? { decoderDepth: depth, decoderWidth: config.visionWidth, decoderHeads: config.visionHeads } : {};
  const preprocess = c.container === 'folder' ? await preprocessorFields(c.path) : {};
  return {
    preset: 'clip_vit_b16',
    seed: 0,
    reconWeight: 0,
    ...schedule,
    ...config,
    ...decoder,
    ...preprocess,
    ...rest,
  };
}

/**
 * The tokenizer of a checkpoint: a Hugging Face folder's own (CLIP's BPE, or the word or byte tokenizer
 * rils wrote there), else CLIP's BPE for a model with CLIP's vocabulary (49408 ids), given or bundled.
 */
export async function clipTokenizer(
  c: Checkpoint,
  options: RilsOptions,
  request: LoadRequest,
): Promise<Tokenizer | undefined> {
  const contextLength = options.contextLength!; // inferred from the file (or the caller's)
  const own = c.container === 'folder' ? await hfWordOrByteTokenizer(c.path, contextLength) : undefined;
  if (own) return own;
  if (c.hfTokenizer) {
    return ClipTokenizer.fromHuggingFace(c.hfTokenizer.vocab, c.hfTokenizer.merges, { contextLength }).catch(
      (error: unknown) => {
        throw error instanceof RilsInputError ? new RilsWeightsError(`${c.where}: ${error.message}`) : error;
      },
    );
  }
  if (options.vocabSize !== CLIP_VOCAB_SIZE && !request.vocabPath) return undefined; // not CLIP's vocabulary: tokens only
  return ClipTokenizer.load(request.vocabPath ?? BUNDLED_CLIP_VOCAB, { contextLength });
}
