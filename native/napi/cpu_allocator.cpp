#include "napi/cpu_allocator.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <list>
#include <map>
#include <mutex>
#include <string>

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

namespace rils::napi {

namespace {

constexpr std::size_t kCachedFrom = std::size_t{1} << 20;  // blocks from 1 MiB are cached
constexpr std::size_t kRounding = std::size_t{64} << 10;   // ... by size rounded up to 64 KiB
// Each block starts with a header that records its size, one alignment unit long, so the data
// stays 64-byte aligned as LibTorch expects (c10::alloc_cpu's alignment).
constexpr std::size_t kHeader = 64;

struct Header {
  std::size_t size;  // bytes after the header; 0 for a block that is not cached
};

// The memory this process may use: physical memory, or less under a cgroup limit (a container).
std::size_t usable_memory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  std::size_t limit =
      pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : std::size_t{8} << 30;
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream file(path);
    unsigned long long bytes = 0;
    if (file >> bytes && bytes > 0 && bytes < limit) limit = static_cast<std::size_t>(bytes);  // "max" reads as none
  }
  return limit;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  CachingCpuAllocator() : cap_(usable_memory() / 8) {}

  // c10::Allocator::allocate is const in LibTorch 1.13 and not in recent 2.x, which also adds a pure
  // copy_data: both forms are defined, without `override`, and each LibTorch's overrides its own.
  c10::DataPtr allocate(std::size_t n) const { return allocate_block(n); }
  c10::DataPtr allocate(std::size_t n) { return allocate_block(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &deallocate; }

  static CachingCpuAllocator& instance() {
    static auto* allocator = new CachingCpuAllocator();  // never destroyed: tensors may outlive statics
    return *allocator;
  }

  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!lru_.empty()) evict_oldest();
  }

  std::size_t cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

 private:
  c10::DataPtr allocate_block(std::size_t n) const {
    auto* self = const_cast<CachingCpuAllocator*>(this);
    void* data = n == 0 ? nullptr : self->take(n);
    return {data, data, &deallocate, c10::Device(c10::DeviceType::CPU)};
  }

  static Header* header_of(void* data) { return reinterpret_cast<Header*>(static_cast<char*>(data) - kHeader); }

  // A cached block of n bytes (rounded), or a fresh one.
  void* take(std::size_t n) {
    const std::size_t size = n >= kCachedFrom ? (n + kRounding - 1) / kRounding * kRounding : 0;
    if (size != 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      // The smallest cached block that fits, if it is at most 25% larger: shapes that vary from
      // step to step (the gated images of the masked branch) reuse blocks instead of adding sizes.
      auto it = by_size_.lower_bound(size);
      if (it != by_size_.end() && it->first - size <= size / 4) {
        const std::size_t found = it->first;
        auto block = it->second.back();  // the most recently freed: the likeliest to be in cache
        it->second.pop_back();
        if (it->second.empty()) by_size_.erase(it);
        void* data = *block;
        lru_.erase(block);
        cached_ -= found;
        return data;
      }
    }
    auto* raw = static_cast<char*>(c10::alloc_cpu(kHeader + (size != 0 ? size : n)));
    reinterpret_cast<Header*>(raw)->size = size;
    return raw + kHeader;
  }

  static void deallocate(void* data) {
    if (data == nullptr) return;
    const std::size_t size = header_of(data)->size;
    if (size == 0 || size > instance().cap_) return c10::free_cpu(header_of(data));  // small, or past the cap alone
    instance().give_back(data, size);
  }

  void give_back(void* data, std::size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    lru_.push_front(data);
    by_size_[size].push_back(lru_.begin());
    cached_ += size;
    while (cached_ > cap_) evict_oldest();
  }

  // The least recently freed block goes back to the system. Per size, blocks are queued in the
  // order they were freed, so it is the front of its size's queue.
  void evict_oldest() {
    void* data = lru_.back();
    const std::size_t size = header_of(data)->size;
    auto& queue = by_size_[size];
    queue.pop_front();
    if (queue.empty()) by_size_.erase(size);
    lru_.pop_back();
    cached_ -= size;
    c10::free_cpu(header_of(data));
  }

  std::mutex mutex_;
  std::list<void*> lru_;                                                   // free blocks, most recently freed first
  std::map<std::size_t, std::deque<std::list<void*>::iterator>> by_size_;  // non-empty queues only
  const std::size_t cap_;
  std::size_t cached_ = 0;
};

}  // namespace

void install_caching_cpu_allocator() {
  // Once per process, though each worker_threads environment loads the addon again.
  static std::once_flag once;
  std::call_once(once, [] {
    // RILS_CPU_ALLOCATOR=libtorch keeps LibTorch's own, for memory debugging: a sanitizer sees an
    // overrun past a tensor's end, or a use after free, only if every tensor is its own allocation.
    const char* choice = std::getenv("RILS_CPU_ALLOCATOR");
    if (choice != nullptr && std::string(choice) == "libtorch") return;
    c10::SetCPUAllocator(&CachingCpuAllocator::instance(), /*priority=*/1);
  });
}

void release_cached_cpu_memory() { CachingCpuAllocator::instance().release(); }

std::size_t cached_cpu_bytes() { return CachingCpuAllocator::instance().cached(); }

}  // namespace rils::napi
