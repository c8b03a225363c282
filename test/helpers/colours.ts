// Generated images whose class is their colour (with per-pixel noise): in memory for training, and
// as an ImageFolder (one subfolder per class) or a captioned folder (x.png + x.txt) on disk.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import sharp from 'sharp';

import { Random } from '../../lib/data/augment.js';

/** The classes: name → RGB. */
export const COLOURS: Record<string, [number, number, number]> = {
  red: [220, 30, 30],
  green: [30, 190, 40],
  blue: [30, 40, 220],
  yellow: [230, 220, 30],
};
export const COLOUR_NAMES = Object.keys(COLOURS);

/** One `size`×`size` RGB image of colour `name`, each pixel off by up to ±`noise`. */
export function colourPixels(name: string, size: number, rng: Random, noise = 40): Uint8Array {
  const rgb = COLOURS[name]!;
  return Uint8Array.from({ length: size * size * 3 }, (_, k) =>
    Math.max(0, Math.min(255, rgb[k % 3]! + Math.round((rng.next() - 0.5) * 2 * noise))),
  );
}

/** `perClass` images of every colour, in memory: `[n, size, size, 3]` with labels (class-major). */
export function colourImages(perClass: number, size: number, seed: number): { images: Uint8Array; labels: Int32Array } {
  const rng = new Random(seed),
    n = perClass * COLOUR_NAMES.length,
    px = size * size * 3;
  const images = new Uint8Array(n * px),
    labels = new Int32Array(n);
  COLOUR_NAMES.forEach((name, c) => {
    for (let i = 0; i < perClass; i++) {
      images.set(colourPixels(name, size, rng), (c * perClass + i) * px);
      labels[c * perClass + i] = c;
    }
  });
  return { images, labels };
}

/** Writes `dir/<colour>/<i>.png` (the ImageFolder layout), `perClass` images of each colour. */
export async function writeColourFolder(dir: string, perClass: number, seed: number, size = 40): Promise<void> {
  const rng = new Random(seed);
  for (const name of COLOUR_NAMES) {
    mkdirSync(path.join(dir, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      await sharp(colourPixels(name, size, rng), { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toFile(path.join(dir, name, `${i}.png`));
    }
  }
}

/** `perClass` captioned images of every colour: `dir/<colour>-<i>.png` + `.txt`, in a few phrasings. */
export async function writeCaptionedColours(dir: string, perClass: number, seed: number, size = 40): Promise<void> {
  const rng = new Random(seed),
    phrasings = ['a photo of a {} thing.', 'something {}.', 'a {} picture.'];
  mkdirSync(dir, { recursive: true });
  for (const name of COLOUR_NAMES) {
    for (let i = 0; i < perClass; i++) {
      const file = path.join(dir, `${name}-${i}`);
      await sharp(colourPixels(name, size, rng), { raw: { width: size, height: size, channels: 3 } })
        .png()
        .toFile(`${file}.png`);
      writeFileSync(`${file}.txt`, phrasings[i % phrasings.length]!.replace('{}', name));
    }
  }
}
