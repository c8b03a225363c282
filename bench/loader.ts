// The loader bench's rils side: WebDatasetSource over the same shards as bench/loader_reference.py,
// `workers` readers, each image's RandomResizedCrop (224, scale 0.5–1) decoded natively on `workers`
// threads (libjpeg-turbo: lib/data/crops.ts; other formats through sharp on libuv's pool,
// UV_THREADPOOL_SIZE set by bench/run.ts to the workers), captions CLIP-tokenised (77 ids);
// 2 × workers batches in flight, as DataLoader's prefetch_factor 2. Batches are
// uint8 HWC: rils normalises them in the training step, on the device. Prints one JSON line (the fields
// of loader_reference.py). Usage: node --import tsx bench/loader.ts BATCH WORKERS IMAGES SHARD...
import { ClipTokenizer, WebDatasetSource, runtimeInfo } from '../lib/index.js';

const [batch, workers, images] = process.argv.slice(2, 5).map(Number) as [number, number, number];
const shards = process.argv.slice(5);
const tokenizer = await ClipTokenizer.load(undefined, { contextLength: 77 });
const source = new WebDatasetSource({
  shards,
  tokenizer,
  batchSize: batch,
  size: 224,
  seed: 0,
  workers,
  shuffle: 0,
  cropScale: [0.5, 1],
  decodeThreads: workers,
});
const c0 = process.cpuUsage();
const t0 = performance.now();
const inFlight = Array.from({ length: 2 * workers }, () => source.next());
let seen = 0,
  first = 0,
  firstImages = 0;
while (seen < images) {
  const b = await inFlight.shift()!;
  inFlight.push(source.next());
  seen += b.batchSize;
  if (!first) {
    first = performance.now();
    firstImages = seen;
  }
}
const end = performance.now();
const cpu = process.cpuUsage(c0);
await Promise.allSettled(inFlight);
console.log(
  JSON.stringify({
    images: seen,
    wall_s: (end - t0) / 1000,
    steady_images: seen - firstImages,
    steady_s: (end - first) / 1000,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    skipped: source.skipped,
    uv_threadpool: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    jpeg_crops: runtimeInfo().jpegCrops,
  }),
);
