/**
 * What the commands share: the shape of a command, argument parsing, the one-line failure, and
 * loading a model from a weight file.
 * @internal
 * @module
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

import type { Device } from '../options.js';
import { Rils } from '../rils.js';

/** One `rils` command. */
export interface Command {
  /** Its lines of the usage text (`rils help`). */
  usage: string;
  /** Runs it with the arguments after the command's name. */
  run(argv: string[]): Promise<void>;
}

/** Prints `rils: message` and exits with status 2 (a usage or input error). */
export function fail(message: string): never {
  console.error(`rils: ${message}`);
  process.exit(2);
}

/** A command's options, as node:util's parseArgs takes them. */
export type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options, P extends boolean> =
  ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: P; strict: true }>>;

/** The command's options and positionals, parsed strictly (an unknown option is an error). */
export function parseCommand<O extends Options, P extends boolean = false>(argv: string[], options: O, allowPositionals?: P): Parsed<O, P> {
  return parseArgs({ args: argv, options, allowPositionals: allowPositionals ?? false, strict: true }) as Parsed<O, P>;
}

/** The options every command that loads weights takes. */
export const MODEL_OPTIONS = { weights: { type: 'string' }, vocab: { type: 'string' }, device: { type: 'string' } } as const;

/** The model of `--weights` (with `--vocab` for a CLIP tokenizer) on `--device`. */
export async function loadModel(a: { weights?: string | undefined; vocab?: string | undefined; device?: string | undefined }): Promise<Rils> {
  if (!a.weights) fail('needs --weights FILE');
  return Rils.fromWeights(a.weights, {
    ...(a.vocab ? { clipVocabPath: a.vocab } : {}), ...(a.device ? { device: a.device as Device } : {}),
  });
}
