import { env, AutoProcessor, RawImage } from '@huggingface/transformers';
import { loadImages } from './lib/index.js';
env.allowRemoteModels = false; env.localModelPath = '/tmp/onnx-probe/';
const proc = await AutoProcessor.from_pretrained('tok-clip');
for (const f of ['square.jpg', 'wide.jpg', 'small.png']) {
  const file = `test/fixtures/clip/images/${f}`;
  const { pixel_values } = await proc(await RawImage.read(file));
  const ours = await loadImages([file], 32, { interpolation: 'bicubic' });
  const mean = [0.48145466, 0.4578275, 0.40821073], std = [0.26862954, 0.26130258, 0.27577711];
  const theirs = pixel_values.data as Float32Array; let maxd = 0, sum = 0;
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) {
    const o = (ours[(y*32+x)*3+c]! / 255 - mean[c]!) / std[c]!; const th = theirs[c*1024 + y*32 + x]!;
    maxd = Math.max(maxd, Math.abs(o-th)); sum += Math.abs(o-th);
  }
  console.log(f, pixel_values.dims, 'max diff', maxd.toFixed(3), 'mean', (sum/3072).toFixed(4));
}
