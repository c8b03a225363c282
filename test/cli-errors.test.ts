// The command line with bad arguments and failing files: one clear line "rils: …", never a stack trace.
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { rilsRun } from './helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-cli-errors-'));

test('a metrics file that fills the disk is one line on stderr; training goes on and saves', async (t) => {
  const out = path.join(tmp(), 'w.safetensors');
  const r = await rilsRun([
    'train',
    '--data',
    'mnist',
    '--steps',
    '2',
    '--batch',
    '4',
    '--metrics',
    '/dev/full',
    '--out',
    out,
  ]);
  t.is(r.code, 0, r.stderr);
  t.is(
    r.stderr,
    'rils: Cannot write metrics to /dev/full (ENOSPC: no space left on device); training goes on without metrics\n',
  );
  t.regex(r.stdout, /step 2\/2 loss/);
  t.true(existsSync(out));
});

const COMMANDS = ['info', 'train', 'zeroshot', 'embed', 'eval'];

test("--help and -h print the command's usage and exit 0", async (t) => {
  for (const command of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const r = await rilsRun([command, flag]);
      t.is(r.code, 0, `${command} ${flag}: ${r.stderr}`);
      t.regex(r.stdout, new RegExp(`^Usage: rils ${command}\\b`), `${command} ${flag}`);
      t.is(r.stderr, '');
    }
  }
  const plain = await rilsRun(['train', '--data', 'mnist', '--help']);
  t.regex(plain.stdout, /--steps/, 'help wins over the other arguments');
});

/** Expects exit status 2 and exactly one line "rils: …" on stderr matching `message`. */
async function failsClearly(
  t: import('ava').ExecutionContext,
  args: string[],
  message: RegExp,
  env: Record<string, string> = {},
) {
  const r = await rilsRun(args, env);
  const shown = `${Object.entries(env)
    .map(([k, v]) => `${k}=${v} `)
    .join('')}rils ${args.join(' ')}`;
  t.is(r.code, 2, `${shown}: ${r.stderr}`);
  t.regex(r.stderr, /^rils: [^\n]*\n$/, `${shown}: one line, no stack trace`);
  t.regex(r.stderr, message, shown);
}

const train = (...args: string[]) => [
  'train',
  '--data',
  'mnist',
  '--steps',
  '1',
  '--batch',
  '4',
  '--out',
  path.join(tmp(), 'w.safetensors'),
  ...args,
];

test('bad numbers name the option and the value', async (t) => {
  await failsClearly(t, train('--steps', '-1'), /Expected an integer >= 1 for --steps but received "-1"/);
  await failsClearly(t, train('--steps', '1.5'), /for --steps but received "1\.5"/);
  await failsClearly(t, train('--lr', '-1'), /Expected a number in \[0, 1\] for --lr but received "-1"/);
  await failsClearly(t, train('--batch', '0'), /Expected an integer >= 1 for --batch but received "0"/);
  await failsClearly(t, train('--batch', 'abc'), /for --batch but received "abc"/);
  await failsClearly(t, train('--threads', '0'), /Expected an integer >= 1 for --threads but received "0"/);
  await failsClearly(
    t,
    train('--threads', '100000'),
    /Expected an integer in \[1, \d+\] \(4 × the \d+ cores\) for threads/,
  );
  await failsClearly(t, train('--seed', '-1'), /for --seed but received "-1"/);
  await failsClearly(
    t,
    train('--warmup-steps', 'abc'),
    /Expected an integer >= 0 for --warmup-steps but received "abc"/,
  );
  await failsClearly(t, train('--mask-ratio', '1'), /Expected a number in \[0, 1\) for --mask-ratio but received "1"/);
  await failsClearly(t, train('--retrieval-gate', 'maybe'), /Unexpected argument 'maybe'/);
  await failsClearly(
    t,
    train('--vision-act', 'relu'),
    /Expected 'gelu' or 'quick_gelu' for --vision-act but received "relu"/,
  );
  await failsClearly(
    t,
    train('--set', 'retrievalGate=yes'),
    /Expected a boolean for --set retrievalGate but received "yes"/,
  );
  await failsClearly(
    t,
    train('--set', 'constructor=1'),
    /Expected field=value .*for --set but received "constructor=1"/,
  );
  await failsClearly(t, train('--vocab-size', '300'), /--vocab-size is given by the tokenizer/);
  await failsClearly(t, train('--init', 'x.safetensors', '--preset', 'micro'), /--preset cannot be used with --init/);
  await failsClearly(t, train('--device', 'tpu'), /Expected 'cpu', 'cuda' or 'cuda:N' for --device but received "tpu"/);
  await failsClearly(t, train('--master-port', 'abc', '--nproc', '2'), /for --master-port but received "abc"/);
  await failsClearly(t, train('--set', 'imageSize'), /Expected field=value .*for --set but received "imageSize"/);
  await failsClearly(t, train('--set', 'frobs=2'), /for --set but received "frobs=2"/);
  await failsClearly(
    t,
    train('--on-error', 'ignore'),
    /Expected 'skip' or 'throw' for --on-error but received "ignore"/,
  );
  await failsClearly(t, train('--preset', 'huge'), /for --preset but received "huge"/);
  await failsClearly(t, train('--tokenizer', 'bpe'), /for --tokenizer but received "bpe"/);
  await failsClearly(
    t,
    train('--precision', 'fp16'),
    /Expected 'auto' or 'fp32' or 'bf16' for --precision but received "fp16"/,
  );
  await failsClearly(
    t,
    ['eval', '--weights', 'w.safetensors', '--precision', 'half'],
    /for --precision but received "half"/,
  );
});

test('missing values, stray arguments and unusable output paths', async (t) => {
  await failsClearly(t, ['train', '--data'], /Expected a value for --data but received none/);
  await failsClearly(
    t,
    ['train', '--data', '--steps', '1'],
    /Expected a value for --data but received the option "--steps"/,
  );
  await failsClearly(t, ['train', 'extra', '--data', 'mnist'], /Unexpected argument 'extra'/);
  await failsClearly(t, train('--gather-grad=yes'), /--gather-grad/);
  for (const option of ['--report', '--metrics', '--checkpoint', '--out']) {
    await failsClearly(
      t,
      train(option, '/no/such/dir/file'),
      new RegExp(`for ${option} but received "/no/such/dir/file" \\(no folder /no/such/dir\\)`),
    );
  }
  await failsClearly(t, train('--metrics', os.tmpdir()), /Expected a file path for --metrics but received a folder/);
  await failsClearly(
    t,
    ['embed', '--weights', 'w.safetensors', '--out', '/no/such/dir/e.npy', 'x.png'],
    /for --out but received "\/no\/such\/dir\/e\.npy"/,
  );
  await failsClearly(
    t,
    ['zeroshot', '--weights', 'w.safetensors', '--classes', ' , ', 'x.png'],
    /Expected non-empty class names separated by commas for --classes but received " , "/,
  );
  await failsClearly(
    t,
    ['zeroshot', '--weights', 'w.safetensors', '--classes', 'a,b', '--top', '0', 'x.png'],
    /for --top but received "0"/,
  );
  await failsClearly(t, ['info', 'extra'], /Unexpected argument 'extra'/);
});

test('bad torchrun variables name the variable', async (t) => {
  await failsClearly(t, train(), /Expected an integer >= 1 for WORLD_SIZE but received "0"/, {
    WORLD_SIZE: '0',
    RANK: '0',
  });
  await failsClearly(t, train(), /Expected an integer < WORLD_SIZE \(2\) for RANK but received "2"/, {
    WORLD_SIZE: '2',
    RANK: '2',
  });
  await failsClearly(t, train(), /for RANK but received "-1"/, { WORLD_SIZE: '2', RANK: '-1' });
  await failsClearly(t, train(), /for WORLD_SIZE but received "1\.5"/, { WORLD_SIZE: '1.5', RANK: '0' });
});
