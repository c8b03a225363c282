// A promise whose work runs off the JS thread, on a model's executor (napi/executor.h).
#pragma once
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <napi.h>

#include "napi/bridge.h"
#include "napi/executor.h"

namespace rils::napi {

// `inputs` are JS values kept alive until the work ends; `execute` runs on the executor's thread;
// `resolve` converts its result on the JS thread. Everything the job holds (the captures of
// `execute`, e.g. a model) is released on the JS thread, or on the work thread when the environment
// is gone (a worker_threads worker terminated mid-call): then the result is dropped, and a job
// still queued is not run at all.
template <class Result>
class PromiseWorker {
 public:
  using ExecuteFn = std::function<Result()>;
  using ResolveFn = std::function<Napi::Value(Napi::Env, Result&)>;

  static Napi::Promise Run(Napi::Env env, Executor& executor, std::vector<Napi::Value> inputs, ExecuteFn execute,
                           ResolveFn resolve) {
    auto life = std::make_shared<Life>();
    auto* job = new Job{Napi::Promise::Deferred::New(env), std::move(execute), std::move(resolve)};
    job->tsfn = Tsfn::New(env, "rils", 0, 1, static_cast<void*>(nullptr), &Finalized, new std::shared_ptr<Life>(life));
    for (auto& v : inputs)
      if (v.IsObject()) job->keep_alive.push_back(Napi::Persistent(v.As<Napi::Object>()));
    auto promise = job->deferred.Promise();
    executor.post([job, life](bool run) {
      if (run) {
        try {
          apply_worker_threads();
          job->result = job->execute();
        } catch (...) {
          job->error = describe_current_exception();
          job->failed = true;
        }
      }
      Deliver(job, *life);  // not run: the environment is going, so the job is dropped
    });
    return promise;
  }

 private:
  struct Job;
  static void CallJs(Napi::Env env, Napi::Function, void*, Job* job) { Complete(env, job); }
  using Tsfn = Napi::TypedThreadSafeFunction<void, Job, &PromiseWorker::CallJs>;

  struct Job {
    Napi::Promise::Deferred deferred;
    ExecuteFn execute;
    ResolveFn resolve;
    std::vector<Napi::ObjectReference> keep_alive{};
    Result result{};
    ErrorInfo error{};
    bool failed = false;
    Tsfn tsfn{};
  };

  // Whether the thread-safe function still exists. Node deletes one when its environment is torn
  // down, whoever still holds it; its finalizer sets `finalized` under the mutex, which the work
  // thread holds while it calls the function.
  struct Life {
    std::mutex mutex;
    bool finalized = false;
  };

  static void Finalized(Napi::Env, std::shared_ptr<Life>* life, void*) {
    {
      std::lock_guard<std::mutex> lock((*life)->mutex);
      (*life)->finalized = true;
    }
    delete life;
  }

  // On the work thread: hands the job to the JS thread, unless there is none any more.
  static void Deliver(Job* job, Life& life) {
    std::unique_lock<std::mutex> lock(life.mutex);
    auto tsfn = job->tsfn;  // the job may be deleted on the JS thread before Release()
    if (!life.finalized && tsfn.BlockingCall(job) == napi_ok) {
      tsfn.Release();
      return;
    }
    lock.unlock();
    Drop(job);  // finalized, or closing (BlockingCall then released this thread's share itself)
  }

  // The environment is gone: its references went with it, so they are let go without Node-API
  // calls; the rest (a model the work held, the result) is freed here.
  static void Drop(Job* job) {
    for (auto& ref : job->keep_alive) ref.SuppressDestruct();
    delete job;
  }

  // On the JS thread, or with a null env while the environment is torn down with the job queued.
  static void Complete(Napi::Env env, Job* job) {
    if (env == nullptr) return Drop(job);
    std::unique_ptr<Job> owned(job);
    try {
      Napi::HandleScope scope(env);
      Settle(env, *job);
    } catch (...) {
      // Node-API itself failed (an environment going away): nothing can reach JS, and no exception
      // may leave this callback.
    }
  }

  static void Settle(Napi::Env env, Job& job) {
    if (job.failed) return job.deferred.Reject(make_error(env, job.error).Value());
    try {
      job.deferred.Resolve(job.resolve(env, job.result));
    } catch (const Napi::Error& e) {
      job.deferred.Reject(e.Value());
    } catch (...) {
      job.deferred.Reject(make_error(env, describe_current_exception()).Value());
    }
  }
};

}  // namespace rils::napi
