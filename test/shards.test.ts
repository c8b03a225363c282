// WebDataset shards where large datasets live (issue 29): specs with braces and `::`, shards over HTTP
// from a local server with injected faults (reset, 404/500, stall, redirect, no Range), `pipe:`
// commands (cat, a failing command, garbage, a stall), truncated tars; workers with disjoint shares,
// the seeded shuffle buffer, resampling and exact resume; the read counts in fit's metrics.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { Rils, RilsInputError, WebDatasetSource, WordTokenizer, fit } from '../lib/index.js';
import { ShardLane } from '../lib/data/shard-lane.js';
import { shardUrls } from '../lib/data/shard-spec.js';
import { readOptions } from '../lib/data/shard-stream.js';
import { shardSamples } from '../lib/data/webdataset.js';
import { makeShard } from './helpers/shards.js';
import { startShardServer } from './helpers/shard-server.js';

const WORDS = ['zero', 'one', 'two', 'three', 'four', 'five'];
const tokenizer = WordTokenizer.fromTexts([`shard ${WORDS.join(' ')}`], { contextLength: 4 });
const fast = { timeoutSeconds: 0.5, retries: 2, backoffSeconds: 0.01 };

/** `count` shards of `per` samples each, captions naming the shard; returns the folder and the paths. */
async function shards(count: number, per = 5): Promise<{ dir: string; files: string[] }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-shards-'));
  const files = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `s-${i}.tar`);
    await makeShard(
      file,
      Array.from({ length: per }, (_, j) => ({
        key: `s${i}_${'x'.repeat(j + 1)}`,
        png: true,
        txt: `shard ${WORDS[i % 6]}`,
      })),
    );
    files.push(file);
  }
  return { dir, files };
}

async function keys(url: string, counts = { retries: 0 }, read = fast): Promise<string[]> {
  const out: string[] = [];
  for await (const s of shardSamples(url, readOptions(read), counts)) out.push(s.key);
  return out;
}

test('shard specs: braces (zero-padded ranges, several, lists), :: lists, pipe commands kept whole, commas', (t) => {
  t.deepEqual(shardUrls('https://h/d-{00008..00011}.tar'), [
    'https://h/d-00008.tar',
    'https://h/d-00009.tar',
    'https://h/d-00010.tar',
    'https://h/d-00011.tar',
  ]);
  t.deepEqual(shardUrls('a{0..1}-{x,y}.tar'), ['a0-x.tar', 'a0-y.tar', 'a1-x.tar', 'a1-y.tar']);
  t.is(shardUrls('s/{00000..01023}.tar')!.length, 1024);
  t.deepEqual(shardUrls('pipe:aws s3 cp s3://b/{0..1}.tar - :: /d/x.tar, /d/y.tar'), [
    'pipe:aws s3 cp s3://b/0.tar -',
    'pipe:aws s3 cp s3://b/1.tar -',
    '/d/x.tar',
    '/d/y.tar',
  ]);
  t.deepEqual(
    shardUrls('pipe:curl -s -H "a,b" http://h/x.tar'),
    ['pipe:curl -s -H "a,b" http://h/x.tar'],
    'a pipe command keeps its commas',
  );
  t.deepEqual(shardUrls('http://h/data'), ['http://h/data'], 'a URL names a shard whatever its name');
  for (const spec of ['mnist', 'data/folder', 'index.jsonl', 'x.csv']) t.is(shardUrls(spec), undefined);
  t.throws(() => shardUrls('a.tar::index.jsonl'), {
    instanceOf: RilsInputError,
    message: /Expected each part of a shard list .* but received "index\.jsonl"/,
  });
  t.throws(() => shardUrls('{0..200000}.tar'), { instanceOf: RilsInputError, message: /at most 100000 shards/ });
});

test('http: redirects, a reset mid-shard resumed with Range (or skipped bytes without it), 5xx retried, a stall timed out; 404 fails at once', async (t) => {
  const { dir, files } = await shards(1, 40);
  const server = await startShardServer(dir);
  t.teardown(() => server.close());
  const expected = await keys(files[0]!);
  t.is(expected.length, 40);
  const url = server.url('s-0.tar');
  t.deepEqual(await keys(url), expected);
  server.faults.set('r.tar', { redirect: 's-0.tar' });
  t.deepEqual(await keys(server.url('r.tar')), expected, 'a redirect is followed');
  const cases = [
    { fault: { resetAfter: 20_000, times: 1 }, retries: 1, range: 'bytes=20000-', name: 'reset' },
    {
      fault: { resetAfter: 20_000, times: 1, ignoreRange: true },
      retries: 1,
      range: 'bytes=20000-',
      name: 'reset, no Range',
    },
    { fault: { status: 503, times: 2 }, retries: 2, range: undefined, name: '503 twice' },
    { fault: { stallAfter: 10_000, times: 1 }, retries: 1, range: 'bytes=10000-', name: 'stall' },
  ];
  for (const c of cases) {
    server.faults.set('s-0.tar', c.fault);
    server.log.length = 0;
    const counts = { retries: 0 };
    const started = performance.now();
    t.deepEqual(await keys(server.url('s-0.tar'), counts), expected, c.name);
    t.is(counts.retries, c.retries, c.name);
    t.is(server.log.at(-1)!.range, c.range, c.name);
    if (c.name === 'stall') t.true(performance.now() - started >= 450, 'waited for the read timeout');
    server.faults.delete('s-0.tar');
  }
  const counts = { retries: 0 };
  await t.throwsAsync(keys(server.url('missing.tar'), counts), {
    instanceOf: RilsInputError,
    message: /missing\.tar could not be read: HTTP 404 Not Found$/,
  });
  t.is(counts.retries, 0, 'a 404 is not retried');
  server.faults.set('s-0.tar', { status: 500 });
  await t.throwsAsync(keys(server.url('s-0.tar'), counts), {
    instanceOf: RilsInputError,
    message: /s-0\.tar could not be read: HTTP 500 Internal Server Error \(after 2 retries\)/,
  });
  // A server that resets every time, but later each time, renews the retries as it progresses.
  server.faults.delete('s-0.tar');
  server.faults.set('s-0.tar', { resetAfter: 8000, times: 4 });
  const renewed = { retries: 0 };
  t.deepEqual(await keys(server.url('s-0.tar'), renewed), expected, 'four resets, each further on');
  t.is(renewed.retries, 4);
});

test('pipe: cat streams a shard; a failing command is retried then fails; garbage and a stall fail, the command killed', async (t) => {
  const { dir, files } = await shards(1, 20);
  const file = files[0]!;
  const expected = await keys(file);
  t.deepEqual(await keys(`pipe:cat ${file}`), expected);
  const flag = path.join(dir, 'flag');
  const counts = { retries: 0 };
  // Fails once, half-way (prints part of the shard, exits 1), then succeeds: the rerun skips what was read.
  const flaky = `pipe:if [ -e ${flag} ]; then cat ${file}; else touch ${flag}; head -c 5000 ${file}; echo boom >&2; exit 1; fi`;
  t.deepEqual(await keys(flaky, counts), expected);
  t.is(counts.retries, 1);
  await t.throwsAsync(keys(`pipe:cat ${file}; echo 'access denied' >&2; exit 3`), {
    instanceOf: RilsInputError,
    message: /could not be read: the command exited with status 3 \(access denied\) \(after 2 retries\)/,
  });
  await t.throwsAsync(keys('pipe:head -c 5000 /dev/urandom'), {
    instanceOf: RilsInputError,
    message: /is not a readable tar shard/,
  });
  await t.throwsAsync(keys(`pipe:cat ${file} | head -c 9000`), {
    instanceOf: RilsInputError,
    message: /is not a readable tar shard: Unexpected end of data/,
  });
  const pidFile = path.join(dir, 'pid');
  const started = performance.now();
  await t.throwsAsync(keys(`pipe:echo $$ > ${pidFile}; exec sleep 30`, { retries: 0 }, { ...fast, retries: 1 }), {
    instanceOf: RilsInputError,
    message: /could not be read: no data for 0\.5 s \(after 1 retries\)/,
  });
  t.true(performance.now() - started < 5000, 'two timeouts, not the command’s 30 s');
  const pid = Number(readFileSync(pidFile, 'utf-8'));
  await new Promise((r) => setTimeout(r, 100));
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the stalled command was killed');
  // A source's dispose() ends the command of a shard it is half-way through.
  const slow = `pipe:echo $$ > ${pidFile}; cat ${file}; exec sleep 30`;
  const source = new WebDatasetSource({
    shards: [slow],
    tokenizer,
    batchSize: 2,
    size: 16,
    seed: 0,
    shuffle: 0,
    ...fast,
  });
  await source.next();
  const reader = Number(readFileSync(pidFile, 'utf-8'));
  t.notThrows(() => process.kill(reader, 0), 'the command runs while its shard is read');
  source.dispose();
  await new Promise((r) => setTimeout(r, 100));
  t.throws(() => process.kill(reader, 0), { code: 'ESRCH' }, 'dispose() killed it');
});

test('a source over faulty shards skips and counts (404, truncated, garbage), retries resets, and fails by option', async (t) => {
  const { dir, files } = await shards(4, 6);
  const whole = readFileSync(files[3]!);
  writeFileSync(files[3]!, whole.subarray(0, Math.floor(whole.length / 2)));
  writeFileSync(path.join(dir, 'garbage.tar'), Buffer.alloc(3000, 9));
  const server = await startShardServer(dir);
  t.teardown(() => server.close());
  server.faults.set('s-1.tar', { resetAfter: 3000, times: 1 });
  const urls = [
    ...['s-0', 's-1', 's-2', 's-3', 'gone', 'garbage'].map((n) => server.url(`${n}.tar`)),
    `pipe:cat ${files[0]}; exit 2`,
  ];
  const source = new WebDatasetSource({
    shards: urls,
    tokenizer,
    batchSize: 4,
    size: 16,
    seed: 0,
    workers: 2,
    shuffle: 3,
    ...fast,
  });
  for (let i = 0; i < 8; i++) t.is((await source.next()).batchSize, 4);
  const counts = source.counts();
  t.true(counts.skippedShards! >= 4, JSON.stringify(counts)); // gone, garbage, truncated s-3, the failing command
  t.true(counts.shardRetries! >= 1 + 2, JSON.stringify(counts)); // the reset, the command's retries
  t.true(server.log.filter((l) => l.path === 'gone.tar').every((l) => l.status === 404 && l.range === undefined));
  const strict = new WebDatasetSource({
    shards: [server.url('gone.tar')],
    tokenizer,
    batchSize: 2,
    size: 16,
    seed: 0,
    onError: 'throw',
    ...fast,
  });
  await t.throwsAsync(strict.next(), { instanceOf: RilsInputError, message: /gone\.tar could not be read: HTTP 404/ });
});

test('workers read disjoint shares every epoch, reshuffled each epoch', async (t) => {
  const { files } = await shards(6, 2);
  const counts = { retries: 0, skipped: 0, skippedShards: 0, lastShardError: undefined };
  const epochs = [0, 1, 2].map(() => [new Set<number>(), new Set<number>()] as const);
  for (const lane of [0, 1]) {
    const reader = new ShardLane(
      {
        shards: files,
        lane,
        lanes: 2,
        seed: 5,
        shuffle: 0,
        resampled: false,
        read: readOptions(fast),
        onError: 'skip',
      },
      counts,
    );
    for (let i = 0; i < 3 * 3 * 2; i++) {
      const s = await reader.next(); // 3 shards of 2 samples an epoch per lane
      epochs[Math.floor(i / 6)]![lane]!.add(s.shard);
    }
  }
  for (const [a, b] of epochs) {
    t.deepEqual([a.size, b.size], [3, 3]);
    t.deepEqual(
      [...a].filter((s) => b.has(s)),
      [],
      'disjoint',
    );
  }
  t.notDeepEqual([...epochs[0]![0]].sort(), [...epochs[1]![0]].sort(), 'another share the next epoch (seeded)');
});

test('the shuffle buffer is seeded; a restored source continues exactly (2 workers, mid-buffer, over HTTP); resampled too', async (t) => {
  const { dir } = await shards(4, 5);
  const server = await startShardServer(dir);
  t.teardown(() => server.close());
  const urls = shardUrls(server.url('s-{0..3}.tar'))!;
  for (const resampled of [false, true]) {
    const make = (seed: number) =>
      new WebDatasetSource({
        shards: urls,
        tokenizer,
        batchSize: 3,
        size: 16,
        seed,
        workers: 2,
        shuffle: 6,
        resampled,
        ...fast,
      });
    const a = make(1);
    const batches = [];
    for (let i = 0; i < 9; i++) batches.push(await a.next());
    const same = make(1);
    t.deepEqual((await same.next()).images, batches[0]!.images);
    t.notDeepEqual((await make(2).next()).tokens, batches[0]!.tokens);
    const restored = make(1);
    restored.restore(JSON.parse(JSON.stringify(batches[4]!.position)));
    for (let i = 5; i < 9; i++)
      t.deepEqual(await restored.next(), batches[i], `${resampled ? 'resampled ' : ''}batch ${i}`);
  }
  const captions = new Set<number>();
  const plain = new WebDatasetSource({ shards: urls, tokenizer, batchSize: 4, size: 16, seed: 1, shuffle: 0 });
  for (let b = 0; b < 5; b++) (await plain.next()).tokens.forEach((v, i) => i % 4 === 2 && captions.add(v));
  t.is(captions.size, 4, 'every shard read in an epoch (its caption seen)');
  t.throws(() => new WebDatasetSource({ shards: urls, tokenizer, batchSize: 2, size: 16, seed: 0, workers: 5 }), {
    instanceOf: RilsInputError,
    message: 'Expected at least 5 shards for 5 workers (each reads its own) but received 4',
  });
  t.throws(() => make2().restore({ batch: 1, lanes: [] }), {
    instanceOf: RilsInputError,
    message: /Expected 0 workers, as the position was saved with/,
  });
  function make2() {
    return new WebDatasetSource({ shards: urls, tokenizer, batchSize: 2, size: 16, seed: 0 });
  }
  t.throws(
    () => new WebDatasetSource({ shards: urls, tokenizer, batchSize: 2, size: 16, seed: 0, timeoutSeconds: 0 }),
    {
      instanceOf: RilsInputError,
      message: 'Expected a number > 0 for timeoutSeconds but received number 0',
    },
  );
});

test('fit writes the read counts into every metrics line', async (t) => {
  const { dir } = await shards(2, 4);
  const server = await startShardServer(dir);
  t.teardown(() => server.close());
  server.faults.set('s-0.tar', { resetAfter: 2000, times: 1 });
  const urls = [server.url('s-0.tar'), server.url('s-1.tar'), server.url('gone.tar')];
  const source = new WebDatasetSource({
    shards: urls,
    tokenizer,
    batchSize: 4,
    size: 32,
    seed: 0,
    shuffle: 2,
    ...fast,
  });
  const model = await Rils.create({
    preset: 'micro',
    vocabSize: tokenizer.vocabSize,
    contextLength: 4,
    tokenizer,
    seed: 0,
  });
  t.teardown(() => model.dispose());
  const metrics = path.join(dir, 'm.jsonl');
  await fit(model, source, { steps: 3, metrics, handleSigint: false });
  const lines = readFileSync(metrics, 'utf-8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { data: Record<string, number> });
  t.is(lines.length, 3);
  t.is(lines.at(-1)!.data.shardRetries, 1);
  t.true(lines.at(-1)!.data.skippedShards! >= 1, 'gone.tar, each epoch');
  t.true(lines.every((l) => typeof l.data.skippedSamples === 'number'));
});
