/**
 * IEEE 754 half precision from single, for `--dtype fp16` exports. Written by hand: Node 20 has no
 * Float16Array, and the conversion is a dozen lines.
 * @internal
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** One float's nearest half (ties to even), as its 16 bits; overflow gives ±Infinity, NaN stays NaN. */
function half(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000,
    exponent = (x >>> 23) & 0xff,
    mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Infinity, NaN
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // too large: Infinity
  if (e <= 0) {
    // a subnormal half, or zero
    if (e < -10) return sign;
    const m = mantissa | 0x800000,
      shift = 14 - e;
    const rounded =
      (m >>> shift) + ((m >>> (shift - 1)) & 1 && (m & ((1 << (shift - 1)) - 1) || (m >>> shift) & 1) ? 1 : 0);
    return sign | rounded;
  }
  const bits = sign | (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff; // the 13 bits dropped: round half to even (a carry may reach Infinity, as it should)
  return rest > 0x1000 || (rest === 0x1000 && bits & 1) ? bits + 1 : bits;
}

/** Every value as a half. */
export function toFloat16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = half(data[i]!);
  return out;
}
