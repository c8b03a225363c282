/**
 * The `rils` command line: `info`, `train`, `zeroshot`, `embed`, `eval`, one module each.
 * @internal
 * @module
 */
import { RilsError } from '../errors.js';
import { fail } from './common.js';
import type { Command } from './common.js';
import { embedCommand } from './embed.js';
import { evalCommand } from './eval.js';
import { infoCommand } from './info.js';
import { trainCommand } from './train.js';
import { zeroshotCommand } from './zeroshot.js';

const COMMANDS: Record<string, Command> = {
  info: infoCommand, train: trainCommand, zeroshot: zeroshotCommand, embed: embedCommand, eval: evalCommand,
};

const USAGE = `rils — RILS vision-language pre-training on LibTorch

  rils build    [cmake-js options]   (compile the addon from source: CPU, or CUDA with a CUDA LibTorch
                                      in LIBTORCH / Torch_DIR / a pip torch)
${Object.values(COMMANDS).map((c) => c.usage).join('\n')}

Weights carry their config and tokenizer; CLIP-tokenizer models also need --vocab PATH.`;

const [name, ...rest] = process.argv.slice(2);
const command = name ? COMMANDS[name] : undefined;
if (!command) {
  console.log(USAGE);
  process.exit(name && name !== 'help' && name !== '--help' ? 2 : 0);
}
command.run(rest).catch((error: unknown) => {
  if (error instanceof RilsError || (error as { code?: string })?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    fail((error as Error).message);
  }
  throw error;
});
