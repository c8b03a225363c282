// JS option objects ↔ the native structs, driven by the field tables (model/fields.h). Keys are the
// PyTorch reference's snake_case names; lib/ converts its camelCase options and checks them against
// the same tables first (schema()).
#pragma once
#include <optional>
#include <string>

#include <napi.h>

#include "model/config.h"
#include "train/trainer.h"

namespace rils::napi {

// {preset?: string, config?: {field: number}} → a validated config.
RilsConfig config_from_js(const Napi::Object& options);
Napi::Object config_to_js(Napi::Env env, const RilsConfig& cfg);

// {train?: {field: number | boolean}} → training options (optimiser, loss, mask ratio), each
// checked against its declared range.
TrainOptions train_options_from_js(const Napi::Object& options);
Napi::Object train_options_to_js(Napi::Env env, const TrainOptions& o);

Napi::Object stats_to_js(Napi::Env env, const StepStats& s);

// The tables lib/ validates and converts with: {config, train, stats: FieldInfo[], presets:
// {name: config}}, each FieldInfo {name, type: 'int' | 'real' | 'bool' | 'choice', default, choices?,
// min, max, minOpen, maxOpen} (stats: {name, type, reduce}).
Napi::Object schema_to_js(Napi::Env env);

// 'cpu', 'cuda' or 'cuda:N' → a device that exists (a typed error otherwise).
torch::Device parse_device(const std::string& name);

// {device?: string, run?: {precision}} (RILS_RUN_FIELDS) → where and how the model computes.
// 'auto' (the default): bf16 autocast on CUDA, fp32 on the CPU. 'bf16' where it cannot run (a CPU
// without bf16 units, LibTorch 1.13): a device error saying why (model/precision.h).
Execution execution_from_js(const Napi::Object& options);

// {distributed?: {master_addr, fields: {RILS_DISTRIBUTED_FIELDS}}} (lib/ fills
// every field) → the rendezvous, or nullopt for a single process.
std::optional<DistributedOptions> distributed_options_from_js(const Napi::Object& options);

}  // namespace rils::napi
