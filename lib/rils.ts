/**
 * The RILS model: a ViT image encoder and a CLIP text encoder trained together with a contrastive
 * loss plus masked-patch reconstruction in the language space.
 * @module
 */
import path from 'node:path';

import { native } from './addon/binding.js';
import type { NativeModel } from './addon/binding.js';
import { RilsDistributedError, RilsNativeError, RilsStateError, fromNative } from './errors.js';
import { ZeroShotClassifier, indistinctClasses } from './eval/zeroshot.js';
import { fromNativeTrainOptions, toNativeOptions } from './model/native-options.js';
import { fineTuningSchedule, scheduleWarning } from './model/schedule.js';
import type { Device, ModelConfig, PresetName, RilsOptions, TrainingOptions } from './model/options.js';
import { SerialQueue } from './addon/queue.js';
import { camelKeys } from './model/schema.js';
import type { Templates } from './eval/templates.js';
import type {
  Batch,
  ClassLogits,
  EncodeImagesOptions,
  ImageEncoding,
  LossStats,
  ParameterInfo,
  PatchSemantics,
  PatchSemanticsOptions,
  TextEncoding,
  TrainStats,
} from './types.js';
import type { Tokenizer } from './tokenizer/index.js';
import { checkBatch, classPrompts, resolveImages, snapshot, textRows, tokenize } from './model/inputs.js';
import type { ImageTensor, ImagesInput } from './model/inputs.js';
import { checkInteger, checkTypedArray, invalid } from './validate.js';
import { checkAgainstParameters, notRilsWeights, readWeights, weightsMetadata } from './weights/rils.js';
import type { WeightTensor } from './weights/rils.js';
import type { PretrainedOptions } from './weights/pretrained.js';
import { openModel } from './weights/load.js';
import type { TensorLoad } from './weights/load.js';
import { layoutSave } from './weights/layouts.js';
import type { SaveLayout } from './weights/layouts.js';
import { exportOnnx } from './export/onnx.js';
import type { ExportOnnxOptions, OnnxExport } from './export/onnx.js';
import { loadModelCheckpoint, saveModelCheckpoint } from './train/checkpoint.js';
import type { CheckpointSession } from './train/checkpoint.js';
import { allGatherJson, lostPeers } from './train/distributed.js';
import type { DistributedInfo } from './train/distributed.js';

/**
 * A RILS model with its optimiser. All work runs off the JS thread; calls on one model run one at
 * a time, in the order they were made.
 *
 * @example
 * ```ts
 * const model = await Rils.create({ preset: 'micro', vocabSize: 1000, seed: 0 });
 * const stats = await model.trainStep({ images, tokens, batchSize: 8 });
 * console.log(stats.loss, stats.clipAcc, stats.gatedFraction);
 * await model.saveWeights('micro.safetensors');
 * model.dispose();
 * ```
 */
export class Rils {
  #native: NativeModel | null;
  readonly #queue = new SerialQueue();
  readonly #preset: PresetName;
  readonly #onNonFinite: 'skip' | 'throw';
  /** The resolved model fields. */
  readonly config: Readonly<ModelConfig>;
  /** The resolved training options. */
  readonly trainingOptions: Readonly<Required<TrainingOptions>>;
  /** The seed of the parameter init and mask noise. */
  readonly seed: number;
  /** Where the model runs, e.g. `'cpu'` or `'cuda:0'`. */
  readonly device: Device;
  /** The towers' arithmetic in effect ({@link RilsOptions.precision}, `'auto'` resolved). */
  readonly precision: 'fp32' | 'bf16';
  /** The tokenizer used when texts are given as strings (from {@link RilsOptions.tokenizer}). */
  readonly tokenizer: Tokenizer | undefined;
  /** This model's place in a data-parallel job ({@link RilsOptions.distributed}), if any. */
  readonly distributed: DistributedInfo | undefined;

  private constructor(
    handle: NativeModel,
    preset: PresetName,
    seed: number,
    tokenizer: Tokenizer | undefined,
    onNonFinite: 'skip' | 'throw',
  ) {
    this.#native = handle;
    this.#onNonFinite = onNonFinite;
    this.tokenizer = tokenizer;
    this.#preset = preset;
    const info = handle.info();
    this.config = Object.freeze(camelKeys<ModelConfig>(info.config));
    this.trainingOptions = Object.freeze(fromNativeTrainOptions(info.train));
    this.seed = seed;
    this.device = info.device as Device;
    this.precision = info.precision;
    this.distributed = info.distributed;
  }

  /**
   * Builds a model from a preset and overrides. The same seed gives the same initial weights as
   * the PyTorch reference (`rils_ref.py init --seed`).
   */
  static async create(options: RilsOptions = {}): Promise<Rils> {
    const { tokenizer, onNonFinite, ...o } = toNativeOptions(options);
    const warning = scheduleWarning({
      warmupSteps: Number(o.train.warmup_steps ?? 0),
      totalSteps: Number(o.train.total_steps ?? 0),
    });
    if (warning) process.emitWarning(warning, { code: 'RILS_SCHEDULE' });
    try {
      return new Rils(await native.createModel(o), o.preset, o.seed, tokenizer, onNonFinite);
    } catch (error) {
      throw fromNative(error);
    }
  }

  /**
   * A model built from a weight file's metadata (config, training options, tokenizer) with its
   * weights loaded: files written by {@link saveWeights} or the PyTorch reference.
   * `options` override what the file says (e.g. `device`, or a `tokenizer`). The metadata is checked
   * against the tensors before the model is built; the weights stream in, 64 MB of file at a time.
   */
  static async fromWeights(path: string, options: RilsOptions & { clipVocabPath?: string } = {}): Promise<Rils> {
    if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
    const { clipVocabPath, ...rest } = options;
    return openModel(
      path,
      { options: rest, schedule: {}, vocabPath: clipVocabPath },
      (o) => Rils.create(o),
      notRilsWeights,
    );
  }

  /**
   * A model from a pretrained CLIP checkpoint, in any of the layouts users download: OpenAI/open_clip
   * safetensors (`open_clip_model.safetensors`), a Hugging Face `CLIPModel` folder (model.safetensors,
   * config.json, and its tokenizer files when there), or OpenAI's TorchScript `.pt` (what `clip.load`
   * downloads; fp16 tensors are cast to fp32). rils's own weight files load too ({@link fromWeights}).
   * The config is inferred from the tensors' shapes (and config.json); `options` override it (e.g.
   * `device`, `visionHeads`). The tokenizer is CLIP's BPE (bundled; a Hugging Face folder's own
   * vocab.json and merges.txt first). Any tensor missing, misshapen or unknown rejects with a
   * {@link RilsWeightsError} naming it and the layout the file was read as.
   *
   * Training starts from a fine-tuning schedule, not pre-training's: {@link fineTuningSchedule} of
   * your `totalSteps` (lr 1e-5, weight decay 0.1, warmup over the first 10% of the steps, cosine to
   * 0), and on a CLIP checkpoint the CLIP loss alone (`reconWeight` 0); `reconWeight > 0` adds RILS's
   * reconstruction term through a new feature decoder (`decoderDepth` 1 unless you say otherwise).
   *
   * @example
   * ```ts
   * const model = await Rils.fromPretrained('ViT-B-16.pt');
   * const classifier = await model.zeroShotClassifier(['cat', 'dog'], { templates: 'clip80' });
   * const tuned = await Rils.fromPretrained('ViT-B-16.pt', { totalSteps: 1000 }); // then fit(tuned, source, { steps: 1000 })
   * ```
   */
  static async fromPretrained(path: string, options: PretrainedOptions = {}): Promise<Rils> {
    if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
    const { act, vocabPath, ...rest } = options;
    const schedule = fineTuningSchedule(rest.totalSteps ?? 0);
    return openModel(path, { options: rest, schedule, act, vocabPath }, (o) => Rils.create(o));
  }

  /** Number of patches per image, N = (imageSize / patchSize)². */
  get numPatches(): number {
    return (this.config.imageSize / this.config.patchSize) ** 2;
  }

  /** Optimizer steps done so far. */
  get step(): number {
    return this.#handle().info().step;
  }

  /** Whether {@link dispose} was called. */
  get disposed(): boolean {
    return this.#native === null;
  }

  /** A weight file's tensors into parameters, cast to fp32 (lib/weights/load.ts). @internal */
  loadTensors(entries: TensorLoad[]): Promise<void> {
    return this.#run((m) => m.loadTensors(entries));
  }

  /** Every parameter tensor, in the official state_dict order. */
  parameters(): ParameterInfo[] {
    return this.#handle().parameters();
  }

  /**
   * One training step on a batch: forward both branches, RILS loss, backward, and (every
   * `accumulationSteps` calls) an AdamW update with the scheduled lr and the logit-scale clamp.
   */
  async trainStep(batch: Batch): Promise<TrainStats> {
    this.#handle();
    const b = checkBatch(this.config, batch);
    const stats = camelKeys<TrainStats>(await this.#run((m) => m.trainStep(b)));
    if (stats.nonFinite && this.#onNonFinite === 'throw') {
      throw new RilsNativeError(
        `Step ${stats.step + 1}: the loss (${stats.loss}) or the gradient norm (${stats.gradNorm}) is not finite; ` +
          'the update was skipped and the weights are unchanged (lower the lr, or clip gradients with gradClipNorm)',
      );
    }
    return stats;
  }

  /** The loss of a batch without any gradient or update. */
  async evaluateLoss(batch: Batch): Promise<LossStats> {
    this.#handle();
    const b = checkBatch(this.config, batch);
    const { gradNorm, updated, nonFinite, ...stats } = camelKeys<TrainStats>(await this.#run((m) => m.evaluateLoss(b)));
    return stats;
  }

  /**
   * Image embeddings: the pooled embedding (mean of the final patch tokens, cls excluded, through
   * the image projection), and on request the patch tokens, the cls token and the projected patch
   * features. Inference only (no autograd state). Outputs are zero-copy views of native tensors
   * and stay valid after {@link dispose}.
   *
   * @example
   * ```ts
   * const { embeddings } = await model.encodeImages(['cat.jpg', 'dog.png']); // [2, embedDim], unit norm
   * ```
   */
  async encodeImages(images: ImagesInput, options: EncodeImagesOptions = {}): Promise<ImageEncoding> {
    const [input, out] = await this.#runWithImages(images, (m, input) =>
      m.encodeImages({
        ...input,
        normalize: options.normalize ?? true,
        patchTokens: options.patchTokens ?? false,
        clsToken: options.clsToken ?? false,
        patchEmbeddings: options.patchEmbeddings ?? false,
      }),
    );
    const result: ImageEncoding = { batchSize: input.batchSize, embeddings: new Float32Array(out.embeddings!) };
    if (out.patchTokens) result.patchTokens = new Float32Array(out.patchTokens);
    if (out.clsToken) result.clsToken = new Float32Array(out.clsToken);
    if (out.patchEmbeddings) result.patchEmbeddings = new Float32Array(out.patchEmbeddings);
    return result;
  }

  /**
   * Text embeddings `[n, embedDim]` (EOT features through the text projection), L2-normalised
   * unless `normalize: false`. Strings need a tokenizer; token rows are used as they are.
   */
  async encodeTexts(
    texts: readonly string[] | { tokens: Int32Array; batchSize: number },
    options: { normalize?: boolean; tokenizer?: Tokenizer } = {},
  ): Promise<TextEncoding> {
    this.#handle();
    const { tokens, batchSize } = textRows(this.config, options.tokenizer ?? this.tokenizer, texts);
    const out = await this.#run((m) => m.encodeTexts({ tokens, batchSize, normalize: options.normalize ?? true }));
    return { batchSize, embeddings: new Float32Array(out.embeddings!) };
  }

  /**
   * A zero-shot classifier over `classNames`: per class, every template filled with the name is
   * embedded and L2-normalised, the mean re-normalised (spec §4).
   *
   * @example
   * ```ts
   * const classifier = await model.zeroShotClassifier(['cat', 'dog'], { templates: 'slip7' });
   * const { top } = await classifier.classify(['pet.jpg'], { topK: 1 });
   * console.log(top[0].labels[0], top[0].probabilities[0]);
   * ```
   */
  async zeroShotClassifier(
    classNames: readonly string[],
    options: { templates?: Templates; tokenizer?: Tokenizer } = {},
  ): Promise<ZeroShotClassifier> {
    this.#handle();
    const tokenizer = options.tokenizer ?? this.tokenizer;
    const prompts = classPrompts(this.config, tokenizer, classNames, options.templates);
    const warning = indistinctClasses(classNames, prompts, tokenizer!);
    if (warning) process.emitWarning(warning, { code: 'RILS_ZEROSHOT' });
    const out = await this.#run((m) => m.classEmbeddings(prompts));
    return new ZeroShotClassifier(this, [...classNames], new Float32Array(out.weights!));
  }

  /**
   * Zero-shot logits and probabilities of images against unit-norm class embeddings
   * `[numClasses, embedDim]` (what {@link ZeroShotClassifier} uses); logits are
   * exp(logit_scale) × cosine.
   */
  async classLogits(images: ImagesInput, classWeights: Float32Array, numClasses: number): Promise<ClassLogits> {
    this.#handle();
    const C = checkInteger(numClasses, 'numClasses', 1);
    const weights = snapshot(
      checkTypedArray(
        classWeights,
        [Float32Array],
        C * this.config.embedDim,
        `classWeights ([${C}, ${this.config.embedDim}])`,
      ),
    );
    const [input, out] = await this.#runWithImages(images, (m, input) =>
      m.zeroShot({ ...input, classWeights: weights, numClasses: C }),
    );
    return {
      batchSize: input.batchSize,
      logits: new Float32Array(out.logits!),
      probabilities: new Float32Array(out.probabilities!),
    };
  }

  /**
   * RILS's language-semantic view of the patches: for each image patch, a probability
   * distribution over the given texts (softmax of cosine / temperature). With `templates`, the
   * texts are class names expanded like {@link zeroShotClassifier}.
   */
  async patchSemantics(
    images: ImagesInput,
    texts: readonly string[],
    options: PatchSemanticsOptions = {},
  ): Promise<PatchSemantics> {
    this.#handle();
    const temperature = options.temperature ?? this.trainingOptions.tauTeacher;
    if (!(typeof temperature === 'number' && temperature > 0 && Number.isFinite(temperature))) {
      throw invalid('a number > 0', 'temperature', temperature);
    }
    // The texts are embedded in the same queued call, so it runs in submission order as one unit.
    const prompts = options.templates
      ? classPrompts(this.config, options.tokenizer ?? this.tokenizer, texts, options.templates)
      : undefined;
    const tokens = prompts ? undefined : tokenize(this.config, options.tokenizer ?? this.tokenizer, texts, 'texts');
    const embedTexts = async (m: NativeModel) =>
      prompts
        ? (await m.classEmbeddings(prompts)).weights!
        : (await m.encodeTexts({ tokens: tokens!, batchSize: texts.length, normalize: true })).embeddings!;
    const [input, out] = await this.#runWithImages(images, async (m, input) =>
      m.patchSemantics({
        ...input,
        textEmbeddings: new Float32Array(await embedTexts(m)),
        numTexts: texts.length,
        temperature,
      }),
    );
    return {
      batchSize: input.batchSize,
      gridSize: this.config.imageSize / this.config.patchSize,
      labels: [...texts],
      probabilities: new Float32Array(out.probabilities!),
    };
  }

  /**
   * Writes every parameter (F32, official names, the frozen sin-cos tables included) to a
   * safetensors file, atomically, with metadata that lets {@link fromWeights} and the PyTorch
   * reference load it without flags (`layout: 'rils'`, the default). A CLIP model can also be
   * written as OpenAI/open_clip safetensors (`'openai'`: what clip_ref.py and open_clip load; a
   * feature decoder rils added is left out) or as a Hugging Face `CLIPModel` folder (`'hf'`: `path`
   * is the folder; model.safetensors, config.json, preprocessor_config.json and the tokenizer's files,
   * which {@link fromPretrained} reads back).
   */
  async saveWeights(path: string, options: { layout?: SaveLayout } = {}): Promise<void> {
    if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
    const save = layoutSave(options.layout ?? 'rils');
    const state = await this.#run((m) => m.getState());
    await save.write(path, { state, ...this.#description() });
  }

  /**
   * Exports the model to ONNX as a folder that onnxruntime and transformers.js load as it is:
   * `onnx/vision_model.onnx` (`pixel_values` → `image_embeds`, not normalised), `onnx/text_model.onnx`
   * (`input_ids` → `text_embeds`), `onnx/model.onnx` (both, with CLIPModel's logits, for the
   * zero-shot pipeline), config.json, preprocessor_config.json and the tokenizer's files. Any vision
   * tower: CLIP's, or RILS's (no masking at inference). Options are checked and nothing is written
   * before they pass; the folder is written aside, then renamed into place.
   *
   * @example
   * ```ts
   * await model.exportOnnx('my-model');
   * // transformers.js: env.localModelPath = '.'; await pipeline('zero-shot-image-classification', 'my-model')
   * ```
   * @throws {@link RilsInputError} for a bad option, a folder that is not empty (without `force`) or
   *   a tokenizer Hugging Face's format cannot describe.
   */
  async exportOnnx(dir: string, options: ExportOnnxOptions = {}): Promise<OnnxExport> {
    this.#handle();
    return exportOnnx(dir, options, {
      config: this.config,
      tokenizer: this.tokenizer,
      state: () => this.#run((m) => m.getState()),
    });
  }

  /**
   * Saves everything needed to continue training exactly: weights, AdamW moments, the step (hence
   * the schedule), the mask-noise generator, and `extra` (your JSON state, e.g. the data position).
   * Written atomically (temporary file, fsync, rename): a crash never leaves a broken file behind.
   * Only between optimizer steps, not in the middle of gradient accumulation.
   */
  async saveCheckpoint(path: string, extra?: unknown): Promise<void> {
    if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
    await saveModelCheckpoint(this.#session(), path, extra, weightsMetadata(this.#description()));
  }

  /**
   * Restores a checkpoint of {@link saveCheckpoint} (verified against its checksum) and returns its
   * `extra` state. On any problem nothing is changed and a {@link RilsWeightsError} says why.
   */
  async loadCheckpoint(path: string): Promise<unknown> {
    if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
    this.#handle();
    return loadModelCheckpoint(this.#session(), path, this.parameters());
  }

  /**
   * Loads weights saved by {@link saveWeights} or by the PyTorch reference. The names and shapes
   * must be this model's; on any mismatch nothing is changed and a {@link RilsWeightsError} says why.
   * The optimiser state is kept.
   */
  async loadWeights(path: string): Promise<void> {
    if (typeof path !== 'string' || path === '') throw invalid('a file path', 'path', path);
    this.#handle();
    const { tensors } = await readWeights(path);
    checkAgainstParameters(path, tensors, this.parameters());
    await this.setWeights(tensors);
  }

  /** Every parameter from F32 tensors of its names and shapes, all or nothing ({@link loadWeights}). @internal */
  setWeights(tensors: WeightTensor[]): Promise<void> {
    return this.#run((m) => m.setState(tensors));
  }

  /**
   * Every rank's `value` (JSON), in rank order: a collective of a data-parallel job, so every rank
   * calls it at the same point of its sequence of calls. In a single process, `[value]`.
   */
  async allGatherJson(value: unknown): Promise<unknown[]> {
    return this.#run((m) => allGatherJson(m, value));
  }

  /**
   * Runs `fn` with LibTorch's operator profiler on this model's calls (the ones `fn` makes, and any
   * other call of this model in between) and writes what it recorded, when `fn` settles, as a
   * Chrome trace: one event per operator with its duration, for chrome://tracing or Perfetto. The
   * fused CPU kernels appear as `rils::linear`, `rils::attention`, `rils::activation` and
   * `rils::layer_norm` in the forward, and as their autograd nodes in the backward.
   * `node --import tsx bench/profile.ts` sums a trace by operator.
   *
   * @example
   * ```ts
   * await model.profile('step.json', () => model.trainStep(batch));
   * ```
   * @throws {@link RilsStateError} if this model is already being profiled;
   *   {@link RilsInputError} if `file` cannot be written.
   */
  async profile<T>(file: string, fn: () => Promise<T>): Promise<T> {
    if (typeof file !== 'string' || file === '') throw invalid('a file path', 'the profile', file);
    await this.#run((m) => m.startProfile(path.resolve(file)));
    try {
      return await fn();
    } finally {
      if (!this.disposed) await this.#run((m) => m.stopProfile());
    }
  }

  /**
   * Frees the native memory. Calls already queued reject with a {@link RilsStateError}; a call
   * already running finishes first. A profile still running is written first.
   */
  dispose(): void {
    this.#queue.close('This model was disposed; create a new one with Rils.create()');
    this.#native?.dispose();
    this.#native = null;
  }

  /** `await using model = await Rils.create(...)` disposes at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }

  /** What lib/train/checkpoint.ts needs to save and restore this model: its queue and its place in a job. */
  #session(): CheckpointSession {
    return { run: (task) => this.#run(task), distributed: this.distributed };
  }

  #description() {
    return {
      preset: this.#preset,
      config: this.config,
      trainingOptions: this.trainingOptions,
      tokenizer: this.tokenizer,
    };
  }

  #handle(): NativeModel {
    if (!this.#native) throw new RilsStateError('This model was disposed; create a new one with Rils.create()');
    return this.#native;
  }

  /**
   * Queues `task` now (so calls run in submission order) while the images are decoded; the task
   * gets them when its turn comes.
   */
  #runWithImages<T>(
    images: ImagesInput,
    task: (m: NativeModel, input: ImageTensor) => Promise<T>,
  ): Promise<[ImageTensor, T]> {
    this.#handle();
    const input = resolveImages(this.config, images);
    input.catch(() => undefined); // rejections surface through the task below
    return this.#run(async (m) => {
      const resolved = await input;
      return [resolved, await task(m, resolved)] as [ImageTensor, T];
    });
  }

  #run<T>(task: (m: NativeModel) => Promise<T>): Promise<T> {
    this.#handle();
    return this.#queue.run(async () => {
      try {
        return await task(this.#handle());
      } catch (error) {
        const e = fromNative(error);
        const lost = e instanceof RilsDistributedError && this.distributed ? await lostPeers(this.distributed) : [];
        throw lost.length ? new RilsDistributedError(`${e.message}; gone from this machine: ${lost.join(', ')}`) : e;
      }
    });
  }
}
