// A thread that runs LibTorch work in order. Each model has its own (and model-less work shares
// one), instead of libuv's pool: with glibc, every thread that allocates gets its own heap arena,
// so spreading one model's steps over the pool's threads made each arena grow its own copy of the
// activations and map them afresh (vit_ti16: +60% step time, 2.7× the peak RSS, measured). On one
// thread the freed memory of a step is reused by the next.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace rils::napi {

// Process exit (process.exit(), an uncaught exception) while a task runs would destroy LibTorch's
// statics under it: a segfault, every time, when measured during a trainStep. lib/binding.ts closes
// this gate from process 'exit' (an atexit handler runs too late: oneDNN's function-local statics
// register their destructors at first use, after the addon loads). Tasks not yet started are
// dropped; the running ones are waited for.
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
  Executor() : state_(std::make_shared<State>()) {
    thread_ = std::thread([s = state_] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock<std::mutex> lock(s->mutex);
          s->ready.wait(lock, [&] { return s->stop || !s->tasks.empty(); });
          if (s->tasks.empty()) return;  // stopped and drained
          task = std::move(s->tasks.front());
          s->tasks.pop_front();
        }
        if (!ExitGate::instance().enter()) continue;  // the process is exiting
        task();
        ExitGate::instance().leave();
      }
    });
  }
  ~Executor() {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
    }
    state_->ready.notify_one();
    // The thread owns its state; if the last owner is the thread itself, let it finish alone.
    if (std::this_thread::get_id() == thread_.get_id()) thread_.detach();
    else thread_.join();
  }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  bool on_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->tasks.push_back(std::move(task));
    }
    state_->ready.notify_one();
  }

  // For work that belongs to no model (built on first use, never destroyed).
  static Executor& shared() {
    static auto* executor = new Executor();
    return *executor;
  }

 private:
  struct State {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::function<void()>> tasks;
    bool stop = false;
  };
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace rils::napi
