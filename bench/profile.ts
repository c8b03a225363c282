// Where one trainStep or encodeImages spends its time: the call runs under Rils.profile() after
// warm-up calls, and the trace is summed by operator (self time: an event's duration less that of
// the events nested in it on the same thread).
// Usage: node --import tsx bench/profile.ts PRESET BATCH train|encode [THREADS] [TRACE.json] [--bf16] [--no-gate]
// (--bf16: precision 'bf16'; --no-gate: retrievalGate false, the reference's work)
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Rils, setNumThreads } from '../lib/index.js';
import { syntheticBatch } from './batches.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const [preset = 'micro', batch = '64', what = 'train', threads = String(os.availableParallelism()), file] = args;
const precision = process.argv.includes('--bf16') ? 'bf16' : 'fp32',
  retrievalGate = !process.argv.includes('--no-gate');
if (what !== 'train' && what !== 'encode') throw new Error(`Expected train or encode, got ${what}`);
setNumThreads(Number(threads));
const model = await Rils.create({
  preset: preset as 'micro',
  seed: 0,
  lr: 1e-4,
  weightDecay: 0.1,
  precision,
  retrievalGate,
});
const data = syntheticBatch(model, Number(batch), 1);
const call = (): Promise<unknown> =>
  what === 'train' ? model.trainStep(data) : model.encodeImages({ images: data.images, batchSize: data.batchSize });
for (let i = 0; i < 2; i++) await call(); // warm-up: first-call allocations and thread start-up
const trace = file ?? path.join(os.tmpdir(), `rils-${preset}-${what}.json`);
const start = performance.now();
await model.profile(trace, call);
const wall = performance.now() - start;
model.dispose();

interface TraceEvent {
  name: string;
  ph: string;
  ts: number;
  dur: number;
  tid: number | string;
}
const events = (JSON.parse(readFileSync(trace, 'utf-8')) as TraceEvent[]).filter((e) => e.ph === 'X');
const self = new Map<string, { ms: number; calls: number }>();
const byThread = new Map<number | string, TraceEvent[]>();
for (const e of events) byThread.set(e.tid, [...(byThread.get(e.tid) ?? []), e]);
for (const list of byThread.values()) {
  list.sort((a, b) => a.ts - b.ts || b.dur - a.dur);
  const stack: { end: number; name: string; child: number; dur: number }[] = [];
  const close = (until: number) => {
    while (stack.length && stack.at(-1)!.end <= until) {
      const e = stack.pop()!;
      const entry = self.get(e.name) ?? { ms: 0, calls: 0 };
      entry.ms += (e.dur - e.child) / 1000;
      entry.calls += 1;
      self.set(e.name, entry);
    }
  };
  for (const e of list) {
    close(e.ts);
    if (stack.length) stack.at(-1)!.child += e.dur;
    stack.push({ end: e.ts + e.dur, name: e.name, child: 0, dur: e.dur });
  }
  close(Infinity);
}
const total = [...self.values()].reduce((s, e) => s + e.ms, 0);
console.log(
  `${preset} B${batch} ${what} ${precision}${retrievalGate ? '' : ' gate off'}: ${wall.toFixed(0)} ms with the profiler on, ${total.toFixed(0)} ms in operators; trace: ${trace}`,
);
for (const [name, e] of [...self]
  .sort((a, b) => b[1].ms - a[1].ms)
  .slice(0, Number(process.env.RILS_PROFILE_TOP ?? 15))) {
  console.log(
    `${e.ms.toFixed(1).padStart(9)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}% ${String(e.calls).padStart(6)}  ${name}`,
  );
}
