// The checkpoint's checksum covers its whole meaning (issue 20, item 8): the header's step, data position,
// options and tensor names too, not only the data. Checkpoints of the previous format still load.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import test from 'ava';

import { Rils, RilsWeightsError } from '../lib/index.js';
import { randomBatch, sameWeights, snapshot } from './helpers/batches.js';

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & {
  __metadata__: Record<string, string>;
};

/** The file with its header JSON changed by `edit` and its data section as it was. */
function rewrite(file: string, out: string, edit: (header: Header) => void): void {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Header;
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(out, Buffer.concat([length, json, bytes.subarray(8 + n)]));
}

async function trainedModel() {
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  await model.trainStep(randomBatch(model, 4));
  return model;
}

test("editing any part of a checkpoint's header makes it fail its checksum; the model is unchanged", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-ckpt-'));
  const model = await trainedModel();
  const file = path.join(dir, 'c.safetensors');
  await model.saveCheckpoint(file, { data: { position: 7 } });
  t.deepEqual(await model.loadCheckpoint(file), { data: { position: 7 } });
  const before = await snapshot(model);
  const swap = (h: Header, a: string, b: string) => ([h[a], h[b]] = [h[b]!, h[a]!]);
  const edits: [string, (h: Header) => void][] = [
    ['step', (h) => (h.__metadata__.step = '9')],
    ['data position', (h) => (h.__metadata__.extra = JSON.stringify({ data: { position: 8 } }))],
    ['training options', (h) => (h.__metadata__.train = h.__metadata__.train!.replace('"lr":', '"lr":1e3+'))],
    ['a metadata entry added', (h) => (h.__metadata__.note = 'x')],
    [
      'two tensors of the same shape swapped',
      (h) => swap(h, 'visual.blocks.0.attn.qkv.weight', 'visual.blocks.1.attn.qkv.weight'),
    ],
    ['moments swapped', (h) => swap(h, 'exp_avg.logit_scale', 'exp_avg_sq.logit_scale')],
  ];
  for (const [what, edit] of edits) {
    const edited = path.join(dir, `${what}.safetensors`);
    rewrite(file, edited, edit);
    await t.throwsAsync(
      model.loadCheckpoint(edited),
      { instanceOf: RilsWeightsError, message: /does not match the checksum written with it/ },
      what,
    );
  }
  t.true(sameWeights(before, await snapshot(model)));
  t.is(model.step, 1);
  const unsigned = path.join(dir, 'unsigned.safetensors');
  rewrite(file, unsigned, (h) => delete (h.__metadata__ as Record<string, string | undefined>).sha256);
  await t.throwsAsync(model.loadCheckpoint(unsigned), { instanceOf: RilsWeightsError, message: /checksum/ });
  model.dispose();
});

test('a checkpoint of the previous format (rils-checkpoint-v1, data checksum only) still loads, and is still checked', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rils-ckpt-'));
  const model = await trainedModel();
  const file = path.join(dir, 'c.safetensors');
  await model.saveCheckpoint(file, { data: 3 });
  const expected = await snapshot(model);
  const v1 = path.join(dir, 'v1.safetensors');
  const bytes = readFileSync(file);
  const data = bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)));
  rewrite(file, v1, (h) =>
    Object.assign(h.__metadata__, {
      format: 'rils-checkpoint-v1',
      sha256: createHash('sha256').update(data).digest('hex'),
    }),
  );
  const fresh = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 5 });
  t.deepEqual(await fresh.loadCheckpoint(v1), { data: 3 });
  t.is(fresh.step, 1);
  t.true(sameWeights(expected, await snapshot(fresh)));
  const corrupt = readFileSync(v1);
  corrupt[corrupt.length - 100]! ^= 1;
  writeFileSync(v1, corrupt);
  await t.throwsAsync(fresh.loadCheckpoint(v1), { instanceOf: RilsWeightsError, message: /checksum/ });
  model.dispose();
  fresh.dispose();
});
