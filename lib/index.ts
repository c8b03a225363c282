/// <reference types="node" preserve="true" />
/**
 * rils: RILS vision-language pre-training (masked visual reconstruction in language semantic
 * space, CVPR 2023) for Node.js, on LibTorch.
 * @module
 */
export { Rils } from './rils.js';
export type {
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
export {
  accuracy,
  knnClassify,
  linearProbeClassify,
  prototypeClassify,
  retrievalRecall,
  sampleShots,
} from './eval/protocols.js';
export type { LabelledFeatures, RetrievalRecall } from './eval/protocols.js';
export { fit } from './train/fit.js';
export { evaluateClassification } from './eval/classification.js';
export type {
  ClassificationResults,
  EvaluateClassificationOptions,
  EvaluatedSet,
  LinearProbeAccuracy,
  ProtocolAccuracy,
  ZeroShotAccuracy,
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
export type {
  CaptionIndex,
  CaptionedFile,
  FileCaptionSourceOptions,
  ImageBatchOptions,
  SkipCounts,
} from './data/files.js';
export { WebDatasetSource } from './data/webdataset.js';
export type { WebDatasetSourceOptions } from './data/webdataset.js';
export { shardUrls } from './data/shard-spec.js';
export type { ShardReadOptions } from './data/shard-stream.js';
export { openCaptionedPairs, openDataset, openLabelledImages } from './data/formats.js';
export { alignTrainSet, splitImageSet } from './data/labelled.js';
export type { AlignedTrainSet, LabelledData, LabelledImageSet, OpenLabelledImagesOptions } from './data/labelled.js';
export { classNameOf, readImageFolder } from './data/image-folder.js';
export type { ClassNameSource, ImageFolder, ReadImageFolderOptions } from './data/image-folder.js';
export type {
  CaptionedImage,
  CaptionedPairs,
  Dataset,
  OpenDatasetOptions,
  Skips,
  TokenizerFactory,
} from './data/dataset.js';
export type { BatchSource, CaptionedImageSourceOptions, SourcedBatch } from './data/source.js';
export type { Random } from './data/augment.js'; // what a caption function draws with
export { presetConfig } from './model/options.js';
export { fineTuningSchedule } from './model/schedule.js';
export type {
  Activation,
  Device,
  ModelConfig,
  Precision,
  PresetName,
  RilsOptions,
  TrainingOptions,
} from './model/options.js';
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
export { runtimeInfo, setNumThreads } from './addon/runtime.js';
export type { RuntimeInfo } from './addon/runtime.js';
