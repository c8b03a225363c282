// The weight-layout registry (lib/weights/layouts.ts) and its one loading path: rils's own files
// stream in as CLIP checkpoints do (never read whole), fromWeights sends every CLIP layout to
// fromPretrained, rils's files must hold every parameter (the feature decoder too) and the fixed
// tables rils computes itself, and every place that offers layouts to write offers the registry's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { Rils, RilsInputError, RilsWeightsError, parseSafetensors, writeSafetensors } from '../lib/index.js';
import type { SafetensorsDtype } from '../lib/index.js';
import { helpText } from '../lib/cli/args.js';
import { convertCommand } from '../lib/cli/convert.js';
import { trainCommand } from '../lib/cli/train.js';
import { LAYOUTS, SAVE_LAYOUTS } from '../lib/weights/layouts.js';
import { BATCH_BYTES } from '../lib/weights/load.js';
import type { TensorLoad } from '../lib/weights/load.js';
import { snapshot } from './helpers/batches.js';

const clip = path.resolve(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'clip');
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'rils-layouts-'));

/** A rils weight file rewritten tensor by tensor (null drops one). */
async function rewritten(from: string, to: string, change: (name: string, data: Uint8Array) => Uint8Array | null) {
  const f = parseSafetensors(readFileSync(from));
  const tensors = [...f.tensors].flatMap(([name, t]) => {
    const data = change(name, new Uint8Array(t.bytes).slice());
    return data ? [{ name, dtype: t.dtype as SafetensorsDtype, shape: t.shape, data }] : [];
  });
  await writeSafetensors(to, tensors, f.metadata);
}

// Serial: it replaces Rils.prototype's loaders while it runs.
test.serial(
  'a rils weight file streams in, 64 MB of file at a time, never handed over whole; the model is the one saved',
  async (t) => {
    const dir = tmp();
    // About 100 MB of weights: the token embedding (51 MB) and the text tower, wider than micro's.
    const model = await Rils.create({
      preset: 'micro',
      vocabSize: 100_000,
      textWidth: 256,
      textHeads: 4,
      decoderDepth: 1,
      seed: 3,
    });
    const file = path.join(dir, 'big.safetensors');
    await model.saveWeights(file);
    const parameters = model.parameters(),
      largest = Math.max(...parameters.map((p) => p.numel * 4));
    const total = parameters.reduce((n, p) => n + p.numel * 4, 0);
    t.true(total > Math.max(BATCH_BYTES, largest), `${total} bytes of weights need more than one batch`);
    const { loadTensors, setWeights } = Rils.prototype;
    const batches: number[] = [];
    let whole = 0;
    Rils.prototype.loadTensors = function (entries: TensorLoad[]) {
      batches.push(entries.reduce((n, e) => n + e.data.byteLength, 0));
      return loadTensors.call(this, entries);
    };
    Rils.prototype.setWeights = function (tensors) {
      whole++;
      return setWeights.call(this, tensors);
    };
    try {
      const back = await Rils.fromWeights(file);
      t.is(whole, 0, 'no call took every tensor at once');
      t.true(batches.length >= 2, `${batches.length} batches`);
      t.true(
        batches.every((b) => b <= Math.max(BATCH_BYTES, largest)),
        batches.join(', '),
      );
      t.is(
        batches.reduce((a, b) => a + b, 0),
        total,
        'every byte of every parameter, once',
      );
      const [a, b] = [await snapshot(model), await snapshot(back)];
      t.deepEqual([...b.keys()], [...a.keys()]);
      const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
      t.true(
        [...a].every(([name, data]) => bytes(data).equals(bytes(b.get(name)!))),
        'bit for bit',
      );
      back.dispose();
    } finally {
      Object.assign(Rils.prototype, { loadTensors, setWeights });
      model.dispose();
      rmSync(dir, { recursive: true });
    }
  },
);

test('fromWeights on a CLIP checkpoint in any layout sends the caller to fromPretrained', async (t) => {
  for (const file of ['openai.safetensors', 'hf', 'openai-jit.pt']) {
    await t.throwsAsync(
      Rils.fromWeights(path.join(clip, file)),
      {
        instanceOf: RilsWeightsError,
        message: /is not a rils weight file .*it holds a CLIP checkpoint; load it with Rils\.fromPretrained\(path\)/,
      },
      file,
    );
  }
});

test("rils's own file must hold every parameter, the feature decoder included, and the frozen tables rils computes", async (t) => {
  const dir = tmp();
  const model = await Rils.create({ preset: 'micro', vocabSize: 300, seed: 0 });
  const file = path.join(dir, 'w.safetensors'),
    bad = path.join(dir, 'bad.safetensors');
  await model.saveWeights(file);
  model.dispose();
  await rewritten(file, bad, (name, data) => (name === 'visual.decoder_embed.weight' ? null : data));
  // Refused before the model is built (a CLIP checkpoint's decoder would be new; a rils file's is its own).
  await t.throwsAsync(Rils.fromWeights(bad), {
    instanceOf: RilsWeightsError,
    message: /bad\.safetensors: its tensors hold \d+ numbers but the model they describe needs/,
  });
  await rewritten(file, bad, (name, data) => {
    if (name === 'visual.pos_embed') new Float32Array(data.buffer)[200]! += 0.01;
    return data;
  });
  await t.throwsAsync(Rils.fromWeights(bad), {
    instanceOf: RilsWeightsError,
    message: /bad\.safetensors: frozen table 'visual\.pos_embed' differs from the fixed sin-cos embedding/,
  });
  (await Rils.fromWeights(file)).dispose();
  rmSync(dir, { recursive: true });
});

test('saveWeights, rils convert and rils train offer the layouts of the registry that have a writer, and no other', async (t) => {
  const writable = Object.entries(LAYOUTS)
    .filter(([, l]) => 'save' in l)
    .map(([name]) => name);
  t.deepEqual([...SAVE_LAYOUTS], writable);
  t.false(writable.includes('torchscript'), 'rils reads TorchScript archives, never writes them');
  for (const command of [convertCommand, trainCommand]) {
    t.regex(helpText(command), new RegExp(`--layout ${SAVE_LAYOUTS.join('\\|')} `), command.name);
  }
  const model = await Rils.create({ preset: 'clip_micro', vocabSize: 300, reconWeight: 0, seed: 0 });
  await t.throwsAsync(model.saveWeights(path.join(os.tmpdir(), 'never.pt'), { layout: 'torchscript' as never }), {
    instanceOf: RilsInputError,
    message: /Expected 'rils', 'openai' or 'hf' for layout but received "torchscript"/,
  });
  model.dispose();
});
