// Evaluation on your own labelled images (one subfolder per class): zero-shot from the class names,
// and k-NN, n-shot and linear probes on frozen embeddings, with an HTML report; then retrieval
// recall when a captioned set is given too.
// Run: npx tsx examples/evaluate.ts WEIGHTS.safetensors CLASS_FOLDERS [CAPTIONED_SET] [REPORT.html]
import {
  Rils,
  evaluateClassification,
  evaluateRetrieval,
  openCaptionedPairs,
  openLabelledImages,
  writeEvaluationReport,
} from 'rils';

const [weights, folder, captioned, report = 'eval-report.html'] = process.argv.slice(2);
if (!weights || !folder) throw new Error('usage: evaluate.ts WEIGHTS CLASS_FOLDERS [CAPTIONED_SET] [REPORT.html]');

const model = await Rils.fromWeights(weights); // the file carries its tokenizer
const data = await openLabelledImages(folder, { testFraction: 0.5, seed: 0 }); // no training folder: a seeded split
data.notes.forEach((note) => console.log(`note: ${note}`));
const r = await evaluateClassification(model, data, {
  templates: ['a photo of a {}.', 'a {} square', '{}'],
  shots: [1, 2],
  onProgress: (set, p) => {
    if (p.done === p.total) console.log(`${set}: ${p.done} images at ${p.imagesPerSecond.toFixed(0)} img/s`);
  },
});
const pct = (v: number | undefined) => `${(100 * (v ?? NaN)).toFixed(1)}%`;
console.log(
  `zero-shot top-1 ${pct(r.zeroShot.top1)}, k-NN ${pct(r.knn?.top1)}, 1-shot ${pct(r.fewShot?.[0]?.nearestMean.mean)}, ` +
    `linear probe ${pct(r.linearProbe?.top1)}`,
);
r.classNames.forEach((name, c) => console.log(`  ${name}: zero-shot ${pct(r.zeroShot.perClass[c])}`));

const retrieval = captioned ? await evaluateRetrieval(model, (await openCaptionedPairs(captioned)).pairs) : undefined;
if (retrieval)
  console.log(
    `retrieval over ${retrieval.images} images: image→text R@1 ${pct(retrieval.imageToText[1])}, text→image R@1 ${pct(retrieval.textToImage[1])}`,
  );
await writeEvaluationReport(report, model, {
  classification: { test: data.test, results: r },
  ...(retrieval ? { retrieval } : {}),
});
console.log(`report: ${report}`);
model.dispose();
