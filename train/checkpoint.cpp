/// \file
/// \brief save_checkpoint / load_checkpoint / restore over safetensors.
#include "train/checkpoint.h"

#include <bit>

#include "core/creation.h"

namespace ember::train {

namespace {

constexpr const char* kModel = "model.";
constexpr const char* kOptim = "optim.";
constexpr const char* kScaler = "amp.scaler.";

Tensor int_scalar(std::int64_t v) { return from_vector(std::vector<std::int64_t>{v}, {}); }

std::int64_t read_int(const safetensors::Contents& c, const std::string& name, const std::string& path) {
  EMBER_CHECK(c.contains(name), "load_checkpoint: " + path + " has no '" + name + "' (not an ember checkpoint?)");
  const Tensor& t = c.at(name);
  EMBER_CHECK(t.dtype() == DType::Int64 && t.numel() == 1,
              "load_checkpoint: " + path + ": '" + name + "' must be one Int64, got " + dtype_name(t.dtype()) + " " +
                  shape_str(t.shape()));
  return t.to_vector<std::int64_t>()[0];
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& optimizer,
                     std::int64_t step, const data::LoaderState& loader,
                     const std::map<std::string, std::string>& metadata, const optim::NamedTensors& scaler) {
  safetensors::TensorList list;
  for (const auto& [name, t] : model.state_dict()) list.emplace_back(kModel + name, t);
  for (const auto& [name, t] : optimizer.state_dict()) list.emplace_back(kOptim + name, t);
  for (const auto& [name, t] : scaler) list.emplace_back(kScaler + name, t);
  list.emplace_back("trainer.step", int_scalar(step));
  list.emplace_back("trainer.loader_epoch", int_scalar(loader.epoch));
  list.emplace_back("trainer.loader_position", int_scalar(loader.position));
  list.emplace_back("rng.seed", int_scalar(std::bit_cast<std::int64_t>(default_generator().seed())));
  list.emplace_back("rng.offset", int_scalar(std::bit_cast<std::int64_t>(default_generator().offset())));
  safetensors::save(path, list, metadata);
}

Checkpoint load_checkpoint(const std::string& path) {
  const safetensors::Contents c = safetensors::load(path);
  Checkpoint ckpt;
  for (const auto& [name, t] : c.tensors) {
    if (name.starts_with(kModel)) ckpt.model.emplace_back(name.substr(6), t);
    if (name.starts_with(kOptim)) ckpt.optimizer.emplace_back(name.substr(6), t);
    if (name.starts_with(kScaler)) ckpt.scaler.emplace_back(name.substr(std::string_view(kScaler).size()), t);
  }
  ckpt.step = read_int(c, "trainer.step", path);
  ckpt.loader.epoch = read_int(c, "trainer.loader_epoch", path);
  ckpt.loader.position = read_int(c, "trainer.loader_position", path);
  ckpt.rng_seed = std::bit_cast<std::uint64_t>(read_int(c, "rng.seed", path));
  ckpt.rng_offset = std::bit_cast<std::uint64_t>(read_int(c, "rng.offset", path));
  ckpt.metadata = c.metadata;
  return ckpt;
}

void restore(const Checkpoint& ckpt, nn::Module& model, optim::Optimizer& optimizer) {
  model.load_state_dict(ckpt.model, true);
  optimizer.load_state_dict(ckpt.optimizer);
  default_generator().manual_seed(ckpt.rng_seed);
  default_generator().set_offset(ckpt.rng_offset);
}

}  // namespace ember::train
