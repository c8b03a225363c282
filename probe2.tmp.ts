import { env, AutoTokenizer } from '@huggingface/transformers';
import { readFileSync, rmSync } from 'node:fs';
import { Rils, ClipTokenizer, WordTokenizer, ByteTokenizer } from './lib/index.js';
env.allowRemoteModels = false; env.localModelPath = '/tmp/onnx-probe/';
const cases = JSON.parse(readFileSync('/work/shared/data/clip_tokenizer_cases.json','utf8')).cases.map((c: any) => c.text) as string[];
cases.push('Tom &amp;amp; Jerry &quot;&lt;b&gt;&quot; &copy;2024 &notit; &#8217;s caf&eacute; &#x27;q&#X27; &ampere', 'ÅΣ ΣΑΣ ǅ İstanbul ß ﬁ ῼ ͅͅͅ x', 'a\u2028b\u00a0c\u0085d\ufeffe');
for (const [name, tok] of [['clip', await ClipTokenizer.load(undefined, { contextLength: 77 })], ['word', WordTokenizer.fromTexts(cases.slice(0, 10), { contextLength: 16 })], ['byte', new ByteTokenizer({ contextLength: 24 })]] as const) {
  const model = await Rils.create({ preset: 'clip_micro', reconWeight: 0, vocabSize: tok.vocabSize, contextLength: tok.contextLength, tokenizer: tok });
  const dir = `/tmp/onnx-probe/tok-${name}`; rmSync(dir, { recursive: true, force: true });
  await model.exportOnnx(dir);
  const t = await AutoTokenizer.from_pretrained(`tok-${name}`);
  let bad = 0;
  for (const text of cases) {
    const row = Array.from(tok.encode(text)); const end = row.indexOf(tok.eot);
    const ours = row.slice(0, end + 1);
    const theirs = (t(text, { truncation: true, return_tensor: false }) as any).input_ids as number[];
    const same = ours.length === theirs.length && ours.every((v, i) => v === theirs[i]);
    if (!same && ours.length < tok.contextLength) { bad++; console.log(name, JSON.stringify(text.slice(0, 60)), '\n ours  ', ours.join(' '), '\n theirs', theirs.join(' ')); }
  }
  console.log(name, 'mismatches', bad, 'of', cases.length);
  model.dispose();
}
