// The two CPU GEMMs LibTorch 1.13 loads (2.x pip wheels: the BLAS only, MKL), called directly by the fused kernels
// (linear, attention): the Fortran BLAS that LibTorch's own addmm/bmm end in (OpenBLAS in Debian's LibTorch) and
// oneDNN's sgemm, which 1.13 loads but leaves unused for fp32. Both are declared weak and resolved when the addon
// loads, from LibTorch's own dependencies: the addon links neither. A null one means this LibTorch exports none, and
// the callers fall back: pip wheels link oneDNN statically, hidden, and export MKL's BLAS (sgemm_) from libtorch_cpu.
//
// Which is faster depends on the shape (2 threads, this project's Zen 4 VM): oneDNN runs the
// model's linear layers at 200–230 GFLOP/s against OpenBLAS's 150–185, and attention's products
// that reduce over T ≥ 128 keys ~35% faster; OpenBLAS wins the products that reduce over a head's
// 32–64 channels and everything with T ≤ 77.
#pragma once
#include <cstdint>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc) __attribute__((weak));
extern "C" int dnnl_sgemm(char transa, char transb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc)
    __attribute__((weak));

namespace rils::gemm {

inline bool have_blas() { return sgemm_ != nullptr; }
inline bool have_onednn() { return dnnl_sgemm != nullptr; }

// Row-major C[M, N] = alpha · op(A) · op(B) + beta · C on the column-major BLAS, which computes the
// same product transposed: Cᵀ = op(B)ᵀ · op(A)ᵀ, each row-major matrix read as its transpose.
inline void blas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  const int la = static_cast<int>(lda), lb = static_cast<int>(ldb), lc = static_cast<int>(ldc);
  sgemm_(&tb, &ta, &n, &m, &k, &alpha, B, &lb, A, &la, &beta, C, &lc);
}

// The same product on oneDNN (row-major already). Inside a parallel region it runs on the calling
// thread alone; outside, on LibTorch's thread count.
inline void onednn(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                   int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // oneDNN sizes its team by omp_get_max_threads() of the calling thread: a worker thread's count
  // is LibTorch's setting only once LibTorch has initialised that thread.
  at::internal::lazy_init_num_threads();
  const int status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  TORCH_CHECK(status == 0, "oneDNN sgemm failed (status ", status, ") on a ", M, "x", K, " by ", K, "x", N, " product");
}

}  // namespace rils::gemm
