// Data-parallel training over c10d/Gloo on loopback: 2 processes × B/2 against 1 process × B, the
// official mode against the reference's multi-process definition, and a rank that dies.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import {
  Rils,
  RilsDistributedError,
  RilsInputError,
  distributedFromEnv,
  parseSafetensors,
  runtimeInfo,
} from '../lib/index.js';
import type { RilsOptions, TrainStats } from '../lib/index.js';
import { lostPeers } from '../lib/train/distributed.js';
import { globalBatch, readWeights, snapshot } from './helpers/batches.js';
import type { RankJob } from './helpers/distributed-rank.js';
import {
  PARITY_CONFIG,
  checkpointMoments,
  compareWeights,
  expected,
  parityBatch,
  parityModel,
  readTensors,
  relErr,
  smallestGradients,
} from './helpers/parity.js';

// A build without Gloo (e.g. against a pip torch, through RILS_ADDON) skips these; the default build
// must have it.
const available = runtimeInfo().distributedAvailable;
if (!available && !process.env.RILS_ADDON)
  throw new Error('this build of rils cannot train across processes (no c10d/Gloo)');
const serial = available ? test.serial : test.serial.skip;

const rankScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'helpers', 'distributed-rank.ts');
let nextPort = 29600 + (process.pid % 200) * 10;

interface RankResult {
  status: number | null;
  signal: string | null;
  stats: TrainStats[];
  stderr: string;
  weights: Map<string, Float32Array> | null;
  /** With `checkpoints`: the job's smallest |gradient| per entry over its steps (see compareWeights). */
  gradients?: Map<string, Float32Array>;
}

/** Runs `job` as `world` local processes with torchrun's variables; resolves when all have ended. */
async function runJob(job: Omit<RankJob, 'out'>, world = 2): Promise<RankResult[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-ddp-'));
  const out = path.join(dir, 'w');
  const port = nextPort++;
  const ranks = Array.from(
    { length: world },
    (_, rank) =>
      new Promise<RankResult>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', rankScript, JSON.stringify({ ...job, out })], {
          env: {
            ...process.env,
            RANK: String(rank),
            WORLD_SIZE: String(world),
            LOCAL_RANK: String(rank),
            MASTER_ADDR: '127.0.0.1',
            MASTER_PORT: String(port),
          },
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('exit', (status, signal) =>
          resolve({
            status,
            signal,
            stderr,
            weights: existsSync(`${out}.rank${rank}`) ? readWeights(`${out}.rank${rank}`) : null,
            stats: stdout
              .split('\n')
              .filter((l) => l.startsWith('{'))
              .map((l) => JSON.parse(l) as TrainStats),
          }),
        );
      }),
  );
  const results = await Promise.all(ranks);
  if (job.checkpoints && results.every((r) => r.status === 0)) {
    const gradients = smallestGradients(
      Array.from({ length: job.steps }, (_, k) => checkpointMoments(`${out}.step${k}`)),
    );
    for (const r of results) r.gradients = gradients;
  }
  rmSync(dir, { recursive: true, force: true });
  return results;
}

async function singleProcess(
  options: RilsOptions,
  steps: number,
  batch: (model: Rils, step: number) => ReturnType<typeof globalBatch>,
  fixture?: string,
) {
  const model = fixture ? await parityModel(fixture, options) : await Rils.create(options);
  const stats: TrainStats[] = [];
  for (let s = 0; s < steps; s++) stats.push(await model.trainStep(batch(model, s)));
  const weights = await snapshot(model);
  model.dispose();
  return { stats, weights };
}

function sameRun(
  t: import('ava').ExecutionContext,
  ranks: RankResult[],
  single: { stats: TrainStats[]; weights: Map<string, Float32Array> },
  steps: number,
  lr: number,
) {
  for (const r of ranks) t.is(r.status, 0, r.stderr.slice(-2000));
  for (let s = 0; s < steps; s++) {
    for (const r of ranks) {
      t.true(
        relErr(r.stats[s]!.loss, single.stats[s]!.loss) < 1e-5,
        `step ${s}: loss ${r.stats[s]!.loss} vs ${single.stats[s]!.loss}`,
      );
      t.true(
        relErr(r.stats[s]!.reconLoss, single.stats[s]!.reconLoss) < 1e-4 ||
          Math.abs(r.stats[s]!.reconLoss - single.stats[s]!.reconLoss) < 1e-6,
      );
      t.is(r.stats[s]!.clipAcc, single.stats[s]!.clipAcc);
      t.is(r.stats[s]!.gatedPatches, single.stats[s]!.gatedPatches);
    }
  }
  const w0 = ranks[0]!.weights!;
  const w1 = ranks[1]!.weights!;
  t.is(compareWeights(w0, w1).worst, 0, 'ranks hold identical weights');
  const d = compareWeights(w0, single.weights, ranks[0]!.gradients);
  t.log(
    `max |Δ| vs one process: ${d.worst.toExponential(2)} (${d.where}); key-bias slice ${d.keyBiasWorst.toExponential(2)}; ` +
      `gradients below 1e-6 (${(100 * d.tinyGradientShare).toFixed(2)}% of entries) ${d.tinyGradientWorst.toExponential(2)}`,
  );
  t.true(d.worst < 1e-5, `${d.worst} at ${d.where}`);
  t.true(d.keyBiasWorst <= steps * lr * 1.01);
  t.true(d.tinyGradientWorst <= 2 * steps * lr && d.tinyGradientShare < 0.01);
}

serial(
  'gatherGrad: 2 processes × 4 images train exactly like 1 process × 8 (gate on, prototypes with gradient)',
  async (t) => {
    const options: RilsOptions = {
      ...PARITY_CONFIG,
      seed: 0,
      lr: 1e-3,
      weightDecay: 0.5,
      gatherGrad: true,
      detachTextPrototypes: false,
    };
    const steps = 3;
    // One after the other: on 2 cores, busy processes side by side slow OpenMP down a hundredfold.
    const ranks = await runJob({ options, batchSize: 8, steps, parity: 'trained.safetensors', checkpoints: true });
    const single = await singleProcess(options, steps, () => parityBatch(), 'trained.safetensors');
    t.true(single.stats[0]!.gatedPatches > 0, 'the gate lets images through');
    sameRun(t, ranks, single, steps, 1e-3);
  },
);

serial('gatherGrad: 2 processes × 4 = 1 process × 8 from random init (no gate, clipLocalGrad)', async (t) => {
  const options: RilsOptions = {
    preset: 'micro',
    vocabSize: 300,
    contextLength: 16,
    seed: 7,
    lr: 5e-4,
    gatherGrad: true,
    retrievalGate: false,
    clipLocalGrad: true,
  };
  const steps = 3;
  const ranks = await runJob({ options, batchSize: 8, steps, checkpoints: true });
  const single = await singleProcess(options, steps, (m, s) => globalBatch(m, 8, s));
  sameRun(t, ranks, single, steps, 5e-4);
});

serial(
  'the default (official) mode matches the reference multi-process step (gathered copies constant, per-rank L_rec)',
  async (t) => {
    const options: RilsOptions = { ...PARITY_CONFIG, seed: 0, lr: 1e-3, weightDecay: 0.5 };
    const ranks = await runJob({ options, batchSize: 8, steps: 2, parity: 'trained.safetensors', checkpoints: true });
    for (const r of ranks) t.is(r.status, 0, r.stderr.slice(-2000));
    const oracle = expected['ddp2/official'] as unknown as {
      steps: { loss: number; clip_loss: number; recon_loss: number; clip_acc: number }[];
    };
    oracle.steps.forEach((o, s) => {
      for (const r of ranks) {
        t.true(relErr(r.stats[s]!.loss, o.loss) < 1e-4, `step ${s}: ${r.stats[s]!.loss} vs ${o.loss}`);
        t.true(relErr(r.stats[s]!.reconLoss, o.recon_loss) < 1e-4);
        t.is(r.stats[s]!.clipAcc, o.clip_acc);
      }
    });
    const d = compareWeights(
      ranks[0]!.weights!,
      readTensors('ddp2-official.safetensors') as Map<string, Float32Array>,
      ranks[0]!.gradients,
    );
    t.log(
      `max |Δ| vs the reference's official 2-rank step: ${d.worst.toExponential(2)} (${d.where}); ` +
        `gradients below 1e-6 (${(100 * d.tinyGradientShare).toFixed(2)}% of entries) ${d.tinyGradientWorst.toExponential(2)}`,
    );
    t.true(d.worst < 1e-5, `${d.worst} at ${d.where}`);
    t.true(d.keyBiasWorst <= 2 * 1e-3 * 1.01);
    t.true(d.tinyGradientWorst <= 2 * 2 * 1e-3 && d.tinyGradientShare < 0.01);
  },
);

serial('a rank that dies stops the others quickly, with an error naming it', async (t) => {
  const started = Date.now();
  const [survivor, dead] = await runJob({
    options: { preset: 'micro', vocabSize: 300, contextLength: 16, seed: 1 },
    batchSize: 8,
    steps: 6,
    dieAt: 2,
  });
  t.is(dead!.signal, 'SIGKILL');
  t.is(survivor!.status, 3, survivor!.stderr);
  t.is(survivor!.stats.length, 2, 'the survivor finished the steps before the death, then failed');
  t.regex(survivor!.stderr, /RilsDistributedError: rank 0 of 2: .* failed, so a peer rank has exited or stalled/);
  t.regex(survivor!.stderr, /gone from this machine: rank 1 \(pid \d+\)/);
  t.true(Date.now() - started < 25_000, `took ${Date.now() - started} ms (timeout 30 s: it must not wait for it)`);
});

test('a dead rank not yet reaped by its parent (a zombie) counts as gone', async (t) => {
  // The survivors of a crash learn of it at once, often before the launcher reaps the dead rank.
  // sh starts a child that exits at once, then becomes a process that never reaps it.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5']);
  t.teardown(() => parent.kill());
  const zombie = Number(
    await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString()))),
  );
  await new Promise((r) => setTimeout(r, 300)); // the child exits
  const here = os.hostname();
  const info = {
    rank: 0,
    worldSize: 3,
    peers: [`${here} ${process.pid}`, `${here} ${zombie}`, `${here} ${parent.pid}`],
  };
  t.deepEqual(await lostPeers(info), [`rank 1 (pid ${zombie})`]);
});

serial('ranks with different batch sizes fail alike with a clear error', async (t) => {
  const ranks = await runJob({
    options: { preset: 'micro', vocabSize: 300, contextLength: 16, seed: 1 },
    batchSize: 8,
    steps: 2,
    unequal: true,
  });
  for (const r of ranks) {
    t.is(r.status, 1, r.stderr);
    t.regex(
      r.stderr,
      /RilsInputError: Every rank must train on the same batch size: this rank \([01]\) has [34], the job's range is 3 to 4/,
    );
  }
});

test('torchrun variables and distributed options are checked', async (t) => {
  t.is(distributedFromEnv({}), undefined);
  t.deepEqual(
    distributedFromEnv({ RANK: '1', WORLD_SIZE: '4', MASTER_ADDR: 'node0', MASTER_PORT: '1234', LOCAL_RANK: '1' }),
    { rank: 1, worldSize: 4, masterAddr: 'node0', masterPort: 1234, localRank: 1 },
  );
  t.throws(() => distributedFromEnv({ WORLD_SIZE: '2', RANK: 'x' }), { instanceOf: RilsInputError, message: /RANK/ });
  const bad = (env: Record<string, string>, message: string) =>
    t.throws(() => distributedFromEnv(env), { instanceOf: RilsInputError, message });
  bad({ WORLD_SIZE: '0', RANK: '0' }, 'Expected an integer >= 1 for WORLD_SIZE but received "0"');
  bad({ WORLD_SIZE: '2', RANK: '2' }, 'Expected an integer < WORLD_SIZE (2) for RANK but received "2"');
  bad({ WORLD_SIZE: '2', RANK: '-1' }, 'Expected an integer >= 0 for RANK but received "-1"');
  bad({ WORLD_SIZE: '2.5', RANK: '0' }, 'Expected an integer >= 1 for WORLD_SIZE but received "2.5"');
  bad({ WORLD_SIZE: '2' }, 'Expected an integer >= 0 for RANK but it is not set');
  bad(
    { WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '70000' },
    'Expected a port 1 … 65535 for MASTER_PORT but received "70000"',
  );
  await t.throwsAsync(Rils.create({ preset: 'micro', distributed: { rank: 2, worldSize: 2 } }), {
    instanceOf: RilsInputError,
    message: /rank < worldSize/,
  });
  await t.throwsAsync(Rils.create({ preset: 'micro', device: 'cuda', distributed: { rank: 0, worldSize: 1 } }), {
    instanceOf: RilsInputError,
  });
});

test('allGatherJson of a value JSON cannot hold rejects with a RilsInputError naming the problem', async (t) => {
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  await t.throwsAsync(model.allGatherJson(circular), {
    instanceOf: RilsInputError,
    message: /allGatherJson .*circular structure/,
  });
  await t.throwsAsync(model.allGatherJson({ n: 1n }), {
    instanceOf: RilsInputError,
    message: /allGatherJson .*BigInt/,
  });
  await t.throwsAsync(
    model.allGatherJson(() => 1),
    { instanceOf: RilsInputError, message: /allGatherJson/ },
  );
  t.deepEqual(await model.allGatherJson({ ok: [1, 'two'] }), [{ ok: [1, 'two'] }]);
  model.dispose();
});

serial(
  'rils train --nproc 2 on a folder: rank 0 writes weights, checkpoint and metrics; the same command resumes',
  async (t) => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { writeFileSync, existsSync } = await import('node:fs');
    const sharp = (await import('sharp')).default;
    const { cli } = await import('./helpers/cli.js');
    const rils = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import=tsx', cli, ...args], { timeout: 240_000 });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-nproc-'));
    let i = 0;
    for (const [name, background] of Object.entries({
      red: { r: 230, g: 20, b: 20 },
      blue: { r: 20, g: 20, b: 230 },
    })) {
      for (let k = 0; k < 6; k++, i++) {
        await sharp({ create: { width: 36, height: 36, channels: 3, background } })
          .png()
          .toFile(path.join(dir, `${i}.png`));
        writeFileSync(path.join(dir, `${i}.txt`), `a ${name} square`);
      }
    }
    const [weights, ckpt, metrics] = ['w.safetensors', 'c.safetensors', 'm.jsonl'].map((f) => path.join(dir, f)) as [
      string,
      string,
      string,
    ];
    // One schedule for all three runs (by default it follows --steps, which differ).
    const common = [
      '--data',
      dir,
      '--batch',
      '8',
      '--total-steps',
      '5',
      '--checkpoint',
      ckpt,
      '--metrics',
      metrics,
      '--out',
      weights,
    ];
    const first = await rils('train', '--nproc=2', ...common, '--steps', '3'); // both spellings of --nproc
    t.regex(first.stdout, /step 3\/3 loss/);
    t.regex(first.stdout, /\(2 processes, global batch 8\)/);
    const second = await rils('train', '--nproc', '2', ...common, '--steps', '5');
    t.regex(second.stdout, /resumed from step 3/);
    t.true(existsSync(weights));
    t.is(readFileSync(metrics, 'utf-8').trim().split('\n').length, 5, 'one metrics line per step, from rank 0 only');
    const meta = parseSafetensors(readFileSync(ckpt)).metadata;
    t.is(meta.step, '5');
    const ranks = JSON.parse(meta.ranks!) as { extra: { data: { rng: number; order: number[] } } }[];
    t.is(ranks.length, 2, "the checkpoint holds both ranks' data positions");
    // Each rank drew 5 batches of 4 from its own 6 images (3 epochs + 2): 4 left in its current epoch,
    // in its own order (each rank's data is seeded seed + rank).
    t.deepEqual(
      ranks.map((r) => r.extra.data.order.length),
      [4, 4],
    );
    t.not(ranks[0]!.extra.data.rng, ranks[1]!.extra.data.rng);
    // Resume is exact across processes too: 3 + 2 steps give the weights of 5 straight steps.
    const straight = path.join(dir, 'straight.safetensors');
    await rils(
      'train',
      '--nproc',
      '2',
      '--data',
      dir,
      '--batch',
      '8',
      '--total-steps',
      '5',
      '--steps',
      '5',
      '--out',
      straight,
    );
    t.true(
      readFileSync(straight).equals(readFileSync(weights)),
      'resumed and uninterrupted runs end with the same bytes',
    );
    rmSync(dir, { recursive: true, force: true });
  },
);

serial('a rank whose peers never start fails after one timeout, saying how many ranks came', async (t) => {
  const port = nextPort++;
  const started = performance.now();
  await t.throwsAsync(
    Rils.create({
      preset: 'micro',
      vocabSize: 300,
      seed: 0,
      distributed: { rank: 0, worldSize: 3, masterAddr: '127.0.0.1', masterPort: port, timeoutSeconds: 3 },
    }),
    { instanceOf: RilsDistributedError, message: /1 of 3 ranks joined within 3 s/ },
  );
  const seconds = (performance.now() - started) / 1000;
  t.log(`failed after ${seconds.toFixed(1)} s`);
  t.true(seconds < 4.5, `one timeout (3 s), not two: ${seconds.toFixed(1)} s`); // LibTorch 1.13's waitWorkers made it 2 × 3 + ~3 s
});
