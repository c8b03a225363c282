// npm run bench: rils against the PyTorch reference (../shared/reference), side by side in one run,
// same presets, batch sizes and thread count, each side in its own process. Prints a table and
// writes bench/results.json. See bench/README.md.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const reference = path.resolve(here, '../../shared/reference/rils_ref.py');
const threads = Number(process.env.RILS_BENCH_THREADS ?? os.availableParallelism());
const quick = process.argv.includes('--quick');
const cases = [
  { preset: 'micro', batch: 64, steps: quick ? 3 : 10 },
  { preset: 'vit_ti16', batch: 32, steps: quick ? 2 : 5 },
  { preset: 'vit_s16', batch: 16, steps: quick ? 2 : 4 },
];
const json = (cmd: string, args: string[]) => {
  const out = execFileSync(cmd, args, { encoding: 'utf-8', maxBuffer: 1 << 24 }).trim().split('\n');
  return JSON.parse(out[out.length - 1]!) as Record<string, number>;
};

const rows = [];
for (const c of cases) {
  const args = [c.preset, String(c.batch), String(c.steps), String(threads)];
  const ours = json(process.execPath, ['--import=tsx', path.join(here, 'ours.ts'), ...args]);
  const refTrain = json('/usr/bin/python3', [reference, 'bench', '--preset', c.preset, '--batch', String(c.batch),
    '--steps', String(c.steps), '--threads', String(threads)]);
  const refEncode = json('/usr/bin/python3', [path.join(here, 'reference_encode.py'), ...args]);
  const flops = refTrain.flops_per_step_estimate!;
  const row = {
    preset: c.preset, batch: c.batch, threads,
    train_images_per_s: { rils: (c.batch * 1000) / ours.train_ms!, pytorch: refTrain.images_per_s! },
    encode_images_per_s: { rils: (c.batch * 1000) / ours.encode_ms!, pytorch: (c.batch * 1000) / refEncode.encode_ms! },
    peak_rss_mb: { rils: ours.peak_rss_mb!, pytorch: Math.max(refTrain.peak_rss_mb!, refEncode.peak_rss_mb!) },
    // Model FLOPs of a full RILS step (the reference's estimate) over the step time.
    train_gflops: { rils: flops / ours.train_ms! / 1e6, pytorch: refTrain.achieved_gflops! },
    matmul_peak_gflops: refEncode.matmul_gflops!,
    gated_fraction_of_batch: ours.gated_fraction!,
  };
  rows.push(row);
  const r = (o: { rils: number; pytorch: number }) => (o.rils / o.pytorch).toFixed(2);
  console.log(`${c.preset} B${c.batch}: trainStep ${row.train_images_per_s.rils.toFixed(1)} vs ${row.train_images_per_s.pytorch.toFixed(1)} img/s ` +
    `(×${r(row.train_images_per_s)}), encode ${row.encode_images_per_s.rils.toFixed(1)} vs ${row.encode_images_per_s.pytorch.toFixed(1)} img/s ` +
    `(×${r(row.encode_images_per_s)}), RSS ${row.peak_rss_mb.rils.toFixed(0)} vs ${row.peak_rss_mb.pytorch.toFixed(0)} MB, ` +
    `${row.train_gflops.rils.toFixed(1)} GFLOP/s = ${((100 * row.train_gflops.rils) / row.matmul_peak_gflops).toFixed(0)}% of the ` +
    `${row.matmul_peak_gflops.toFixed(1)} GFLOP/s matmul peak (PyTorch ${((100 * row.train_gflops.pytorch) / row.matmul_peak_gflops).toFixed(0)}%)`);
}
writeFileSync(path.join(here, 'results.json'), `${JSON.stringify({ date: new Date().toISOString(), threads, rows }, null, 2)}\n`);
console.log(`\nwritten: bench/results.json`);
