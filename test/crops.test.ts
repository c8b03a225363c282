// Training crops of JPEGs decoded natively (libjpeg-turbo: the box only, DCT-scaled, antialiased
// bilinear) against the same boxes through sharp (a DCT-scaled decode smooths the test image's pixel
// noise a little: up to ~3.5 / 255 on average); JPEGs libjpeg refuses (CMYK) and corrupt ones.
import test from 'ava';
import sharp from 'sharp';

import { Random } from '../lib/data/augment.js';
import { native } from '../lib/addon/binding.js';
import { decodeCrops } from '../lib/data/crops.js';
import { decodeCrop } from '../lib/io/images.js';

/** A 500 × 375 photo-like JPEG: gradients, discs and noise. */
async function photo(options: sharp.JpegOptions = {}, cmyk = false): Promise<Buffer> {
  const [w, h] = [500, 375];
  const px = Buffer.alloc(w * h * 3);
  const rng = new Random(3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const n = rng.int(24);
      px.set([(x * 230) / w + n, (y * 230) / h + n, 128 + 100 * Math.sin(x / 17) * Math.cos(y / 23)], (y * w + x) * 3);
    }
  }
  let image = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  if (cmyk) image = image.toColourspace('cmyk');
  return image.jpeg({ quality: 90, ...options }).toBuffer();
}

const available = typeof native.jpegAvailable === 'function' && native.jpegAvailable();
if (!available && !process.env.RILS_ADDON)
  throw new Error('this build of rils decodes no JPEG natively (apt-get install libjpeg-dev, then rebuild)');
const withJpeg = available ? test : test.skip;

function diff(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  let sum = 0,
    max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.length, max };
}

withJpeg('a native JPEG crop matches sharp’s crop of the same box, baseline, progressive and greyscale', async (t) => {
  const size = 64;
  for (const [name, jpeg] of [
    ['baseline', await photo()],
    ['progressive', await photo({ progressive: true })],
    ['4:4:4', await photo({ chromaSubsampling: '4:4:4' })],
    [
      'greyscale',
      await sharp(await photo())
        .greyscale()
        .jpeg()
        .toBuffer(),
    ],
  ] as const) {
    t.deepEqual(native.jpegSize!(jpeg), [500, 375]);
    for (const box of [
      { x: 0, y: 0, w: 500, h: 375 },
      { x: 37, y: 51, w: 301, h: 240 },
      { x: 420, y: 300, w: 80, h: 75 },
    ]) {
      const out = new Uint8Array(2 * size * size * 3);
      const errors = await native.decodeJpegCrops!(
        [jpeg],
        new Int32Array([box.x, box.y, box.w, box.h]),
        out,
        new Int32Array([1]),
        size,
        2,
      );
      t.deepEqual(errors, ['']);
      t.deepEqual(out.subarray(0, size * size * 3), new Uint8Array(size * size * 3), 'slot 0 untouched');
      const reference = await decodeCrop(jpeg, box, size);
      const d = diff(out.subarray(size * size * 3), reference);
      t.log(`${name} ${JSON.stringify(box)}: mean |Δ| ${d.mean.toFixed(2)}, max ${d.max}`);
      t.true(d.mean < 4 && d.max < 40, `${name} ${JSON.stringify(box)}: ${JSON.stringify(d)}`);
    }
  }
});

withJpeg('JPEGs libjpeg refuses (CMYK) go through sharp; corrupt ones fail with the reason', async (t) => {
  const cmyk = await photo({}, true);
  t.is(native.jpegSize!(cmyk), null, 'CMYK is not read natively');
  const corrupt = (await photo()).subarray(0, 3000);
  const png = await sharp(await photo())
    .png()
    .toBuffer();
  const samples = [cmyk, corrupt, png, await photo()].map((image, k) => ({
    load: async () => image,
    name: `image ${k}`,
    caption: 'x',
    crop: new Random(k),
  }));
  const size = 32;
  const images = new Uint8Array(4 * size * size * 3);
  const errors = await decodeCrops(samples, { size, decodeThreads: 2 }, images);
  t.is(errors[0], null, 'CMYK decoded by sharp');
  t.truthy(errors[1], 'the corrupt JPEG fails');
  t.deepEqual([errors[2], errors[3]], [null, null]);
  const nonzero = (k: number) => images.subarray(k * size * size * 3, (k + 1) * size * size * 3).some((v) => v > 0);
  t.deepEqual([0, 2, 3].map(nonzero), [true, true, true]);
  const errs = await native.decodeJpegCrops!(
    [corrupt],
    new Int32Array([0, 0, 100, 100]),
    new Uint8Array(size * size * 3),
    new Int32Array([0]),
    size,
    1,
  );
  t.regex(errs[0]!, /Premature end of JPEG file/, 'libjpeg says why');
  await t.throwsAsync(
    async () =>
      native.decodeJpegCrops!(
        [corrupt],
        new Int32Array([0, 0, 1, 1]),
        new Uint8Array(10),
        new Int32Array([0]),
        size,
        1,
      ),
    { message: /Expected slots inside the output array/ },
  );
});
