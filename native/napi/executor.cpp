#include "napi/executor.h"

#include <dlfcn.h>

#include <algorithm>
#include <map>
#include <vector>

namespace rils::napi {

struct Executor::State {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<Task> tasks;
  bool stop = false;    // run what is queued, then end
  bool cancel = false;  // the environment is going: queued tasks only release what they hold
  std::thread thread;   // joined on its environment's JS thread, never by itself
  napi_env env = nullptr;

  void run_loop();
};

namespace {

// The executors of each environment that are not yet joined, and its shared one. Only the JS thread
// of an environment joins its threads, so a thread is never joined twice at once.
struct Group {
  std::vector<std::shared_ptr<Executor::State>> threads;
  std::vector<std::shared_ptr<Executor::State>> finished;  // destroyed on their own thread: join later
  std::unique_ptr<Executor> shared;
};

std::mutex& registry_mutex() {
  static auto* m = new std::mutex();  // never destroyed: threads may outlive statics
  return *m;
}

std::map<napi_env, Group>& groups() {
  static auto* g = new std::map<napi_env, Group>();
  return *g;
}

void join(const std::shared_ptr<Executor::State>& s) {
  if (s->thread.joinable() && s->thread.get_id() != std::this_thread::get_id()) s->thread.join();
}

// Keeps this shared object (and so LibTorch, which it links) mapped until the process ends: Node
// dlclose()s a worker's addons when the worker ends, and a thread still unwinding through our code,
// or an OpenMP pool thread parked in LibTorch's, would then jump into unmapped memory.
void pin_addon() {
  static const bool pinned = [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&pin_addon), &info) == 0 || info.dli_fname == nullptr) return false;
    return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
  }();
  (void)pinned;
}

void on_teardown(void* env) { Executor::stop_all(static_cast<napi_env>(env)); }

}  // namespace

void Executor::State::run_loop() {
  for (;;) {
    Task task;
    bool run = false;
    {
      std::unique_lock<std::mutex> lock(mutex);
      ready.wait(lock, [&] { return stop || !tasks.empty(); });
      if (tasks.empty()) return;  // stopped and drained
      task = std::move(tasks.front());
      tasks.pop_front();
      run = !cancel;
    }
    if (!ExitGate::instance().enter()) {
      // The process is exiting: nothing may touch LibTorch any more, not even to free a model
      // the task holds. It is left as it is.
      new Task(std::move(task));
      continue;
    }
    task(run);
    ExitGate::instance().leave();
  }
}

Executor::Executor(Napi::Env env) : state_(std::make_shared<State>()) {
  state_->env = env;
  state_->thread = std::thread([s = state_.get()] { s->run_loop(); });
  std::vector<std::shared_ptr<State>> finished;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& group = groups()[env];
    group.threads.push_back(state_);
    finished.swap(group.finished);
  }
  for (auto& s : finished) join(s);  // threads that ended after their last task: reaped here
}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->ready.notify_one();
  {
    std::lock_guard<std::mutex> registry(registry_mutex());
    auto group = groups().find(state_->env);
    if (group == groups().end()) return;  // its environment's teardown joins it
    auto& threads = group->second.threads;
    threads.erase(std::remove(threads.begin(), threads.end(), state_), threads.end());
    if (on_thread()) {  // a thread cannot join itself: the next executor or the teardown will
      group->second.finished.push_back(state_);
      return;
    }
  }
  join(state_);
}

bool Executor::on_thread() const { return std::this_thread::get_id() == state_->thread.get_id(); }

void Executor::post(Task task) {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    if (!state_->cancel) {
      state_->tasks.push_back(std::move(task));
      state_->ready.notify_one();
      return;
    }
  }
  task(false);  // the environment is gone: release what the task holds, here
}

Executor& Executor::shared(Napi::Env env) {
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto& group = groups()[env];
    if (group.shared) return *group.shared;
  }
  auto executor = std::make_unique<Executor>(env);  // registers itself, under the lock
  std::lock_guard<std::mutex> lock(registry_mutex());
  return *(groups()[env].shared = std::move(executor));
}

void Executor::attach(Napi::Env env) {
  pin_addon();
  napi_add_env_cleanup_hook(env, on_teardown, static_cast<napi_env>(env));
}

void Executor::stop_all(napi_env env) {
  Group group;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    auto it = groups().find(env);
    if (it == groups().end()) return;
    group = std::move(it->second);
    groups().erase(it);
  }
  auto all = group.threads;
  all.insert(all.end(), group.finished.begin(), group.finished.end());
  if (group.shared) all.push_back(group.shared->state_);
  for (auto& s : all) {
    {
      std::lock_guard<std::mutex> lock(s->mutex);
      s->stop = s->cancel = true;
    }
    s->ready.notify_one();
  }
  for (auto& s : all) join(s);
}

}  // namespace rils::napi
