/**
 * Training augmentation of spec §3: RandomResizedCrop(scale 0.5–1, ratio 3/4–4/3) with bilinear
 * resampling, on uint8 HWC RGB images, driven by a seeded generator so runs repeat exactly.
 * @module
 */

/** A seeded uniform [0, 1) generator (mulberry32: small, fast, and its state is one number). */
export class Random {
  /** The whole state; save it to resume a stream exactly. */
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** The next number in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Fisher–Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }
}

/** The crop box torchvision's RandomResizedCrop.get_params would draw. */
export function randomResizedCropBox(
  width: number,
  height: number,
  rng: Random,
  scale: [number, number] = [0.5, 1],
  ratio: [number, number] = [3 / 4, 4 / 3],
): { x: number; y: number; w: number; h: number } {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])] as const;
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (scale[0] + (scale[1] - scale[0]) * rng.next());
    const aspect = Math.exp(logRatio[0] + (logRatio[1] - logRatio[0]) * rng.next());
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= width && h <= height)
      return { x: rng.int(width - w + 1), y: rng.int(height - h + 1), w, h };
  }
  // Fallback: the central crop of the allowed aspect range.
  const inRatio = width / height;
  let w = width,
    h = height;
  if (inRatio < ratio[0]) h = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) w = Math.round(h * ratio[1]);
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), w, h };
}

/** Bilinear resize of a crop box of an HWC uint8 image into `out` (size × size × channels). */
export function resizeCrop(
  src: Uint8Array,
  width: number,
  channels: number,
  box: { x: number; y: number; w: number; h: number },
  size: number,
  out: Uint8Array,
  outOffset = 0,
): void {
  const sx = box.w / size,
    sy = box.h / size;
  for (let oy = 0; oy < size; oy++) {
    const fy = Math.min(Math.max((oy + 0.5) * sy - 0.5, 0), box.h - 1);
    const y0 = Math.floor(fy),
      y1 = Math.min(y0 + 1, box.h - 1),
      wy = fy - y0;
    for (let ox = 0; ox < size; ox++) {
      const fx = Math.min(Math.max((ox + 0.5) * sx - 0.5, 0), box.w - 1);
      const x0 = Math.floor(fx),
        x1 = Math.min(x0 + 1, box.w - 1),
        wx = fx - x0;
      const p00 = ((box.y + y0) * width + box.x + x0) * channels,
        p01 = ((box.y + y0) * width + box.x + x1) * channels;
      const p10 = ((box.y + y1) * width + box.x + x0) * channels,
        p11 = ((box.y + y1) * width + box.x + x1) * channels;
      const o = outOffset + (oy * size + ox) * channels;
      for (let c = 0; c < channels; c++) {
        const top = src[p00 + c]! * (1 - wx) + src[p01 + c]! * wx;
        const bottom = src[p10 + c]! * (1 - wx) + src[p11 + c]! * wx;
        out[o + c] = Math.round(top * (1 - wy) + bottom * wy);
      }
    }
  }
}

/** RandomResizedCrop of one HWC uint8 image into `out` at `outOffset`. */
export function randomResizedCrop(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  size: number,
  rng: Random,
  out: Uint8Array,
  outOffset = 0,
  scale: [number, number] = [0.5, 1],
): void {
  resizeCrop(src, width, channels, randomResizedCropBox(width, height, rng, scale), size, out, outOffset);
}
