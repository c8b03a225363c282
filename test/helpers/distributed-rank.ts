// One rank of a data-parallel job for test/distributed.test.ts. It trains on its rows of the global
// batches a single process would train on, prints one JSON line of stats per step, and saves its
// weights. A RilsDistributedError is printed and ends the process with status 3.
// Usage (torchrun's variables set): node --import tsx distributed-rank.ts '<RankJob JSON>'
import { Rils, RilsDistributedError, distributedFromEnv, setNumThreads } from '../../lib/index.js';
import type { RilsOptions } from '../../lib/index.js';
import { globalBatch, rowRange, rowsOf } from './batches.js';
import { fixture, parityBatch } from './parity.js';

export interface RankJob {
  options: RilsOptions;
  /** Global batch size of the random batches (unused with `parity`). */
  batchSize: number;
  steps: number;
  /** Where each rank saves its weights: `${out}.rank${rank}`. */
  out: string;
  /** Start from this parity fixture's weights and train on the parity inputs. */
  parity?: string;
  /** Rank 1 kills itself (SIGKILL) before this step. */
  dieAt?: number;
  /** Rank 1 trains on one row fewer than the others. */
  unequal?: boolean;
  /** Checkpoint after every step, to `${out}.step${step}` (collective: rank 0 writes it). */
  checkpoints?: boolean;
}

const job = JSON.parse(process.argv[2]!) as RankJob;
const distributed = distributedFromEnv()!;
setNumThreads(1); // one core per rank: OpenMP threads of two processes contending would crawl
try {
  const model = await Rils.create({ ...job.options, distributed: { ...distributed, timeoutSeconds: 30 } });
  if (job.parity) await model.loadWeights(fixture(job.parity));
  for (let step = 0; step < job.steps; step++) {
    if (step === job.dieAt && distributed.rank === 1) process.kill(process.pid, 'SIGKILL');
    const global = job.parity ? parityBatch() : globalBatch(model, job.batchSize, step);
    const rows = rowsOf(global, distributed.rank, distributed.worldSize);
    const batch = job.unequal && distributed.rank === 1 ? rowRange(rows, 0, rows.batchSize - 1) : rows;
    console.log(JSON.stringify(await model.trainStep(batch)));
    if (job.checkpoints) await model.saveCheckpoint(`${job.out}.step${step}`);
  }
  await model.saveWeights(`${job.out}.rank${distributed.rank}`);
  model.dispose();
} catch (error) {
  console.error(`${(error as Error).name}: ${(error as Error).message}`);
  process.exit(error instanceof RilsDistributedError ? 3 : 1);
}
