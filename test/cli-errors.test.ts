// The command line with bad arguments and failing files: one clear line "rils: …", never a stack trace.
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { rilsRun } from './helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-cli-errors-'));

test('a metrics file that fills the disk is one line on stderr; training goes on and saves', async (t) => {
  const out = path.join(tmp(), 'w.safetensors');
  const r = await rilsRun(['train', '--data', 'mnist', '--steps', '2', '--batch', '4', '--metrics', '/dev/full', '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, 'rils: Cannot write metrics to /dev/full (ENOSPC: no space left on device); training goes on without metrics\n');
  t.regex(r.stdout, /step 2\/2 loss/);
  t.true(existsSync(out));
});
