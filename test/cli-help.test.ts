// `--help` of every command lists every option it takes, and `rils train --help` states the library's
// own defaults: each field of the addon's tables, with its range and default as schema() gives them.
import test from 'ava';

import { native } from '../lib/addon/binding.js';
import { helpText } from '../lib/cli/args.js';
import type { Command } from '../lib/cli/args.js';
import { convertCommand } from '../lib/cli/convert.js';
import { embedCommand } from '../lib/cli/embed.js';
import { evalCommand } from '../lib/cli/eval.js';
import { infoCommand } from '../lib/cli/info.js';
import { trainCommand } from '../lib/cli/train.js';
import { zeroshotCommand } from '../lib/cli/zeroshot.js';
import { RUN_OPTIONS } from '../lib/model/options.js';
import { rilsRun } from './helpers/cli.js';

const COMMANDS: Command[] = [infoCommand, trainCommand, zeroshotCommand, embedCommand, evalCommand, convertCommand];

test('rils COMMAND --help prints every option the command parses, for every command', async (t) => {
  for (const command of COMMANDS) {
    const r = await rilsRun([command.name, '--help']);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout.trim(), helpText(command).trim());
    for (const name of Object.keys(command.options))
      t.regex(r.stdout, new RegExp(`^  --${name}\\b`, 'm'), `${command.name} --${name}`);
  }
  for (const command of [zeroshotCommand, embedCommand, evalCommand, convertCommand]) {
    for (const name of ['weights', 'vocab', 'device', 'precision', 'act'])
      t.true(name in command.options, `${command.name} --${name}`);
  }
});

const kebab = (snake: string) => snake.replaceAll('_', '-');
const shown = (v: number | boolean | string) => String(v);

test("rils train --help gives every field of schema() with the library's default", async (t) => {
  const help = (await rilsRun(['train', '--help'])).stdout.replace(/\n {30}/g, ' ');
  const schema = native.schema();
  for (const f of schema.train) {
    const line = new RegExp(`^  --${kebab(f.name)} .*\\(default ([^)]*)\\)$`, 'm').exec(help);
    if (f.name === 'total_steps') {
      t.regex(help, /--total-steps N +an integer >= 0; default: --steps/);
      continue;
    }
    t.truthy(line, `--${kebab(f.name)}`);
    t.is(line?.[1], shown(f.default), `--${kebab(f.name)}: the CLI's default is the library's`);
  }
  for (const f of schema.config) {
    if (f.name === 'vocab_size' || f.name === 'context_length') {
      t.regex(help, new RegExp(`--${kebab(f.name)} N +given by the tokenizer`));
      continue;
    }
    const line = new RegExp(`^  --${kebab(f.name)} .*default: the preset's \\(micro: ([^)]*)\\)$`, 'm').exec(help);
    t.is(line?.[1], shown(schema.presets.micro![f.name]!), `--${kebab(f.name)}`);
  }
  t.regex(
    help,
    /With --init, the training fields start from the fine-tuning schedule of Rils\.fromPretrained instead: lr 0\.00001/,
  );
  // The run's options: the precision field's, and the library's own (device, non-finite steps).
  const option = (name: string) => new RegExp(`^  --${name} (\\S+) .*\\(default ([^)]*)\\)$`, 'm').exec(help)?.slice(1);
  const precision = schema.run.find((f) => f.name === 'precision')!;
  t.deepEqual(option('precision'), [precision.choices!.join('|'), String(precision.default)]);
  t.deepEqual(option('device'), [RUN_OPTIONS.device.values.join('|'), RUN_OPTIONS.device.default]);
  t.deepEqual(option('on-non-finite'), [RUN_OPTIONS.onNonFinite.values.join('|'), RUN_OPTIONS.onNonFinite.default]);
});

test('--templates takes several templates after it, and the images after them', async (t) => {
  const r = await rilsRun([
    'zeroshot',
    '--weights',
    'nowhere.safetensors',
    '--classes',
    'a,b',
    '--templates',
    'a {}.',
    'the {}!',
    'x.png',
  ]);
  t.is(r.code, 2);
  t.is(r.stderr, 'rils: No such file or folder: x.png\n', 'x.png is an image argument, not a template');
  const bad = await rilsRun(['zeroshot', '--weights', 'w', '--classes', 'a,b', '--templates', 'a', 'x.png']);
  t.regex(
    bad.stderr,
    /Expected slip7, clip80, a \.txt\/\.json file, or templates containing \{\} for --templates but received "a"/,
  );
});
