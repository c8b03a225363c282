// Two processes (`rils train --nproc 2`) training on WebDataset shards over HTTP from a local server
// (issue 29): the ranks read disjoint shares of the shards, a reset connection is retried and counted
// in the metrics, and a resumed run ends with the bytes of an uninterrupted one.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { RilsInputError, WordTokenizer, openDataset, parseSafetensors, runtimeInfo } from '../lib/index.js';
import { cli } from './helpers/cli.js';
import { startShardServer } from './helpers/shard-server.js';
import { makeShard } from './helpers/shards.js';

const serial = runtimeInfo().distributedAvailable ? test.serial : test.serial.skip;
const rils = (...args: string[]) =>
  promisify(execFile)(process.execPath, ['--import=tsx', cli, ...args], { timeout: 240_000 });
const WORDS = ['zero', 'one', 'two', 'three'];

async function shardFolder(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-shards-ddp-'));
  for (let i = 0; i < 4; i++) {
    await makeShard(
      path.join(dir, `s-${i}.tar`),
      Array.from({ length: 6 }, (_, j) => ({
        key: `s${i}_${'x'.repeat(j + 1)}`,
        png: true,
        txt: `a ${WORDS[i]} thing`,
      })),
    );
  }
  return dir;
}

test('each rank (and each of its workers) reads its own shards: two ranks read every shard once an epoch', async (t) => {
  const dir = await shardFolder();
  const server = await startShardServer(dir);
  t.teardown(() => server.close());
  const words = WordTokenizer.fromTexts(['a zero one two three thing'], { contextLength: 4 });
  const seen = [new Set<number>(), new Set<number>()];
  for (const rank of [0, 1]) {
    const { source } = await openDataset(server.url('s-{0..3}.tar'), {
      tokenizer: words,
      batchSize: 3,
      seed: rank,
      size: 16,
      rank,
      worldSize: 2,
      shards: { shuffle: 0, workers: 2 },
    });
    for (let b = 0; b < 4; b++) (await source.next()).tokens.forEach((v, i) => i % 4 === 2 && seen[rank]!.add(v)); // one epoch: 12 samples
  }
  t.deepEqual([seen[0]!.size, seen[1]!.size], [2, 2]);
  t.deepEqual(
    [...seen[0]!].filter((w) => seen[1]!.has(w)),
    [],
    'no shard read by both ranks',
  );
  await t.throwsAsync(
    openDataset(server.url('s-{0..3}.tar'), {
      tokenizer: words,
      batchSize: 2,
      seed: 0,
      size: 16,
      rank: 0,
      worldSize: 2,
      shards: { workers: 3 },
    }),
    {
      instanceOf: RilsInputError,
      message: 'Expected at least 3 shards for 3 workers (each reads its own) but received 2',
    },
  );
});

test('rils train on pipe: shards ends when done, though the last command still has output', async (t) => {
  const dir = await shardFolder();
  // The command prints its shard (6 samples), then waits; training ends after 4 samples, half-way
  // through the shard: a command left running would keep Node from exiting.
  const data = `pipe:cat ${dir}/s-0.tar; exec sleep 60`;
  const started = performance.now();
  const r = await rils(
    'train',
    '--data',
    data,
    '--tokenizer',
    'byte',
    '--context',
    '8',
    '--batch',
    '2',
    '--steps',
    '2',
    '--shuffle',
    '0',
    '--out',
    path.join(dir, 'w.safetensors'),
  );
  t.regex(r.stdout, /step 2\/2 loss/);
  t.true(performance.now() - started < 50_000, 'it did not wait for the command');
  rmSync(dir, { recursive: true, force: true });
});

serial('rils train --nproc 2 over HTTP shards: retries counted in the metrics, and an exact resume', async (t) => {
  const dir = await shardFolder();
  const server = await startShardServer(dir);
  t.teardown(() => server.close());
  server.faults.set('s-2.tar', { resetAfter: 3000, times: 1 });
  const [weights, ckpt, metrics, straight] = ['w.safetensors', 'c.safetensors', 'm.jsonl', 'straight.safetensors'].map(
    (f) => path.join(dir, f),
  ) as [string, string, string, string];
  // --total-steps 5: the schedule of the 3-step run and its resumption is the straight 5-step run's.
  const data = [
    '--data',
    `${server.url('s-{0..1}.tar')}::${server.url('s-{2..3}.tar')}`,
    '--tokenizer',
    'byte',
    '--context',
    '8',
    '--shuffle',
    '5',
    '--read-timeout',
    '5',
    '--total-steps',
    '5',
  ];
  const common = [...data, '--batch', '8', '--checkpoint', ckpt, '--metrics', metrics, '--out', weights];
  const first = await rils('train', '--nproc', '2', ...common, '--steps', '3');
  t.regex(first.stdout, /step 3\/3 loss/);
  const second = await rils('train', '--nproc', '2', ...common, '--steps', '5');
  t.regex(second.stdout, /resumed from step 3/);
  const lines = readFileSync(metrics, 'utf-8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; data: Record<string, number> });
  t.deepEqual(
    lines.map((l) => l.step),
    [1, 2, 3, 4, 5],
  );
  t.is(lines[2]!.data.shardRetries, 1, 'the reset, retried, in the metrics (summed over the ranks)');
  const meta = parseSafetensors(readFileSync(ckpt)).metadata;
  const ranks = JSON.parse(meta.ranks!) as { extra: { data: { batch: number; lanes: { buffer: unknown[] }[] } } }[];
  t.deepEqual(
    ranks.map((r) => [r.extra.data.batch, r.extra.data.lanes.length, r.extra.data.lanes[0]!.buffer.length]),
    [
      [5, 1, 4],
      [5, 1, 4],
    ],
    '5 batches drawn; 1 worker; its buffer of 5 holds 4 between draws',
  );
  await rils('train', '--nproc', '2', ...data, '--batch', '8', '--steps', '5', '--out', straight);
  t.true(
    readFileSync(straight).equals(readFileSync(weights)),
    'resumed and uninterrupted runs end with the same bytes',
  );
  rmSync(dir, { recursive: true, force: true });
});
