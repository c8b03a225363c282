// `rils train --nproc N`'s launcher (issue 20, item 12): once a rank fails, the launcher ends the others
// (SIGTERM, then SIGKILL for what does not stop) and exits within 10 s, with a non-zero status naming
// the rank that failed first — also when the master port is taken, or a rank is stopped (SIGSTOP).
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { runtimeInfo } from '../lib/index.js';
import { launchLocalRanks } from '../lib/train/launch.js';

// Training across processes needs the Gloo build (as in test/distributed.test.ts).
const serial = runtimeInfo().distributedAvailable ? test.serial : test.serial.skip;
const rankScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'launch-rank.ts');
let nextPort = 31000 + (process.pid % 200) * 10;

/** Pids of this machine's processes started with MASTER_PORT=`port`: the ranks of that job. */
function ranksOn(port: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`MASTER_PORT=${port}`))
        pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** Ends every rank of the job on `port` that is still there (SIGKILL works on stopped processes too). */
function killRanks(port: number): void {
  for (const pid of ranksOn(port)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the launcher writes to stderr while `fn` runs (it runs in this process). */
async function stderrOf<T>(fn: () => Promise<T>): Promise<[T, string]> {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args.join(' '));
  try {
    return [await fn(), lines.join('\n')];
  } finally {
    console.error = original;
  }
}

/** The launcher's status, or 'hung' after `ms`. */
async function within(launcher: Promise<number>, ms: number): Promise<number | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), ms)));
  const result = await Promise.race([launcher, hung]);
  clearTimeout(timer);
  return result;
}

serial('a busy master port: rank 0 fails at once, and the launcher ends the job within 10 s', async (t) => {
  const port = nextPort++;
  t.teardown(() => killRanks(port));
  const busy = createServer(() => undefined); // accepts, never answers: rank 1 would wait on it
  await new Promise<void>((resolve) => busy.listen(port, resolve));
  t.teardown(() => busy.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-launch-'));
  const started = Date.now();
  const launcher = launchLocalRanks(rankScript, [dir, '60'], 2, port);
  const [status, stderr] = await stderrOf(() => within(launcher, 30_000));
  const seconds = (Date.now() - started) / 1000;
  t.regex(stderr, /rils: rank 0 \(pid \d+\) exited with status 3/);
  t.log(`launcher ended after ${seconds.toFixed(1)} s with status ${status}`);
  t.not(status, 'hung');
  t.not(status, 0);
  t.true(seconds < 10, `${seconds} s`);
  killRanks(port);
  await launcher;
  t.deepEqual(ranksOn(port), [], 'no rank is left');
});

/** Starts a job of two helper ranks, waits until both train, and gives their pids. */
async function trainingJob(port: number, mode = ''): Promise<{ launcher: Promise<number>; pids: number[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-launch-'));
  const launcher = launchLocalRanks(rankScript, [dir, '5', mode], 2, port);
  const pidFile = (rank: number) => path.join(dir, `rank${rank}.pid`);
  for (let waited = 0; !(existsSync(pidFile(0)) && existsSync(pidFile(1))) && waited < 120_000; waited += 100)
    await sleep(100);
  return { launcher, pids: [0, 1].map((r) => Number(readFileSync(pidFile(r), 'utf8'))) };
}

/** Waits for rank 0 to fail (on its next collective, after its 5 s timeout), then for the launcher. */
async function afterRank0Fails(t: import('ava').ExecutionContext, launcher: Promise<number>, pid0: number) {
  for (let waited = 0; alive(pid0) && waited < 60_000; waited += 50) await sleep(50);
  t.false(alive(pid0), 'rank 0 failed');
  const failedAt = Date.now();
  const [status, stderr] = await stderrOf(() => within(launcher, 30_000));
  const seconds = (Date.now() - failedAt) / 1000;
  t.log(`launcher ended ${seconds.toFixed(1)} s after rank 0 failed, with status ${status}`);
  t.not(status, 'hung');
  t.is(status, 3, "rank 0's status: it failed first");
  t.true(seconds < 10, `${seconds} s`);
  t.regex(stderr, /rils: the job failed: rank 0 failed first \(it exited with status 3\)/);
  return stderr;
}

serial('a stopped rank (SIGSTOP): the launcher ends the job within 10 s of the first failure', async (t) => {
  const port = nextPort++;
  t.teardown(() => killRanks(port));
  const { launcher, pids } = await trainingJob(port);
  process.kill(pids[1]!, 'SIGSTOP');
  const stderr = await afterRank0Fails(t, launcher, pids[0]!);
  t.regex(stderr, /rils: rank 1 \(pid \d+\) is still running: SIGTERM/);
  t.false(alive(pids[1]!), 'the stopped rank was ended');
  killRanks(port);
  await launcher;
  t.deepEqual(ranksOn(port), [], 'no rank is left');
});

serial('a rank that cannot act on SIGTERM is killed (SIGKILL), still within 10 s', async (t) => {
  const port = nextPort++;
  t.teardown(() => killRanks(port));
  const { launcher, pids } = await trainingJob(port, 'stuck');
  const stderr = await afterRank0Fails(t, launcher, pids[0]!);
  t.regex(
    stderr,
    /rils: rank 1 \(pid \d+\) is still running: SIGTERM\nrils: rank 1 \(pid \d+\) is still running: SIGKILL/,
  );
  t.false(alive(pids[1]!), 'the stuck rank was killed');
  killRanks(port);
  await launcher;
  t.deepEqual(ranksOn(port), [], 'no rank is left');
});
