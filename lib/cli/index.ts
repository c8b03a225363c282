/**
 * The `rils` command line: `info`, `train`, `zeroshot`, `embed`, `eval`, `convert`, `export`, one module each.
 * Bad arguments and input errors end with one line `rils: …` and status 2, never a stack trace.
 * @internal
 * @module
 */
import { RilsError } from '../errors.js';
import type { Command } from './args.js';
import { fail } from './common.js';
import { convertCommand } from './convert.js';
import { embedCommand } from './embed.js';
import { evalCommand } from './eval.js';
import { exportCommand } from './export.js';
import { infoCommand } from './info.js';
import { trainCommand } from './train.js';
import { zeroshotCommand } from './zeroshot.js';

const COMMANDS: Record<string, Command> = {
  info: infoCommand,
  train: trainCommand,
  zeroshot: zeroshotCommand,
  embed: embedCommand,
  eval: evalCommand,
  convert: convertCommand,
  export: exportCommand,
};

const USAGE = `rils — RILS vision-language pre-training on LibTorch

  rils build    Compiles the addon from source (CPU, or CUDA with a CUDA LibTorch in LIBTORCH, Torch_DIR or a pip
                torch); extra arguments go to cmake-js.
${Object.values(COMMANDS)
  .map((c) => `  rils ${c.name.padEnd(9)}${c.summary}`)
  .join('\n')}

--weights takes rils's weights (they carry their config and tokenizer) or a CLIP checkpoint: OpenAI's\n.pt, open_clip's safetensors or a Hugging Face folder (--act gelu for open_clip's GELU models).
rils COMMAND --help shows one command's options.`;

/**
 * Ends the process for an error a user can fix: input errors and bad arguments with status 2, a
 * failing file system call (disk full, no permission) with status 1. Anything else is a bug, and
 * keeps its stack trace.
 */
function exitFor(error: unknown): never {
  const e = error as NodeJS.ErrnoException | null;
  if (error instanceof RilsError) fail(error.message);
  if (e?.code?.startsWith?.('ERR_PARSE_ARGS_')) fail(e.message.split('\n')[0]!); // parseArgs adds hints on further lines
  if (typeof e?.syscall === 'string') {
    console.error(`rils: ${e.message}`);
    process.exit(1);
  }
  throw error;
}

// Warnings (a schedule that ends in its warmup, classes that cannot be told apart) as one line each.
process.removeAllListeners('warning');
process.on('warning', (w) => console.error(`rils: warning: ${w.message}`));

const [name, ...rest] = process.argv.slice(2);
const command = name && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
if (!command) {
  console.log(USAGE);
  process.exit(name && !['help', '--help', '-h'].includes(name) ? 2 : 0);
}
command.run(rest).catch(exitFor);
