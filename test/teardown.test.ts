// Environments torn down under running native work (issue 23, items 1 and 7): a worker terminated
// mid-step and then the process's exit, a process.exit() during a save. No exit ends in a signal,
// no temporary file is left behind.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

const here = (file: string) => JSON.stringify(new URL(file, import.meta.url).href);

/** Runs an ES module script in a fresh Node process (with tsx): its exit code, signal and stderr. */
function runScript(
  script: string,
  args: string[],
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

// The main thread never loads the addon: the worker's environment is its only one, so Node unloads
// the addon when the worker ends while the worker's model thread may still be in a backward pass.
const TERMINATE = `
  import { Worker } from 'node:worker_threads';
  const worker = new Worker(new URL(${here('./helpers/step-worker.mjs')}), { execArgv: [] });
  await new Promise((resolve) => worker.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, Number(process.argv[1])));
  if (process.argv[2] === 'exit') process.exit(7);  // the worker is torn down by the exit itself
  await worker.terminate();`;

test('a worker terminated mid-step, then the process exits: no signal in 24 runs', async (t) => {
  const failures: string[] = [];
  for (let i = 0; i < 24; i++) {
    const how = i % 3 === 2 ? 'exit' : 'terminate';
    const r = await runScript(TERMINATE, [String(5 + 17 * i), how]);
    if (r.signal !== null || r.code !== (how === 'exit' ? 7 : 0))
      failures.push(`run ${i} (${how}): ${r.signal ?? r.code} ${r.stderr.slice(-200)}`);
  }
  t.deepEqual(failures, [], 'every run exits with its own code');
});

test('process.exit() during saveCheckpoint and saveWeights leaves no temporary file', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-exit-save-'));
  const script = `
    import { Rils } from ${here('../lib/index.js')};
    const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
    setTimeout(() => process.exit(0), Number(process.argv[2]));
    for (;;) {
      await model.saveCheckpoint(process.argv[1] + '/c.safetensors');
      await model.saveWeights(process.argv[1] + '/w.safetensors');
    }`;
  // A folder per run: the next save of a target removes the temporary files of dead writers.
  const runs = Array.from({ length: 20 }, (_, i) => path.join(dir, String(i)));
  for (const [i, run] of runs.entries()) {
    mkdirSync(run);
    const r = await runScript(script, [run, String(15 + 9 * i)]);
    t.is(r.code, 0, r.stderr.slice(-300));
  }
  const left = runs.flatMap((run) =>
    readdirSync(run)
      .filter((f) => f.endsWith('.rils-tmp'))
      .map((f) => path.join(run, f)),
  );
  t.deepEqual(left, [], 'temporary files left behind');
  t.true(
    runs.some((run) => readdirSync(run).includes('w.safetensors')),
    'the saves ran',
  );
  rmSync(dir, { recursive: true });
});
