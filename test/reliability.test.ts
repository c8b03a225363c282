// Memory stays flat over long loops, and the safetensors reader survives random and mutated input.
import test from 'ava';

import { Rils, RilsWeightsError, parseSafetensors, runtimeInfo } from '../lib/index.js';
import { Random } from '../lib/data/augment.js';
import { randomBatch } from './helpers/batches.js';

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

test('RSS stays flat over 1000 encodeImages and 300 trainStep calls', async (t) => {
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  const batch = randomBatch(model, 4);
  const encode = async (n: number) => {
    for (let i = 0; i < n; i++) await model.encodeImages({ images: batch.images, batchSize: 4 }, { patchTokens: true });
  };
  const train = async (n: number) => {
    for (let i = 0; i < n; i++) await model.trainStep(batch);
  };
  await encode(100); // warm-up: allocator pools, optimizer state
  await train(30);
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const base = rssMb();
  await encode(1000);
  gc?.();
  const afterEncode = rssMb();
  await train(300);
  gc?.();
  const afterTrain = rssMb();
  t.log(
    `RSS: ${base.toFixed(0)} MB → ${afterEncode.toFixed(0)} MB after 1000 encodeImages → ${afterTrain.toFixed(0)} MB after 300 trainStep`,
  );
  // A leak of even one output (4×64×128 floats = 128 KB) per call would add 125 MB over 1000 calls.
  t.true(afterEncode - base < 60, `encode: ${base.toFixed(0)} → ${afterEncode.toFixed(0)} MB`);
  t.true(afterTrain - afterEncode < 60, `train: ${afterEncode.toFixed(0)} → ${afterTrain.toFixed(0)} MB`);
  model.dispose();
});

test('the safetensors reader never crashes or hangs on random and mutated files', (t) => {
  const r = new Random(123);
  const header = Buffer.from(
    JSON.stringify({
      __metadata__: { format: 'x' },
      a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      b: { dtype: 'I64', shape: [], data_offsets: [24, 32] },
    }),
  );
  const good = Buffer.concat([Buffer.alloc(8), header, Buffer.alloc(32, 1)]);
  good.writeBigUInt64LE(BigInt(header.length));
  t.is(parseSafetensors(good).tensors.size, 2);
  let refused = 0;
  for (let i = 0; i < 5000; i++) {
    const bytes =
      i % 2 === 0
        ? Uint8Array.from({ length: r.int(200) }, () => r.int(256))
        : (() => {
            const m = Buffer.from(good);
            for (let k = 0; k < 1 + r.int(4); k++) m[r.int(m.length)] = r.int(256);
            return m;
          })();
    try {
      const f = parseSafetensors(bytes);
      for (const e of f.tensors.values())
        t.true(e.bytes.byteOffset + e.bytes.byteLength <= bytes.byteOffset + bytes.byteLength);
    } catch (error) {
      if (!(error instanceof RilsWeightsError)) throw error;
      refused++;
    }
  }
  t.true(refused > 2500);
});

// Serial: ava runs the other tests of a file concurrently, and their outputs would count too.
test.serial('finalizers run: unreachable models and outputs free their native memory', async (t) => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const collect = async () => {
    for (let i = 0; i < 10; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20)); // finalizers run from the event loop
    }
  };
  await collect();
  const before = runtimeInfo();
  await (async () => {
    // Never disposed: once this scope ends, only the GC can free them.
    const models: Rils[] = [];
    const outputs: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: i });
      const batch = randomBatch(model, 4);
      await model.trainStep(batch);
      outputs.push(await model.encodeImages({ images: batch.images, batchSize: 4 }, { patchTokens: true }));
      models.push(model);
    }
    t.is(runtimeInfo().liveModels, before.liveModels + 3);
    t.is(runtimeInfo().liveOutputs, before.liveOutputs + 6, 'embeddings and patch tokens of 3 calls');
  })();
  await collect();
  const after = runtimeInfo();
  t.log(
    `live models ${before.liveModels} → ${after.liveModels}, live outputs ${before.liveOutputs} → ${after.liveOutputs}`,
  );
  t.is(after.liveModels, before.liveModels);
  t.is(after.liveOutputs, before.liveOutputs);
});

test.serial(
  'freed CPU tensors are cached for reuse, the same blocks each call, and dispose() returns them',
  async (t) => {
    // scripts/asan.sh runs the suite with LibTorch's own allocator: then nothing is cached.
    const caching = process.env.RILS_CPU_ALLOCATOR !== 'libtorch';
    const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
    const batch = randomBatch(model, 32);
    const cached: number[] = [];
    for (let i = 0; i < 3; i++) {
      await model.encodeImages({ images: batch.images, batchSize: 32 });
      cached.push(runtimeInfo().cachedCpuBytes);
    }
    t.log(`cached after each encode: ${cached.map((b) => (b / 2 ** 20).toFixed(1)).join(', ')} MiB`);
    if (caching) t.true(cached[0]! > 0, 'activations of 1 MiB or more are kept');
    else t.is(cached[0], 0, "RILS_CPU_ALLOCATOR=libtorch: LibTorch's allocator, no cache");
    t.is(cached[2], cached[1], 'the same sizes are handed out again: the cache does not grow');
    model.dispose();
    await new Promise((r) => setImmediate(r)); // the worker's share is released on the JS thread
    t.is(runtimeInfo().liveModels, 0);
    t.is(runtimeInfo().cachedCpuBytes, 0);
  },
);

test.serial('dispose() frees a model at once; a call in flight keeps it until it ends', async (t) => {
  const base = runtimeInfo().liveModels;
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  t.is(runtimeInfo().liveModels, base + 1);
  const step = model.trainStep(randomBatch(model, 4));
  model.dispose();
  t.is(runtimeInfo().liveModels, base + 1, 'the running step still holds it');
  await step;
  await new Promise((r) => setImmediate(r)); // the worker's share is released on the JS thread
  t.is(runtimeInfo().liveModels, base);
  const idle = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  idle.dispose();
  t.is(runtimeInfo().liveModels, base, 'an idle model is freed by dispose() itself');
});

test('exiting while a step runs ends the process cleanly, with its exit code', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const script = `
    import { Rils } from ${JSON.stringify(new URL('../lib/index.js', import.meta.url).href)};
    import { randomBatch } from ${JSON.stringify(new URL('./helpers/batches.js', import.meta.url).href)};
    const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
    const batch = randomBatch(model, 16);
    for (let i = 0; i < 4; i++) void model.trainStep(batch);
    setTimeout(() => { if (process.argv[1] === 'throw') throw new Error('boom'); process.exit(3); }, Number(process.argv[2]));
  `;
  // Without the exit gate (native/napi/executor.h) every one of these ended in SIGSEGV.
  for (const [how, delay] of [
    ['exit', 5],
    ['exit', 40],
    ['throw', 20],
    ['exit', 90],
  ] as const) {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, how, String(delay)],
      { encoding: 'utf8' },
    );
    t.is(r.signal, null, `${how} after ${delay} ms: ${r.stderr.slice(-300)}`);
    t.is(r.status, how === 'throw' ? 1 : 3);
  }
});
