// rils against onnxruntime-node on rils's own ONNX export of the same model: encode images/s of CLIP
// ViT-B/32 (random weights, seed 0) at batch 32, rils in fp32 and (where the CPU has avx512_bf16 or
// AMX and the addon can) in bf16, onnxruntime-node fp32 on onnx/vision_model.onnx (all graph
// optimisations), same threads, each side in its own process, one run; plus the cosine between the
// sides' embeddings. Usage: node --import tsx bench/onnx.ts [--quick]; or `side rils|onnxruntime DIR
// BATCH STEPS THREADS [fp32|bf16]`, one side's measurement as JSON (what the driver runs).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as ort from 'onnxruntime-node';

import { Rils, runtimeInfo, setNumThreads } from '../lib/index.js';

const PRESET = 'clip_vit_b32';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Times `steps` calls after one warm-up; returns the median ms and the first embedding. */
async function timed(steps: number, fn: () => Promise<Float32Array>): Promise<{ encode_ms: number; first: number[] }> {
  const first = await fn();
  const ms: number[] = [];
  for (let k = 0; k < steps; k++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return { encode_ms: median(ms), first: Array.from(first.subarray(0, 512)) };
}

async function side(
  kind: string,
  dir: string,
  batch: number,
  steps: number,
  threads: number,
  precision: 'fp32' | 'bf16',
) {
  const S = 224,
    images = Float32Array.from({ length: batch * 3 * S * S }, (_, i) => Math.sin(i * 0.37));
  if (kind === 'onnxruntime') {
    const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'vision_model.onnx'), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
    const pixels = new ort.Tensor('float32', images, [batch, 3, S, S]);
    return timed(steps, async () => (await session.run({ pixel_values: pixels })).image_embeds!.data as Float32Array);
  }
  setNumThreads(threads);
  const model = await Rils.create({ preset: PRESET, seed: 0, reconWeight: 0, precision });
  return timed(
    steps,
    async () => (await model.encodeImages({ images, batchSize: batch }, { normalize: false })).embeddings,
  );
}

async function driver(quick: boolean): Promise<void> {
  const threads = Number(process.env.RILS_BENCH_THREADS ?? os.availableParallelism()),
    batch = 32,
    steps = quick ? 2 : 4;
  const cache = process.env.RILS_BENCH_CACHE ?? path.join(os.tmpdir(), 'rils-bench-cache');
  const dir = path.join(cache, `onnx-${PRESET}`);
  if (!existsSync(path.join(dir, 'onnx', 'vision_model.onnx'))) {
    mkdirSync(cache, { recursive: true });
    const model = await Rils.create({ preset: PRESET, seed: 0, reconWeight: 0 });
    await model.exportOnnx(dir, { force: true });
    model.dispose();
  }
  const run = (kind: string, precision = 'fp32', addon?: string) =>
    JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--import=tsx',
          fileURLToPath(import.meta.url),
          'side',
          kind,
          dir,
          String(batch),
          String(steps),
          String(threads),
          precision,
        ],
        { encoding: 'utf-8', env: addon ? { ...process.env, RILS_ADDON: addon } : process.env },
      )
        .trim()
        .split('\n')
        .pop()!,
    ) as { encode_ms: number; first: number[] };
  const theirs = run('onnxruntime'),
    ours = run('rils');
  // bf16 needs an addon built against LibTorch >= 2: this one, or the build of scripts/test-against.sh.
  const torch2 = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../build-torch2/Release/rils.node');
  const bf16 = runtimeInfo().cpuBf16.available
    ? run('rils', 'bf16')
    : existsSync(torch2)
      ? run('rils', 'bf16', torch2)
      : undefined;
  const perS = (r: { encode_ms: number }) => (batch * 1000) / r.encode_ms;
  const cos = (a: number[], b: number[]) =>
    a.reduce((s, x, i) => s + x * b[i]!, 0) / Math.hypot(...a) / Math.hypot(...b);
  console.log(
    `${PRESET} encode B${batch}, ${threads} threads, images/s: onnxruntime-node ${ort.env.versions.node} fp32 ` +
      `${perS(theirs).toFixed(1)}; rils fp32 ${perS(ours).toFixed(1)} (×${(perS(ours) / perS(theirs)).toFixed(2)}, cosine ` +
      `${cos(ours.first, theirs.first).toFixed(6)})${
        bf16
          ? `; rils bf16 ${perS(bf16).toFixed(1)} (×${(perS(bf16) / perS(theirs)).toFixed(2)}, ` +
            `cosine ${cos(bf16.first, theirs.first).toFixed(6)})`
          : `; rils bf16: not run (${runtimeInfo().cpuBf16.reason})`
      }`,
  );
}

const [mode, kind, dir, batch, steps, threads, precision] = process.argv.slice(2);
if (mode === 'side') {
  console.log(
    JSON.stringify(
      await side(kind!, dir!, Number(batch), Number(steps), Number(threads), precision === 'bf16' ? 'bf16' : 'fp32'),
    ),
  );
} else {
  await driver(process.argv.includes('--quick'));
}
