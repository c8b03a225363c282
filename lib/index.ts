/// <reference types="node" preserve="true" />
/**
 * rils: RILS vision-language pre-training (masked visual reconstruction in language semantic
 * space, CVPR 2023) for Node.js, on LibTorch.
 * @module
 */
import { addonChoice, native } from './addon/binding.js';
import type { AddonChoice } from './addon/binding.js';
import { availableParallelism } from 'node:os';

import { fromNative } from './errors.js';
import { checkInteger, invalid } from './validate.js';

export { Rils } from './rils.js';
export type {
  Batch, ClassLogits, EncodeImagesOptions, ImageEncoding, LossStats, ParameterInfo, PatchSemantics, PatchSemanticsOptions,
  TextEncoding, TrainStats,
} from './types.js';
export { ZeroShotClassifier } from './eval/zeroshot.js';
export type { ExportOnnxOptions, OnnxExport } from './export/onnx.js';
export type { Classification, TopK } from './eval/zeroshot.js';
export { BUNDLED_CLIP_VOCAB, ByteTokenizer, ClipTokenizer, WordTokenizer } from './tokenizer/index.js';
export { tokenizerFromSpec, tokenizerSpec } from './tokenizer/index.js';
export type { Tokenizer, TokenizerOptions, TokenizerSpec } from './tokenizer/index.js';
export { CLIP80_TEMPLATES, SLIP7_TEMPLATES } from './eval/templates.js';
export type { Templates } from './eval/templates.js';
export { decodeImage, loadImages, renderHeatmap } from './io/images.js';
export type { EvalImage, ImageSource, LoadImagesOptions, RawImage } from './io/images.js';
export type { ImageTensor, ImagesInput } from './model/inputs.js';
export { accuracy, knnClassify, linearProbeClassify, prototypeClassify, retrievalRecall, sampleShots } from './eval/protocols.js';
export type { LabelledFeatures, RetrievalRecall } from './eval/protocols.js';
export { fit } from './train/fit.js';
export { evaluateClassification } from './eval/classification.js';
export type {
  ClassificationResults, EvaluateClassificationOptions, EvaluatedSet, LinearProbeAccuracy, ProtocolAccuracy, ZeroShotAccuracy,
} from './eval/classification.js';
export type { FewShotResult, ShotAccuracy, SweepPoint } from './eval/probe.js';
export { evaluateRetrieval } from './eval/retrieval.js';
export type { EvaluateRetrievalOptions, RetrievalResults } from './eval/retrieval.js';
export { embedImages } from './eval/embed.js';
export type { EmbedImagesOptions, EmbedProgress, EmbeddedImages, SkippedImage } from './eval/embed.js';
export { confusionPng, patchMaps, writeEvaluationReport } from './report/evaluation.js';
export type { ReportOptions } from './report/evaluation.js';
export { writeReport } from './report/training.js';
export type { ReportContent, ReportImage, ReportRun } from './report/training.js';
export type { FitOptions, FitResult, StepProgress } from './train/fit.js';
export { CaptionedImageSource } from './data/source.js';
export { FileCaptionSource, readCaptionIndex } from './data/files.js';
export type { CaptionIndex, CaptionedFile, FileCaptionSourceOptions, ImageBatchOptions, SkipCounts } from './data/files.js';
export { WebDatasetSource } from './data/webdataset.js';
export type { WebDatasetSourceOptions } from './data/webdataset.js';
export { shardUrls } from './data/shard-spec.js';
export type { ShardReadOptions } from './data/shard-stream.js';
export { openCaptionedPairs, openDataset, openLabelledImages } from './data/formats.js';
export { alignTrainSet, splitImageSet } from './data/labelled.js';
export type { AlignedTrainSet, LabelledData, LabelledImageSet, OpenLabelledImagesOptions } from './data/labelled.js';
export { classNameOf, readImageFolder } from './data/image-folder.js';
export type { ClassNameSource, ImageFolder, ReadImageFolderOptions } from './data/image-folder.js';
export type { CaptionedImage, CaptionedPairs, Dataset, OpenDatasetOptions, Skips, TokenizerFactory } from './data/dataset.js';
export type { BatchSource, CaptionedImageSourceOptions, SourcedBatch } from './data/source.js';
export type { Random } from './data/augment.js'; // what a caption function draws with
export { fineTuningSchedule, presetConfig } from './model/options.js';
export type { Activation, Device, ModelConfig, Precision, PresetName, RilsOptions, TrainingOptions } from './model/options.js';
export type { PretrainedOptions } from './weights/pretrained.js';
export type { SaveLayout } from './weights/layouts.js';
export { distributedFromEnv } from './train/distributed.js';
export type { DistributedInfo, DistributedOptions } from './train/distributed.js';
export {
  RilsDeviceError,
  RilsDistributedError,
  RilsError,
  RilsInputError,
  RilsNativeError,
  RilsStateError,
  RilsWeightsError,
} from './errors.js';
export type { RilsErrorCode } from './errors.js';
export type { AddonChoice } from './addon/binding.js';
export { parseSafetensors, readSafetensors, writeSafetensors } from './io/safetensors.js';
export type { SafetensorsDtype, SafetensorsEntry, SafetensorsFile, TensorToWrite } from './io/safetensors.js';

/** What the loaded addon was built with and can use. */
export interface RuntimeInfo {
  /** LibTorch version the addon was compiled against. */
  libtorchVersion: string;
  /** Whether this build can use a CUDA device. */
  cudaAvailable: boolean;
  /** Visible CUDA devices. */
  cudaDeviceCount: number;
  /** Intra-op threads LibTorch uses. */
  threads: number;
  /** LibTorch's own report (OpenMP, MKL-DNN, thread settings). */
  parallelInfo: string;
  /** Whether this build can train across processes (c10d with Gloo). */
  distributedAvailable: boolean;
  /** Native models not yet freed (by dispose(), or by the GC once unreachable). */
  liveModels: number;
  /** Output arrays still holding native tensor memory (freed when the GC collects them). */
  liveOutputs: number;
  /**
   * Bytes of freed CPU tensor memory the addon keeps for reuse: blocks of 1 MiB or more, handed out
   * again for tensors of their size or up to a fifth smaller (each step allocates the same ones),
   * instead of being unmapped and page-faulted in afresh. Capped at an eighth of the memory
   * (physical, or a container's cgroup limit); a model's `dispose()` returns them all to the system.
   * `RILS_CPU_ALLOCATOR=libtorch` in the environment turns the cache off.
   */
  cachedCpuBytes: number;
  /**
   * Whether `precision: 'bf16'` can run on the CPU: it needs bf16 units (the CPU flags
   * `avx512_bf16` or `amx_bf16`) and an addon built against LibTorch >= 2; `reason` says what is
   * missing ('' when available).
   */
  cpuBf16: {
    /** `precision: 'bf16'` can run on the CPU. */
    available: boolean;
    /** Why it cannot ('' when it can). */
    reason: string;
    /** The CPU has AVX512-BF16 (bf16 dot products). */
    avx512Bf16: boolean;
    /** The CPU has AMX-BF16 (bf16 tile matrix multiplies). */
    amxBf16: boolean;
  };
  /** Which GEMMs the CPU's linear layers and attention end in, in fp32 and bf16, with this addon. */
  cpuGemms: string;
  /** Whether this addon decodes JPEG training crops itself (built with libjpeg-turbo); else sharp does, slower. */
  jpegCrops: boolean;
  /** Which compiled addon was loaded (CUDA or CPU prebuild, or the source build) and why. */
  addon: AddonChoice;
}

/** LibTorch version, CUDA availability and threading. */
export function runtimeInfo(): RuntimeInfo {
  return { ...native.runtimeInfo(), jpegCrops: native.jpegAvailable?.() ?? false, addon: addonChoice };
}

/**
 * Sets LibTorch's intra-op thread count for every model in the process, at most 4 × the cores
 * (OpenMP's busy-waiting teams only get slower beyond). Default: every core.
 */
export function setNumThreads(threads: number): void {
  const cores = availableParallelism();
  checkInteger(threads, 'threads', 1);
  if (threads > 4 * cores) throw invalid(`an integer in [1, ${4 * cores}] (4 × the ${cores} cores)`, 'threads', threads);
  try {
    native.setNumThreads(threads);
  } catch (error) {
    throw fromNative(error);
  }
}
