#include "train/distributed.h"

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#ifdef RILS_HAVE_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace rils {

const std::vector<Field<DistributedOptions>>& distributed_fields() {
#define RILS_DISTRIBUTED_ENTRY(T, name, def, range) RILS_FIELD_ENTRY(DistributedOptions, T, name, def, range)
  static const std::vector<Field<DistributedOptions>> table = {RILS_DISTRIBUTED_FIELDS(RILS_DISTRIBUTED_ENTRY)};
#undef RILS_DISTRIBUTED_ENTRY
  return table;
}

#ifndef RILS_HAVE_GLOO

bool distributed_available() { return false; }

class ProcessGroups {};
class Distributed::GradientReducer {};

Distributed::Distributed(const DistributedOptions& options) : options_(options) {
  TORCH_CHECK_VALUE(false,
                    "This build of rils has no c10d/Gloo, so it cannot train across processes; rebuild it "
                    "against a LibTorch with distributed support (Debian: apt-get install libgloo-dev)");
}
Distributed::~Distributed() = default;
torch::Tensor Distributed::all_gather(const torch::Tensor& local, bool) const { return local; }
torch::Tensor Distributed::all_reduce_sum(const torch::Tensor& local) const { return local; }
void Distributed::broadcast(std::vector<torch::Tensor>) const {}
std::vector<torch::Tensor> Distributed::all_gather_bytes(const torch::Tensor& bytes) const { return {bytes}; }
void Distributed::attach(const std::vector<torch::Tensor>&) {}
void Distributed::arm_gradient_reduction() {}
void Distributed::finish_gradient_reduction() {}
void Distributed::abandon_gradient_reduction() {}
std::vector<std::string> Distributed::peers() const { return {}; }

#else

bool distributed_available() { return true; }

using Gloo = c10d::ProcessGroupGloo;
using WorkPtr = decltype(std::declval<Gloo&>().allreduce(std::declval<std::vector<at::Tensor>&>()));

// Two groups on one store, each with its own sequence of collectives: the loss's collectives (in
// forward, and the gather's backward) and the gradient buckets (launched from backward hooks) may
// interleave differently on different ranks.
class ProcessGroups {
 public:
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Gloo> loss, gradients;
  std::vector<std::string> peers;  // "host pid" of every rank
};

namespace {

std::string describe(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

[[noreturn]] void peer_failure(const DistributedOptions& o, const std::string& what, const std::exception& e) {
  throw PeerError("rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ": " + what +
                  " failed, so a peer rank has exited or stalled (" + describe(e) + ")");
}

void wait(const WorkPtr& work, const DistributedOptions& o, const char* what) {
  try {
    work->wait(o.timeout());
  } catch (const std::exception& e) {
    peer_failure(o, what, e);
  }
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  // torchrun's convention: GLOO_SOCKET_IFNAME picks the network interface.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return Gloo::createDeviceForInterface(ifname);
  if (master_addr == "localhost" || master_addr.rfind("127.", 0) == 0)
    return Gloo::createDeviceForHostname("127.0.0.1");
  return Gloo::createDefaultDevice();
}

torch::Tensor gather_rows(Gloo& pg, const DistributedOptions& o, const torch::Tensor& local) {
  auto in = local.detach().contiguous();
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int64_t r = 0; r < o.world_size; ++r) out[0].push_back(torch::empty_like(in));
  std::vector<torch::Tensor> inputs{in};
  wait(pg.allgather(out, inputs), o, "the all-gather of embeddings");
  return torch::cat(out[0], 0);
}

torch::Tensor sum_over_ranks(Gloo& pg, const DistributedOptions& o, const torch::Tensor& local, const char* what) {
  std::vector<torch::Tensor> t{local.detach().contiguous().clone()};
  wait(pg.allreduce(t), o, what);
  return t[0];
}

// all_gather with a gradient: the backward sums the gathered gradient over ranks (each rank's
// loss saw every rank's rows) and keeps this rank's rows.
struct GatherWithGrad : torch::autograd::Function<GatherWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor local, Gloo* pg,
                               const DistributedOptions* o) {
    ctx->saved_data["pg"] = reinterpret_cast<int64_t>(pg);
    ctx->saved_data["o"] = reinterpret_cast<int64_t>(o);
    ctx->saved_data["rows"] = local.size(0);
    return gather_rows(*pg, *o, local);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    auto* pg = reinterpret_cast<Gloo*>(ctx->saved_data["pg"].toInt());
    const auto& o = *reinterpret_cast<const DistributedOptions*>(ctx->saved_data["o"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    auto total = sum_over_ranks(*pg, o, grad[0], "the all-reduce of embedding gradients");
    return {total.narrow(0, o.rank * rows, rows), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

class Distributed::GradientReducer {
 public:
  GradientReducer(std::vector<torch::Tensor> params, c10::intrusive_ptr<Gloo> pg, const DistributedOptions& o)
      : params_(std::move(params)), pg_(std::move(pg)), o_(o), slot_(params_.size()) {
    // Backward produces gradients roughly in reverse order of the forward pass (DDP's heuristic).
    int64_t bytes = o.bucket_bytes();
    for (size_t k = params_.size(); k-- > 0;) {
      const auto& p = params_[k];
      const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
      if (buckets_.empty() || (bytes + size > o.bucket_bytes() && !buckets_.back().params.empty())) {
        buckets_.emplace_back();
        bytes = 0;
      }
      auto& b = buckets_.back();
      slot_[k] = {buckets_.size() - 1, b.numel};
      b.params.push_back(k);
      b.numel += p.numel();
      bytes += size;
    }
    for (auto& b : buckets_) b.flat = torch::zeros({b.numel}, params_.front().options().requires_grad(false));
    for (size_t k = 0; k < params_.size(); ++k)
      params_[k].register_hook([this, k](const torch::Tensor& grad) { on_gradient(k, grad); });
    ready_.assign(params_.size(), false);
  }

  void arm() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = true;
    next_ = 0;
    std::fill(ready_.begin(), ready_.end(), false);
    for (auto& b : buckets_) {
      b.pending = static_cast<int64_t>(b.params.size());
      b.work = {};
    }
  }

  void finish() {
    std::unique_lock<std::mutex> lock(mutex_);
    armed_ = false;
    // What backward did not reach (e.g. the masked branch on a rank where no image passed the
    // gate) still takes part: every rank all-reduces every bucket, in the same order.
    for (size_t k = 0; k < params_.size(); ++k) {
      if (ready_[k]) continue;
      const auto& g = params_[k].grad();
      if (g.defined())
        view(k).copy_(g);
      else
        view(k).zero_();
      ready_[k] = true;
      --buckets_[slot_[k].bucket].pending;
    }
    launch_ready();
    lock.unlock();
    for (auto& b : buckets_) wait(b.work, o_, "the all-reduce of gradients");
    torch::NoGradGuard no_grad;
    const double w = static_cast<double>(o_.world_size);
    for (auto& b : buckets_) b.flat.div_(w);
    for (size_t k = 0; k < params_.size(); ++k) {
      auto& p = params_[k];
      if (p.grad().defined())
        p.mutable_grad().copy_(view(k));
      else
        p.mutable_grad() = view(k).clone();
    }
  }

  // A failed step: let launched all-reduces finish writing into the buckets, then forget them.
  void reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = false;
    for (auto& b : buckets_) {
      try {
        if (b.work) b.work->wait(o_.timeout());
      } catch (const std::exception&) {
        // the peer is gone: nothing more will be written
      }
      b.work = {};
    }
  }

 private:
  struct Bucket {
    std::vector<size_t> params;
    int64_t numel = 0, pending = 0;
    torch::Tensor flat;
    WorkPtr work;
  };
  struct Slot {
    size_t bucket = 0;
    int64_t offset = 0;
  };

  torch::Tensor view(size_t k) {
    const auto& p = params_[k];
    return buckets_[slot_[k].bucket].flat.narrow(0, slot_[k].offset, p.numel()).view(p.sizes());
  }

  // Runs before the gradient is accumulated into .grad: the bucket gets what .grad will hold.
  void on_gradient(size_t k, const torch::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!armed_ || ready_[k]) return;
    torch::NoGradGuard no_grad;
    auto slot = view(k);
    slot.copy_(grad);
    if (params_[k].grad().defined()) slot.add_(params_[k].grad());  // earlier accumulated micro-batches
    ready_[k] = true;
    if (--buckets_[slot_[k].bucket].pending == 0) launch_ready();
  }

  // Buckets start in index order on every rank, whatever order backward filled them in.
  void launch_ready() {
    while (next_ < buckets_.size() && buckets_[next_].pending == 0) {
      std::vector<torch::Tensor> t{buckets_[next_].flat};
      try {
        buckets_[next_].work = pg_->allreduce(t);
      } catch (const std::exception& e) {
        peer_failure(o_, "the all-reduce of gradients", e);
      }
      ++next_;
    }
  }

  std::vector<torch::Tensor> params_;
  c10::intrusive_ptr<Gloo> pg_;
  const DistributedOptions& o_;
  std::vector<Slot> slot_;
  std::vector<Bucket> buckets_;
  std::vector<bool> ready_;
  std::mutex mutex_;
  size_t next_ = 0;
  bool armed_ = false;
};

namespace {

// Every rank adds itself to a counter on the store, then all wait until it reaches the world size,
// within one timeout: past it, the error says how many ranks came.
void wait_for_ranks(c10d::Store& store, const DistributedOptions& o) {
  store.add("rils/joined", 1);
  const auto deadline = std::chrono::steady_clock::now() + o.timeout();
  for (;;) {
    const auto joined = store.add("rils/joined", 0);
    if (joined >= o.world_size) return;
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error(std::to_string(joined) + " of " + std::to_string(o.world_size) +
                               " ranks joined within " + std::to_string(o.timeout().count() / 1000) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

Distributed::Distributed(const DistributedOptions& options) : options_(options), groups_(new ProcessGroups) {
  const auto& o = options_;
  TORCH_CHECK_VALUE(o.world_size >= 1 && o.rank >= 0 && o.rank < o.world_size,
                    "Expected 0 <= rank < worldSize but received rank ", o.rank, " and worldSize ", o.world_size);
  check_fields(o, distributed_fields());
  TORCH_CHECK_VALUE(o.rank < o.world_size, "Expected rank < worldSize (", o.world_size, ") but received ", o.rank);
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(o.master_port);
  store_options.isServer = o.rank == 0;
  store_options.numWorkers = static_cast<size_t>(o.world_size);
  // The ranks count themselves in (wait_for_ranks): LibTorch 1.13's own waitWorkers gives up silently at
  // the timeout, and Gloo's setup then waits a second one (a missing peer failed after 2 × 60 s).
  store_options.waitWorkers = false;
  store_options.timeout = o.timeout();
  try {
    groups_->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, store_options);
    wait_for_ranks(*groups_->store, o);
    auto make = [&](const char* prefix) {
      auto pg_options = Gloo::Options::create(o.timeout());
      pg_options->devices.push_back(gloo_device(o.master_addr));
      return c10::make_intrusive<Gloo>(c10::make_intrusive<c10d::PrefixStore>(prefix, groups_->store),
                                       static_cast<int>(o.rank), static_cast<int>(o.world_size), pg_options);
    };
    groups_->loss = make("rils/loss");
    groups_->gradients = make("rils/gradients");
    // Who is who, so that a failure can name the rank that went away.
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    const std::string me = std::string(host) + " " + std::to_string(getpid());
    groups_->store->set("rils/peer/" + std::to_string(o.rank), std::vector<uint8_t>(me.begin(), me.end()));
    for (int64_t r = 0; r < o.world_size; ++r) {
      auto v = groups_->store->get("rils/peer/" + std::to_string(r));
      groups_->peers.emplace_back(v.begin(), v.end());
    }
  } catch (const std::exception& e) {
    throw PeerError(
        "rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ": the rendezvous at " +
        o.master_addr + ":" + std::to_string(o.master_port) +
        " failed (every rank must start within the timeout, and rank 0 must be able to listen there): " + describe(e));
  }
}

Distributed::~Distributed() = default;

torch::Tensor Distributed::all_gather(const torch::Tensor& local, bool differentiable) const {
  // The global batch needs the same B on every rank (labels at rank·B); an unequal one would
  // otherwise surface as a failed all-gather. Every rank learns the extremes and fails alike.
  std::vector<torch::Tensor> extremes{torch::tensor({local.size(0), -local.size(0)}, torch::kLong)};
  c10d::AllreduceOptions max;
  max.reduceOp = c10d::ReduceOp::MAX;
  wait(groups_->loss->allreduce(extremes, max), options_, "the batch-size check");
  const int64_t largest = extremes[0][0].item<int64_t>(), smallest = -extremes[0][1].item<int64_t>();
  TORCH_CHECK_VALUE(largest == smallest, "Every rank must train on the same batch size: this rank (", options_.rank,
                    ") has ", local.size(0), ", the job's range is ", smallest, " to ", largest);
  if (differentiable && local.requires_grad()) return GatherWithGrad::apply(local, groups_->loss.get(), &options_);
  return gather_rows(*groups_->loss, options_, local);
}

torch::Tensor Distributed::all_reduce_sum(const torch::Tensor& local) const {
  return sum_over_ranks(*groups_->loss, options_, local, "the all-reduce of loss statistics");
}

std::vector<torch::Tensor> Distributed::all_gather_bytes(const torch::Tensor& bytes) const {
  auto lengths = gather_rows(*groups_->loss, options_, torch::full({1}, bytes.numel(), torch::kLong));
  const int64_t longest = lengths.max().item<int64_t>();
  auto padded = torch::zeros({1, longest}, torch::kUInt8);
  padded.narrow(1, 0, bytes.numel()).copy_(bytes.reshape({1, -1}));
  auto all = gather_rows(*groups_->loss, options_, padded);  // [W, longest]
  std::vector<torch::Tensor> out;
  for (int64_t r = 0; r < options_.world_size; ++r)
    out.push_back(all[r].narrow(0, 0, lengths[r].item<int64_t>()).clone());
  return out;
}

void Distributed::broadcast(std::vector<torch::Tensor> tensors) const {
  torch::NoGradGuard no_grad;
  std::vector<WorkPtr> works;
  std::vector<std::vector<torch::Tensor>> buffers;
  buffers.reserve(tensors.size());
  for (auto& t : tensors) {
    buffers.push_back({t.detach()});
    c10d::BroadcastOptions b;
    b.rootRank = 0;
    works.push_back(groups_->gradients->broadcast(buffers.back(), b));
  }
  for (auto& w : works) wait(w, options_, "the broadcast of initial weights");
}

void Distributed::attach(const std::vector<torch::Tensor>& params) {
  TORCH_CHECK(!reducer_, "attach() once per model: the gradient hooks hold the reducer");
  reducer_ = std::make_unique<GradientReducer>(params, groups_->gradients, options_);
}
void Distributed::arm_gradient_reduction() { reducer_->arm(); }
void Distributed::finish_gradient_reduction() { reducer_->finish(); }
void Distributed::abandon_gradient_reduction() {
  if (reducer_) reducer_->reset();
}
std::vector<std::string> Distributed::peers() const { return groups_->peers; }

#endif

}  // namespace rils
