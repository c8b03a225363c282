// Mixed precision: bf16 autocast for the towers, fp32 for the loss, the master weights, the
// optimiser and everything that leaves the addon. On CUDA by default; on the CPU when asked for
// (precision 'bf16'), where the CPU has bf16 units and the LibTorch runs bf16 GEMMs on oneDNN (≥ 2).
// Scope objects because autocast state is thread-local and each step runs on a worker thread.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "model/fields.h"
#include "version.h"

namespace rils {

enum class Precision { kAuto, kFp32, kBf16 };

// X(type, name, default, allowed values): how a model runs, declared once (model/fields.h). The
// device is LibTorch's own string ('cpu', 'cuda', 'cuda:N'), which torch::Device parses, beside it.
#define RILS_RUN_FIELDS(X)                                                                  \
  X(Precision, precision, Precision::kAuto, one_of("auto|fp32|bf16")) /* auto: bf16 on CUDA \
                                                                       */

struct RunOptions {
  RILS_RUN_FIELDS(RILS_FIELD)
};

// The table of RILS_RUN_FIELDS.
inline const std::vector<Field<RunOptions>>& run_fields() {
#define RILS_RUN_ENTRY(T, name, def, range) RILS_FIELD_ENTRY(RunOptions, T, name, def, range)
  static const std::vector<Field<RunOptions>> table = {RILS_RUN_FIELDS(RILS_RUN_ENTRY)};
#undef RILS_RUN_ENTRY
  return table;
}

// Where a model runs, and whether its towers run under bf16 autocast there.
struct Execution {
  torch::Device device = torch::kCPU;
  bool bf16 = false;
};

// The CPU's bf16 units: AVX512-BF16 (dot products) and AMX-BF16 (tile matrix multiplies), from CPUID.
struct CpuBf16 {
  bool avx512_bf16 = false, amx_bf16 = false;
};
inline CpuBf16 cpu_bf16_units() {
  CpuBf16 u;
#if defined(__x86_64__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  // AVX512-BF16 needs the OS to save AVX-512 state, which __builtin_cpu_supports checks (XCR0).
  if (__builtin_cpu_supports("avx512f") && __get_cpuid_count(7, 1, &a, &b, &c, &d)) u.avx512_bf16 = (a >> 5) & 1;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) u.amx_bf16 = (d >> 22) & 1;
#endif
  return u;
}

// Why bf16 autocast cannot run on `device` with this LibTorch and CPU, or "" when it can. On CUDA,
// LibTorch's autocast decides (bf16 is rils's default there).
inline std::string bf16_unsupported(torch::Device device) {
  if (device.is_cuda()) return "";
  // The CPU first: without bf16 units no LibTorch helps.
  const auto units = cpu_bf16_units();
  if (!units.avx512_bf16 && !units.amx_bf16)
    return "this CPU has no bf16 units (neither avx512_bf16 nor amx_bf16 in its CPUID flags): bf16 would be "
           "emulated, slower than fp32";
#if !RILS_TORCH_AT_LEAST(2, 0)
  return "this addon is built against LibTorch " TORCH_VERSION
         ", whose CPU autocast has no oneDNN bf16 GEMMs to run; build it against LibTorch >= 2 "
         "(bash scripts/test-against.sh shows how)";
#else
  if (!at::globalContext().hasMKLDNN()) return "this LibTorch " TORCH_VERSION " is built without oneDNN (MKL-DNN)";
  return "";
#endif
}

class AutocastScope {
 public:
  // bf16 autocast for `type`'s ops on (enabled) or off; the previous state comes back at the end of
  // the scope. CUDA and the CPU have separate states.
  AutocastScope(torch::DeviceType type, bool enabled) : type_(type) {
    was_enabled_ = is_enabled(type);
#if RILS_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_dtype(type, at::kBFloat16);
    at::autocast::set_autocast_enabled(type, enabled);
#else
    if (type == torch::kCUDA) {
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(enabled);
    } else {
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(enabled);
    }
#endif
  }
  ~AutocastScope() {
#if RILS_TORCH_AT_LEAST(2, 4)
    at::autocast::set_autocast_enabled(type_, was_enabled_);
#else
    if (type_ == torch::kCUDA)
      at::autocast::set_enabled(was_enabled_);
    else
      at::autocast::set_cpu_enabled(was_enabled_);
#endif
    if (!was_enabled_) at::autocast::clear_cache();  // the weights' bf16 copies of this region
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

  static bool is_enabled(torch::DeviceType type) {
#if RILS_TORCH_AT_LEAST(2, 4)
    return at::autocast::is_autocast_enabled(type);
#else
    return type == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
  }

 private:
  torch::DeviceType type_;
  bool was_enabled_ = false;
};

inline torch::Tensor to_fp32(const torch::Tensor& t) { return t.defined() ? t.to(torch::kFloat32) : t; }

// fn() under the model's mixed precision (bf16 autocast or none), its outputs through to_fp32
// (overloads for the model's output structs sit beside them, found by ADL).
template <class Fn>
auto run_mixed(const Execution& on, Fn&& fn) {
  decltype(fn()) out;
  {
    AutocastScope autocast(on.device.type(), on.bf16);
    out = fn();
  }
  AutocastScope fp32(on.device.type(), false);
  return to_fp32(std::move(out));
}

// TF32 tensor-core matmuls and convolutions for what autocast leaves in fp32 on CUDA (the loss's
// logits), as the PyTorch baseline sets torch.backends.cuda.matmul.allow_tf32. Process-wide, as in
// PyTorch; set when a model is created on CUDA with bf16.
inline void allow_tf32() {
  at::globalContext().setAllowTF32CuBLAS(true);
  at::globalContext().setAllowTF32CuDNN(true);
}

}  // namespace rils
