// A thread that runs LibTorch work in order. Each model has its own (and model-less work shares
// one per environment), instead of libuv's pool: with glibc, every thread that allocates gets its
// own heap arena, so spreading one model's steps over the pool's threads made each arena grow its
// own copy of the activations and map them afresh (vit_ti16: +60% step time, 2.7× the peak RSS,
// measured). On one thread the freed memory of a step is reused by the next.
//
// Every executor thread belongs to the environment (the main thread or a worker_threads worker)
// that started it. When that environment is torn down (a worker terminated, the main thread's
// exit) its threads stop: queued tasks are cancelled, a running one finishes, and each thread is
// joined before the environment goes (native/napi/executor.cpp). Node unloads a worker's addons
// when the worker ends; the addon keeps itself mapped, so that no thread of it can outlive its code.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <napi.h>

namespace rils::napi {

// Process exit (process.exit(), an uncaught exception) while a task runs would destroy LibTorch's
// statics under it: a segfault, every time, when measured during a trainStep. lib/addon/binding.ts closes
// this gate from process 'exit' (an atexit handler runs too late: oneDNN's function-local statics
// register their destructors at first use, after the addon loads). Tasks not yet started are
// dropped unrun; the running ones are waited for.
class ExitGate {
 public:
  static ExitGate& instance() {
    static auto* gate = new ExitGate();  // never destroyed: executor threads may outlive statics
    return *gate;
  }
  bool enter() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return false;
    ++running_;
    return true;
  }
  void leave() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--running_ == 0) idle_.notify_all();
  }
  void close_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    closed_ = true;
    idle_.wait(lock, [&] { return running_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int running_ = 0;
  bool closed_ = false;
};

class Executor {
 public:
  // A task runs with `run` true; false when its environment is being torn down: it then only
  // releases what it holds (napi/promise_worker.h drops its job).
  using Task = std::function<void(bool run)>;

  // A thread of `env`'s (see attach()).
  explicit Executor(Napi::Env env);
  // The thread runs its queued tasks, then ends; it is joined here, or by its environment's
  // teardown when this runs on the thread itself (the last task held the last reference).
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  bool on_thread() const;
  void post(Task task);

  // For work that belongs to no model: one executor per environment, started on first use.
  static Executor& shared(Napi::Env env);

  // At the addon's Init in `env`: the environment's threads are stopped and joined when it is torn
  // down, and the addon's code stays mapped for the life of the process.
  static void attach(Napi::Env env);
  // At process exit (lib/addon/binding.ts): `env`'s threads end without running anything more, joined.
  static void stop_all(napi_env env);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace rils::napi
