// Pretrained CLIP in rils against clip_ref.py (../shared/reference) on the same PyTorch: encodeImages
// of clip_vit_b16 at batch 32 (images/s, peak RSS), and reading a clip_vit_l14 checkpoint (time, peak
// RSS against the weights' size). Each side in its own process. The checkpoints (OpenAI/open_clip
// safetensors with random weights, 0.6 and 1.7 GB) are made once by clip_ref into RILS_BENCH_CACHE.
// Usage: node --import tsx bench/clip.ts [--quick]; or with `encode FILE BATCH STEPS THREADS` /
// `load FILE THREADS`, one side's measurement as JSON (what the driver runs).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Rils, setNumThreads } from '../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const peakRssMb = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf-8'))![1]) / 1024;

async function side(mode: string, file: string, rest: string[]): Promise<Record<string, number>> {
  setNumThreads(Number(rest[rest.length - 1]));
  const started = performance.now();
  const model = await Rils.fromPretrained(file);
  const out: Record<string, number> = { load_s: (performance.now() - started) / 1000 };
  if (mode === 'encode') {
    const [batch, steps] = [Number(rest[0]), Number(rest[1])];
    const S = model.config.imageSize;
    const images = new Float32Array(batch * 3 * S * S).map((_, i) => Math.sin(i * 0.37));
    await model.encodeImages({ images, batchSize: batch });
    const times = [];
    for (let k = 0; k < steps; k++) {
      const t = performance.now();
      await model.encodeImages({ images, batchSize: batch });
      times.push(performance.now() - t);
    }
    out.encode_ms = times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
  }
  out.peak_rss_mb = peakRssMb();
  model.dispose();
  return out;
}

const [mode, file, ...rest] = process.argv.slice(2);
if (mode === 'encode' || mode === 'load') {
  console.log(JSON.stringify(await side(mode, file!, rest)));
} else {
  await driver(process.argv.includes('--quick'));
}

/** The checkpoint of a clip_ref preset, made once. */
function checkpoint(python: string, preset: string): string {
  const cache = process.env.RILS_BENCH_CACHE ?? path.join(os.tmpdir(), 'rils-bench-cache');
  mkdirSync(cache, { recursive: true });
  const file = path.join(cache, `${preset}.safetensors`);
  if (!existsSync(file)) {
    execFileSync(
      python,
      [
        path.resolve(here, '../../shared/reference/clip_ref.py'),
        'init',
        '--preset',
        preset,
        '--seed',
        '0',
        '--format',
        'openai',
        '--out',
        file,
      ],
      { stdio: 'inherit' },
    );
  }
  return file;
}

async function driver(quick: boolean): Promise<void> {
  const python = process.env.RILS_BENCH_PYTHON ?? '/usr/bin/python3';
  const threads = String(Number(process.env.RILS_BENCH_THREADS ?? os.availableParallelism()));
  const json = (cmd: string, args: string[]) =>
    JSON.parse(execFileSync(cmd, args, { encoding: 'utf-8' }).trim().split('\n').pop()!) as Record<string, number>;
  const ours = (args: string[]) => json(process.execPath, ['--import=tsx', fileURLToPath(import.meta.url), ...args]);
  const theirs = (args: string[]) => json(python, [path.join(here, 'reference_clip.py'), ...args]);
  const b16 = checkpoint(python, 'clip_vit_b16'),
    batch = '32',
    steps = quick ? '2' : '4';
  const [a, b] = [ours(['encode', b16, batch, steps, threads]), theirs(['encode', b16, batch, steps, threads])];
  console.log(
    `clip_vit_b16 encodeImages B${batch}, ${threads} threads: ${(32000 / a.encode_ms!).toFixed(1)} vs ` +
      `${(32000 / b.encode_ms!).toFixed(1)} img/s (×${(b.encode_ms! / a.encode_ms!).toFixed(2)}), peak RSS ${a.peak_rss_mb!.toFixed(0)} vs ` +
      `${b.peak_rss_mb!.toFixed(0)} MB (rils vs clip_ref on PyTorch ${String((b as unknown as { torch: string }).torch)}, fp32)`,
  );
  if (quick) return;
  const l14 = checkpoint(python, 'clip_vit_l14'),
    size = statSync(l14).size / 2 ** 20;
  const [c, d] = [ours(['load', l14, threads]), theirs(['load', l14, threads])];
  console.log(
    `clip_vit_l14 checkpoint of ${size.toFixed(0)} MB read: ${c.load_s!.toFixed(1)} vs ${d.load_s!.toFixed(1)} s, peak RSS ` +
      `${c.peak_rss_mb!.toFixed(0)} MB = ${(c.peak_rss_mb! / size).toFixed(2)} × the weights vs ${d.peak_rss_mb!.toFixed(0)} MB ` +
      `= ${(d.peak_rss_mb! / size).toFixed(2)} × (rils vs clip_ref)`,
  );
}
