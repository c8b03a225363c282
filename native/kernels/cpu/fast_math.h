// Elementwise math and row reductions written for GCC's auto-vectoriser, for the fused CPU kernels
// (attention, activations, LayerNorm). LibTorch 1.13 runs these ops as separate full passes over
// memory; fused into the loops that already hold the data they cost little. Each hot loop is cloned
// for AVX-512, AVX2 and baseline x86-64 and picked when the addon loads (RILS_SIMD_CLONES).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RILS_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RILS_SIMD_CLONES
#endif

namespace rils::fast {

// expf with Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, a degree-6 minimax polynomial
// for e^r (Cephes' expf coefficients) and 2^n written into the exponent bits: ~1 ulp where e^x is a
// normal float. Inputs are clamped to [−87.3, 88.7], so the result is never 0 or inf: callers
// that need an exact 0 (a masked softmax entry) write it themselves.
__attribute__((always_inline)) inline float exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  // n = round(x / ln2) by the 1.5·2^23 trick: floorf would keep GCC 12 from vectorising the loop.
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), the formula ATen's own AVX2/AVX-512
// Vectorized<float>::erf uses: sign(x)·(1 − t·poly(t)·e^(−x²)), t = 1 / (1 + 0.3275911·|x|).
__attribute__((always_inline)) inline float erf(float x) {
  const float a = x < 0 ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float poly = (((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f;
  const float y = 1.0f - t * poly * exp(-a * a);
  return x < 0 ? -y : y;
}

// Row reductions in kLanes independent partial results, so that the compiler vectorises them
// (a single running max or sum is a serial dependency chain).
constexpr int kLanes = 16;

// A float's bits as an int32 that orders as the float does: negative floats have their magnitude
// bits flipped. The max over these keys vectorises; a float max does not, as GCC keeps its
// NaN and signed-zero rules unless -ffinite-math-only (~2.5× slower on a 197-key row).
__attribute__((always_inline)) inline int32_t order_key(const float* x) {
  int32_t bits;
  std::memcpy(&bits, x, sizeof bits);
  return bits ^ ((bits >> 31) & 0x7fffffff);
}

__attribute__((always_inline)) inline float row_max(const float* x, int64_t n) {
  int32_t lanes[kLanes];
  for (int32_t& l : lanes) l = std::numeric_limits<int32_t>::min();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] = std::max(lanes[l], order_key(x + j + l));
  int32_t m = std::numeric_limits<int32_t>::min();
  for (int32_t l : lanes) m = std::max(m, l);
  for (; j < n; ++j) m = std::max(m, order_key(x + j));
  m ^= (m >> 31) & 0x7fffffff;  // the key's own inverse
  float max;
  std::memcpy(&max, &m, sizeof max);
  return max;
}

__attribute__((always_inline)) inline float row_sum(const float* x, int64_t n) {
  float lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += x[j + l];
  float sum = 0;
  for (float l : lanes) sum += l;
  for (; j < n; ++j) sum += x[j];
  return sum;
}

__attribute__((always_inline)) inline float row_dot(const float* x, const float* y, int64_t n) {
  float lanes[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += x[j + l] * y[j + l];
  float sum = 0;
  for (float l : lanes) sum += l;
  for (; j < n; ++j) sum += x[j] * y[j];
  return sum;
}

// bf16 ⇄ fp32 for the kernels that read and write bf16 (precision 'bf16'): bf16 is the high half of
// an fp32, so widening is a shift; narrowing rounds to nearest even, as LibTorch's casts do, NaN
// kept a quiet NaN. Both are integer arithmetic that the vectoriser turns into a few instructions
// per 16 lanes.
__attribute__((always_inline)) inline float widen(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
__attribute__((always_inline)) inline uint16_t narrow(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  return static_cast<uint16_t>((bits & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : rounded);
}

// fn(begin, end) over [0, n) on LibTorch's threads, in pieces that start at multiples of 4096
// elements: each element then takes the same code path (vector body or scalar remainder) whatever
// the thread count, so results do not depend on it.
template <class Fn>
void parallel_blocks(int64_t n, Fn fn) {
  constexpr int64_t kBlock = 4096;
  at::parallel_for(0, (n + kBlock - 1) / kBlock, 4,
                   [&](int64_t b0, int64_t b1) { fn(b0 * kBlock, std::min(n, b1 * kBlock)); });
}

}  // namespace rils::fast
