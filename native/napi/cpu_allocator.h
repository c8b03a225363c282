// LibTorch's CPU allocator, with a cache of large freed blocks (installed when the addon loads).
#pragma once
#include <cstddef>

namespace rils::napi {

// Makes a caching allocator LibTorch's CPU allocator (c10::SetCPUAllocator).
//
// Why: every step frees and re-allocates the same large activations. With glibc, a thread other
// than the main one allocates from its own arena of 64 MB heaps, and a heap whose blocks are all
// freed is unmapped at once; the next step maps it again and page-faults on every 4 KB of it. Which
// allocation order triggers this is fragile: fusing the GELU's bias moved a vit_s16 encode from ~200
// to ~23,000 page faults (+70 ms of kernel time). PyTorch runs on the main thread, whose arena does
// not do this. Freed blocks of 1 MiB or more are kept, by size rounded up to 64 KiB, and handed out
// again for a request of their size or up to a fifth smaller (the smallest that fits); the least
// recently freed go back to the system past a cap of an eighth of the memory (physical, or a
// container's cgroup limit). Smaller blocks go to LibTorch's own allocation functions.
// RILS_CPU_ALLOCATOR=libtorch leaves LibTorch's allocator in place (memory debugging:
// scripts/asan.sh).
void install_caching_cpu_allocator();

// Returns every cached free block to the system (a model's dispose()).
void release_cached_cpu_memory();

// Bytes held in free cached blocks, for runtimeInfo().
std::size_t cached_cpu_bytes();

}  // namespace rils::napi
