// The API documentation builds: typedoc.json validates that every exported symbol is documented,
// that every type a public one refers to is exported, and that every {@link} resolves, with its
// warnings as errors. Without this test a new export could break `npm run docs` unnoticed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

test('npm run docs: typedoc builds the API documentation without a warning', (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'rils-docs-'));
  try {
    const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typedoc/bin/typedoc'), '--out', out], {
      cwd: root,
      encoding: 'utf-8',
      timeout: 120_000,
    });
    const warnings = `${r.stdout}${r.stderr}`.split('\n').filter((line) => /warning|error/.test(line));
    t.deepEqual(warnings, [], 'typedoc warnings');
    t.is(r.status, 0, r.stderr);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
