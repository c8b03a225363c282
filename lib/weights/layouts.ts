/**
 * Every weight layout rils reads or writes, each declared once: how a file in it is recognised,
 * where its tensors go among the model's parameters, which model it describes, its tokenizer, and
 * how a model is written in it (for the layouts rils writes). lib/weights/load.ts reads every layout
 * through this table; {@link Rils.saveWeights}, `rils convert` and `rils train --layout` take their
 * choices from it. A new layout is one entry here (and a module of its own for its names or files).
 * @internal
 * @module
 */
import { RilsWeightsError } from '../errors.js';
import type { Activation, RilsOptions, TrainingOptions } from '../model/options.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { invalid } from '../validate.js';
import { fromHfName } from './clip-names.js';
import type { NamePlacement } from './clip-names.js';
import { writeHfLayout, writeOpenaiLayout } from './clip-save.js';
import type { Checkpoint, OpenedFile } from './open.js';
import type { Placed } from './place.js';
import { clipModelOptions, clipTokenizer } from './pretrained.js';
import { WEIGHTS_FORMAT, rilsModelOptions, rilsTokenizer, writeWeights } from './rils.js';
import type { ModelDescription } from './rils.js';

/** What the caller of {@link Rils.fromWeights} or {@link Rils.fromPretrained} gives. */
export interface LoadRequest {
  /** The caller's model options: over everything the file says. */
  options: RilsOptions;
  /** Training options over the file's own, under the caller's (fromPretrained's fine-tuning schedule). */
  schedule: TrainingOptions;
  /** Both towers' activation, for the layouts whose files do not say. */
  act?: Activation | undefined;
  /** CLIP's BPE vocabulary (default: the copy bundled with rils). */
  vocabPath?: string | undefined;
}

/** A parameter as the model hands it over. */
export interface SavedTensor {
  name: string;
  shape: number[];
  data: ArrayBuffer;
}

/** What a layout's writer gets of a model: its parameters and what describes it. */
export interface SavedModel extends ModelDescription {
  state: readonly SavedTensor[];
}

/** How a model is written in a layout. */
export interface LayoutSave {
  /** Whether the path written is a folder. */
  folder: boolean;
  /** What `rils convert` says it wrote. */
  output: string;
  /** Writes the model at `path` (each file atomically). */
  write(path: string, model: SavedModel): Promise<void>;
}

/** One weight layout. */
export interface WeightLayout {
  /** What a file in it is, for errors ("read as …") and `--help`. */
  description: string;
  /** The file names its layout itself (rils's `format` metadata): errors name the file alone. */
  declared: boolean;
  /** Whether an opened file is in this layout (the first layout of the table that says so wins). */
  detect(file: OpenedFile): boolean;
  /** Where a tensor of the file goes among the model's parameters (undefined: nowhere). */
  place(name: string): NamePlacement | undefined;
  /** The file holds every parameter, the feature decoder included; else the decoder is new. */
  holdsDecoder: boolean;
  /** The options of the model the file describes, checked against its tensors, the caller's over them. */
  config(c: Checkpoint, placed: readonly Placed[], request: LoadRequest): Promise<RilsOptions>;
  /** The tokenizer the file gives (when the caller gives none). */
  tokenizer(c: Checkpoint, options: RilsOptions, request: LoadRequest): Promise<Tokenizer | undefined>;
  /** How a model is written in this layout; absent for the layouts rils only reads. */
  save?: LayoutSave;
}

const identity = (name: string): NamePlacement => ({ name });
const hasHfNames = (f: OpenedFile) =>
  f.tensors.some((t) => t.name.startsWith('text_model.') || t.name.startsWith('vision_model.'));

/** Every layout, in the order detection tries them: rils's declared format before the layouts guessed from names. */
export const LAYOUTS = {
  rils: {
    description: "rils's own weights",
    declared: true,
    holdsDecoder: true,
    detect: (f) => f.container === 'safetensors' && f.metadata.format === WEIGHTS_FORMAT,
    place: identity,
    config: rilsModelOptions,
    tokenizer: rilsTokenizer,
    save: { folder: false, output: 'rils weights', write: writeWeights },
  },
  openai: {
    description: 'OpenAI/open_clip CLIP safetensors',
    declared: false,
    holdsDecoder: false,
    detect: (f) => f.container === 'safetensors' && !hasHfNames(f),
    place: identity,
    config: clipModelOptions,
    tokenizer: clipTokenizer,
    save: { folder: false, output: 'openai weights', write: writeOpenaiLayout },
  },
  hf: {
    description: 'a Hugging Face CLIPModel',
    declared: false,
    holdsDecoder: false,
    detect: (f) => f.container === 'folder' || hasHfNames(f),
    place: fromHfName,
    config: clipModelOptions,
    tokenizer: clipTokenizer,
    save: { folder: true, output: 'a Hugging Face folder', write: writeHfLayout },
  },
  torchscript: {
    description: "a TorchScript archive (OpenAI's clip.load)",
    declared: false,
    holdsDecoder: false,
    detect: (f) => f.container === 'zip',
    place: identity,
    config: clipModelOptions,
    tokenizer: clipTokenizer,
  },
} satisfies Readonly<Record<string, WeightLayout>>;

/** How a checkpoint lays out its tensors. */
export type Layout = keyof typeof LAYOUTS;

/** The layouts rils writes ({@link Rils.saveWeights}'s `layout`): the registry's entries with a writer. */
export type SaveLayout = 'rils' | 'openai' | 'hf';

/** The registry's layouts with a writer: {@link SaveLayout} spelled out for the docs, and this keeps the two one. */
type Writable = { [L in Layout]: (typeof LAYOUTS)[L] extends { save: LayoutSave } ? L : never }[Layout];
const _saveLayoutIsTheRegistrys: [SaveLayout, Writable] extends [Writable, SaveLayout] ? true : never = true;

const layoutOf = (name: Layout): WeightLayout => LAYOUTS[name];

/** Every {@link SaveLayout}, in the table's order. @internal */
export const SAVE_LAYOUTS: readonly SaveLayout[] = (Object.keys(LAYOUTS) as Layout[]).filter(
  (name): name is SaveLayout => layoutOf(name).save !== undefined,
);

/** The layout of an opened file: the first of the table whose `detect` says so. */
export function detectLayout(file: OpenedFile): Layout {
  const found = (Object.keys(LAYOUTS) as Layout[]).find((name) => layoutOf(name).detect(file));
  if (!found) throw new RilsWeightsError(`${file.path} is in no layout rils reads`); // unreachable: openai takes any safetensors file
  return found;
}

/** "FILE (read as LAYOUT)" for a layout guessed from the file, FILE alone for one it declares. */
export function whereOf(file: string, layout: Layout): string {
  const l = layoutOf(layout);
  return l.declared ? file : `${file} (read as ${l.description})`;
}

/** The writer of a layout rils saves in; a RilsInputError for any other value. */
export function layoutSave(layout: unknown): LayoutSave {
  const save = SAVE_LAYOUTS.includes(layout as SaveLayout) ? layoutOf(layout as SaveLayout).save : undefined;
  if (!save)
    throw invalid(
      SAVE_LAYOUTS.map((l) => `'${l}'`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1'),
      'layout',
      layout,
    );
  return save;
}

/** The layouts rils writes as a folder. @internal */
export const FOLDER_LAYOUTS: readonly SaveLayout[] = SAVE_LAYOUTS.filter((l) => LAYOUTS[l].save.folder);

/** `--layout`'s help: each layout rils writes and what it is. */
export const SAVE_LAYOUTS_HELP = SAVE_LAYOUTS.map((l) => `${l}: ${LAYOUTS[l].description}`).join('; ');
