/// \file
/// \brief Checkpoints: what is written reads back bit for bit, and files that are not checkpoints are refused.
#include <filesystem>

#include "core/safetensors.h"
#include "helpers.h"
#include "layers/linear.h"
#include "train/checkpoint.h"

using namespace ember;

TEST_CASE("checkpoint: model, optimizer, step, loader position and generator state round trip") {
  const std::string path = (std::filesystem::temp_directory_path() / "ember_test_ckpt.safetensors").string();
  nn::Linear lin(3, 2);
  optim::AdamW opt(optim::decay_groups(lin.named_parameters(), 1e-2, 0.1));
  (lin.forward(ones({4, 3})) * lin.forward(ones({4, 3}))).backward(ones({4, 2}));
  opt.step();
  default_generator().manual_seed(0xfedcba9876543210ull);  // above 2^63: stored as the same 64 bits
  default_generator().set_offset(12345);
  train::save_checkpoint(path, lin, opt, 7, {2, 5}, {{"note", "hello"}});
  default_generator().manual_seed(1);

  const train::Checkpoint c = train::load_checkpoint(path);
  CHECK(c.step == 7);
  CHECK(c.loader == data::LoaderState{2, 5});
  CHECK(c.rng_seed == 0xfedcba9876543210ull);
  CHECK(c.rng_offset == 12345);
  CHECK(c.metadata.at("note") == "hello");
  REQUIRE(c.model.size() == 2);
  CHECK(c.model[0].first == "weight");
  CHECK(test::max_abs_diff(c.model[0].second, lin.weight) == 0.0);
  const auto opt_state = opt.state_dict();
  REQUIRE(c.optimizer.size() == opt_state.size());
  for (std::size_t i = 0; i < opt_state.size(); ++i) {
    CHECK(c.optimizer[i].first == opt_state[i].first);
    CHECK(test::max_abs_diff(c.optimizer[i].second, opt_state[i].second) == 0.0);
  }

  nn::Linear other(3, 2);
  optim::AdamW other_opt(optim::decay_groups(other.named_parameters(), 1e-2, 0.1));
  train::restore(c, other, other_opt);
  CHECK(test::max_abs_diff(other.bias, lin.bias) == 0.0);
  CHECK(default_generator().seed() == 0xfedcba9876543210ull);
  CHECK(default_generator().offset() == 12345);
}

TEST_CASE("checkpoint: a safetensors file without the trainer entries is refused by name") {
  const std::string path = (std::filesystem::temp_directory_path() / "ember_test_not_ckpt.safetensors").string();
  safetensors::save(path, {{"model.weight", ones({2})}});
  CHECK_THROWS_EMBER(train::load_checkpoint(path), "has no 'trainer.step'");
}

TEST_CASE("checkpoint: restoring into a model of another shape names the parameter") {
  const std::string path = (std::filesystem::temp_directory_path() / "ember_test_ckpt2.safetensors").string();
  nn::Linear lin(3, 2);
  optim::SGD opt({{lin.parameters(), 0.1, 0.0}});
  train::save_checkpoint(path, lin, opt, 1, {}, {});
  nn::Linear wider(4, 2);
  optim::SGD wider_opt({{wider.parameters(), 0.1, 0.0}});
  CHECK_THROWS_EMBER(train::restore(train::load_checkpoint(path), wider, wider_opt), "weight");
}
