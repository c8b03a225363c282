// Data-parallel training over PyTorch's c10d: a TCPStore rendezvous (torchrun's MASTER_ADDR /
// MASTER_PORT / RANK / WORLD_SIZE), Gloo process groups, the global batch of the loss
// (model/loss.h's BatchGroup) and bucketed gradient all-reduce overlapped with backward.
#pragma once
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/fields.h"
#include "model/loss.h"

namespace rils {

// X(type, name, default, allowed values): a job's numeric options, declared once (model/fields.h);
// the rendezvous host, a string, sits beside them.
#define RILS_DISTRIBUTED_FIELDS(X)                                                                     \
  X(int64_t, rank, 0, at_least(0))                                                                     \
  X(int64_t, world_size, 1, at_least(1))                                                               \
  X(int64_t, master_port, 29500, between(1, 65535))                                                    \
  X(double, timeout_seconds, 60.0, above(0))  /* rendezvous and every collective give up after this */ \
  X(double, bucket_megabytes, 25.0, above(0)) /* gradient buckets all-reduced as backward fills them */

struct DistributedOptions {
  RILS_DISTRIBUTED_FIELDS(RILS_FIELD)
  std::string master_addr = "127.0.0.1";

  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(timeout_seconds * 1000)));
  }
  int64_t bucket_bytes() const { return static_cast<int64_t>(std::ceil(bucket_megabytes * (1 << 20))); }
};

// The table of RILS_DISTRIBUTED_FIELDS.
const std::vector<Field<DistributedOptions>>& distributed_fields();

// Whether this build has c10d with Gloo (the define comes from CMakeLists.txt).
bool distributed_available();

// A collective that failed because a peer is gone or too slow: the message says which collective.
struct PeerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ProcessGroups;

// The ranks of one job. Construction is the rendezvous: it returns once every rank has joined
// (or throws after the timeout).
class Distributed : public BatchGroup {
 public:
  explicit Distributed(const DistributedOptions& options);
  ~Distributed() override;

  int64_t rank() const override { return options_.rank; }
  int64_t size() const override { return options_.world_size; }
  torch::Tensor all_gather(const torch::Tensor& local, bool differentiable) const override;
  torch::Tensor all_reduce_sum(const torch::Tensor& local) const override;

  // Every rank's uint8 [n_r] tensor, in rank order (lengths may differ): checkpoint state.
  std::vector<torch::Tensor> all_gather_bytes(const torch::Tensor& bytes) const;

  // Rank 0's values into `tensors` on every rank (initial weights).
  void broadcast(std::vector<torch::Tensor> tensors) const;

  // Averages the gradients of `params` over ranks. arm() before the backward pass whose gradients
  // are to be averaged: each bucket is all-reduced as soon as backward has produced its last
  // gradient, in bucket order on every rank. finish() after it: reduces what backward did not
  // reach (parameters without gradient count as zeros), waits, and writes the means into .grad.
  class GradientReducer;
  void attach(const std::vector<torch::Tensor>& params);
  void arm_gradient_reduction();
  void finish_gradient_reduction();
  void abandon_gradient_reduction();  // after a failed step

  // "host pid" of every rank, exchanged at the rendezvous (to name a rank that went away).
  std::vector<std::string> peers() const;

  const DistributedOptions& options() const { return options_; }

 private:
  DistributedOptions options_;
  std::unique_ptr<ProcessGroups> groups_;
  std::unique_ptr<GradientReducer> reducer_;
};

}  // namespace rils
