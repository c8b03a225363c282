// Evaluation throughput: images/s of embedImages on PNG files (decode on sharp's pool overlapping
// the encoder) against encodeImages alone on the same images already decoded, in the same chunks;
// and against decoding then encoding each chunk in turn (no overlap). Peak RSS of the streaming run
// shows memory bounded by the chunks (plus the embeddings), whatever the number of images.
// Run: node --import tsx bench/eval-throughput.ts [--images 3000] [--side 64] [--preset micro] [--chunk 64] [--rounds 3]
//      [--threads N] [--skip-baseline]
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { Rils, decodeImage, embedImages, runtimeInfo, setNumThreads } from '../lib/index.js';
import { Random } from '../lib/data/augment.js';
import type { PresetName } from '../lib/index.js';

const { values: a } = parseArgs({
  options: {
    images: { type: 'string', default: '3000' },
    side: { type: 'string', default: '64' },
    preset: { type: 'string', default: 'micro' },
    chunk: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    'skip-baseline': { type: 'boolean', default: false },
    threads: { type: 'string' },
  },
});
const count = Number(a.images),
  side = Number(a.side),
  chunk = Number(a.chunk),
  rounds = Number(a.rounds);

/** `count` PNGs of noise with a coloured disc, `side` pixels square, in 10 class folders. */
async function makeImages(dir: string): Promise<string[]> {
  const rng = new Random(0),
    files: string[] = [];
  for (let c = 0; c < 10; c++) mkdirSync(path.join(dir, `class_${c}`));
  for (let i = 0; i < count; i += 64) {
    await Promise.all(
      Array.from({ length: Math.min(64, count - i) }, async (_, k) => {
        const n = i + k,
          px = Buffer.alloc(side * side * 3);
        for (let p = 0; p < px.length; p++) px[p] = Math.floor(rng.next() * 64);
        const disc = `<svg width="${side}" height="${side}"><circle cx="${side / 2}" cy="${side / 2}" r="${side / 3}" fill="hsl(${36 * (n % 10)},80%,50%)"/></svg>`;
        const file = path.join(dir, `class_${n % 10}`, `${n}.png`);
        await sharp(px, { raw: { width: side, height: side, channels: 3 } })
          .composite([{ input: Buffer.from(disc) }])
          .png()
          .toFile(file);
        files[n] = file;
      }),
    );
  }
  return files;
}

/** Peak RSS (MB) while `fn` runs, sampled every 20 ms. */
async function peakRss<T>(fn: () => Promise<T>): Promise<[T, number]> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const out = await fn();
    return [out, Math.max(peak, process.memoryUsage().rss) / 2 ** 20];
  } finally {
    clearInterval(timer);
  }
}

if (a.threads) setNumThreads(Number(a.threads)); // fewer encoder threads than cores leaves room for decoding
const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-eval-bench-'));
const model = await Rils.create({ preset: a.preset as PresetName, vocabSize: 300, contextLength: 16, seed: 0 });
const S = model.config.imageSize;
console.log(
  `eval throughput: ${count} PNGs ${side}×${side} → ${a.preset} (${S}×${S}), chunks of ${chunk}, ${runtimeInfo().threads} threads, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 4}`,
);
let started = performance.now();
const files = await makeImages(dir);
console.log(
  `made in ${((performance.now() - started) / 1000).toFixed(1)} s; rss before ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB`,
);

let decoded: Uint8Array | undefined;
if (!a['skip-baseline']) {
  decoded = new Uint8Array(count * S * S * 3);
  await Promise.all(files.map(async (f, i) => decoded!.set(await decodeImage(f, S), i * S * S * 3)));
}

/** encodeImages alone, chunk after chunk, on the images already decoded. */
async function encodeOnly(): Promise<number> {
  const t0 = performance.now(),
    px = S * S * 3;
  for (let i = 0; i < count; i += chunk) {
    const n = Math.min(chunk, count - i);
    await model.encodeImages({ images: decoded!.subarray(i * px, (i + n) * px), batchSize: n });
  }
  return count / ((performance.now() - t0) / 1000);
}

/** Decode a chunk, then encode it, then the next: no overlap. */
async function serial(): Promise<number> {
  const t0 = performance.now(),
    px = S * S * 3;
  for (let i = 0; i < count; i += chunk) {
    const part = files.slice(i, i + chunk),
      images = new Uint8Array(part.length * px);
    await Promise.all(part.map(async (f, k) => images.set(await decodeImage(f, S), k * px)));
    await model.encodeImages({ images, batchSize: part.length });
  }
  return count / ((performance.now() - t0) / 1000);
}

// Alternating runs: other processes on the machine slow neighbouring runs alike, so each round's
// ratio is reported, with the median, besides the best of each.
const best = { encode: 0, pipeline: 0, serial: 0 };
const ratios: number[] = [];
let rss = 0;
for (let r = 0; r < rounds; r++) {
  const encode = decoded ? await encodeOnly() : NaN;
  started = performance.now();
  const [out, peak] = await peakRss(() => embedImages(model, files, { chunkSize: chunk }));
  const pipeline = out.count / ((performance.now() - started) / 1000);
  rss = Math.max(rss, peak);
  const plain = decoded ? await serial() : NaN;
  [best.encode, best.pipeline, best.serial] = [
    Math.max(best.encode, encode || 0),
    Math.max(best.pipeline, pipeline),
    Math.max(best.serial, plain || 0),
  ];
  ratios.push(pipeline / encode);
  console.log(
    `round ${r + 1}: encodeImages alone ${encode.toFixed(0)} img/s, embedImages ${pipeline.toFixed(0)} img/s ` +
      `(ratio ${(pipeline / encode).toFixed(3)}), decode-then-encode ${plain.toFixed(0)} img/s`,
  );
}
const median = [...ratios].sort((x, y) => x - y)[Math.floor((ratios.length - 1) / 2)]!;
console.log(
  `best: encodeImages alone ${best.encode.toFixed(0)}, embedImages ${best.pipeline.toFixed(0)}, decode-then-encode ${best.serial.toFixed(0)} img/s; ` +
    `embedImages / encodeImages alone: ${(best.pipeline / best.encode).toFixed(3)} (best / best), median of rounds ${median.toFixed(3)}; ` +
    `decode-then-encode / encodeImages alone ${(best.serial / best.encode).toFixed(3)}; peak RSS of embedImages ${rss.toFixed(0)} MB`,
);
model.dispose();
rmSync(dir, { recursive: true, force: true });
