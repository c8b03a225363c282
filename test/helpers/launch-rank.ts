// One rank for test/launch.test.ts, started by launchLocalRanks: joins the job with the timeout in
// argv[3] (seconds), trains micro steps until it is stopped, and writes its pid to `${argv[2]}/rank<r>.pid`
// once it trains. A RilsDistributedError is printed and ends the process with status 3. With argv[4]
// 'stuck', rank 1 then hangs where no signal handler can run, and ignores SIGTERM: only SIGKILL ends it.
import { writeFileSync } from 'node:fs';

import { Rils, RilsDistributedError, distributedFromEnv, setNumThreads } from '../../lib/index.js';
import { randomBatch } from './batches.js';

const [dir, timeoutSeconds] = [process.argv[2]!, Number(process.argv[3])];
const distributed = distributedFromEnv()!;
setNumThreads(1);
try {
  const model = await Rils.create({
    preset: 'micro',
    vocabSize: 300,
    contextLength: 16,
    seed: 0,
    distributed: { ...distributed, timeoutSeconds },
  });
  const batch = randomBatch(model, 2);
  await model.trainStep(batch);
  writeFileSync(`${dir}/rank${distributed.rank}.pid`, String(process.pid));
  if (process.argv[4] === 'stuck' && distributed.rank === 1) {
    process.on('SIGTERM', () => undefined);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // blocks this thread for good
  }
  for (;;) await model.trainStep(batch);
} catch (error) {
  console.error(`rank ${distributed.rank}: ${String(error)}`);
  process.exit(error instanceof RilsDistributedError ? 3 : 1);
}
