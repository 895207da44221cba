/// \file
/// \brief Trainer: exact resume from a checkpoint, evaluation against a direct computation, the metrics
/// file, and a clean stop on SIGINT with a checkpoint.
#include <csignal>
#include <filesystem>

#include "helpers.h"
#include "layers/models/language_model.h"
#include "train/checkpoint.h"
#include "train/data/tasks.h"
#include "train/metrics.h"
#include "train/trainer.h"

using namespace ember;

namespace {

std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("ember_test_trainer_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

data::TaskData small_task(std::uint64_t seed) {
  data::CopyConfig c;
  c.length = 4;
  c.num_symbols = 5;
  c.num_examples = 96;
  return data::copy_task(c, seed);
}

std::shared_ptr<nn::LanguageModel> small_model(std::int64_t vocab, std::uint64_t seed) {
  nn::LanguageModelConfig c;
  c.vocab_size = vocab;
  c.d_model = 16;
  c.n_heads = 2;
  c.n_layers = 1;
  c.max_len = 16;
  c.dropout = 0.1;  // so the generator state matters for exact resume
  c.seed = seed;
  return std::make_shared<nn::LanguageModel>(c);
}

/// A trainer over `model` on the small copy task, `steps` steps, files in `dir`.
train::Trainer make_trainer(std::shared_ptr<nn::LanguageModel> model, std::int64_t steps, const std::string& dir) {
  const data::TaskData task = small_task(3), held_out = small_task(4);
  auto opt = std::make_shared<optim::AdamW>(optim::decay_groups(model->named_parameters(), 3e-3, 0.1));
  auto sched = std::make_shared<optim::WarmupCosineSchedule>(3e-3, 5, 30, 3e-4);
  train::TrainerConfig tc;
  tc.steps = steps;
  tc.log_every = 4;
  tc.eval_every = 10;
  tc.out_dir = dir;
  tc.progress = false;
  return train::Trainer(model, opt, sched, data::DataLoader(task.dataset(), 8, true, 11, true), held_out.dataset(),
                        tc);
}

}  // namespace

TEST_CASE("trainer: a run resumed from a checkpoint replays the uninterrupted losses exactly") {
  default_generator().manual_seed(5);
  auto whole_model = small_model(small_task(3).vocab_size(), 1);
  train::Trainer whole = make_trainer(whole_model, 30, temp_dir("whole"));
  whole.fit();
  REQUIRE(whole.losses().size() == 30);

  default_generator().manual_seed(5);
  const std::string dir = temp_dir("parts");
  train::Trainer first = make_trainer(small_model(small_task(3).vocab_size(), 1), 13, dir);
  first.fit();
  // A model with other initial weights and a disturbed generator: resume must restore both.
  default_generator().manual_seed(999);
  auto resumed_model = small_model(small_task(3).vocab_size(), 77);
  train::Trainer second = make_trainer(resumed_model, 30, dir);
  second.resume(dir + "/checkpoint.safetensors");
  CHECK(second.step() == 13);
  second.fit();
  REQUIRE(second.losses().size() == 17);
  for (std::size_t i = 0; i < 13; ++i) CHECK(first.losses()[i] == whole.losses()[i]);
  for (std::size_t i = 0; i < 17; ++i) CHECK(second.losses()[i] == whole.losses()[13 + i]);
  const auto a = whole_model->state_dict(), b = resumed_model->state_dict();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(test::max_abs_diff(a[i].second, b[i].second) == 0.0);
  // Rows every 4 steps, at evaluations (every 10) and at the end of each run: the first part's last row
  // (step 13) stays, the resumed part adds its own.
  const std::vector<double> whole_steps = {4, 8, 10, 12, 16, 20, 24, 28, 30};
  const std::vector<double> part_steps = {4, 8, 10, 12, 13, 16, 20, 24, 28, 30};
  CHECK(train::read_csv(std::filesystem::temp_directory_path() / "ember_test_trainer_whole/metrics.csv")
            .column("step") == whole_steps);
  CHECK(train::read_csv(dir + "/metrics.csv").column("step") == part_steps);
}

TEST_CASE("trainer: evaluate equals cross-entropy and exact match computed directly") {
  auto model = small_model(small_task(3).vocab_size(), 2);
  train::Trainer t = make_trainer(model, 0, temp_dir("eval"));
  const train::EvalResult r = t.evaluate();
  const data::TaskData held_out = small_task(4);
  model->eval();
  const Tensor logits = model->forward(held_out.inputs).to(DType::Float64);
  const auto z = logits.to_vector<double>();
  const auto y = held_out.targets.to_vector<std::int64_t>();
  const std::int64_t V = logits.shape()[2], rows = held_out.targets.shape()[0], T = held_out.targets.shape()[1];
  double loss = 0;
  std::int64_t scored = 0, right_rows = 0;
  for (std::int64_t i = 0; i < rows; ++i) {
    bool row_ok = true;
    for (std::int64_t t = 0; t < T; ++t) {
      const std::int64_t target = y[i * T + t];
      if (target == data::kIgnoreIndex) continue;
      const double* zi = &z[(i * T + t) * V];
      double m = zi[0], s = 0;
      std::int64_t best = 0;
      for (std::int64_t v = 0; v < V; ++v)
        if (zi[v] > zi[best]) best = v;
      m = zi[best];
      for (std::int64_t v = 0; v < V; ++v) s += std::exp(zi[v] - m);
      loss += m + std::log(s) - zi[target];
      ++scored;
      row_ok = row_ok && best == target;
    }
    right_rows += row_ok;
  }
  CHECK(r.loss == doctest::Approx(loss / static_cast<double>(scored)).epsilon(1e-5));
  CHECK(r.accuracy == doctest::Approx(static_cast<double>(right_rows) / static_cast<double>(rows)));
}

TEST_CASE("trainer: SIGINT stops after the current step and leaves a checkpoint of that step") {
  /// Raises SIGINT from inside the third forward pass, as Ctrl-C would arrive mid-step.
  struct InterruptAt : nn::Module {
    std::shared_ptr<nn::LanguageModel> inner;
    int calls = 0;
    explicit InterruptAt(std::shared_ptr<nn::LanguageModel> m) : Module("InterruptAt"), inner(register_module("m", m)) {}
    Tensor forward(const Tensor& x) override {
      if (++calls == 3) std::raise(SIGINT);
      return inner->forward(x);
    }
  };
  const std::string dir = temp_dir("sigint");
  auto wrapped = std::make_shared<InterruptAt>(small_model(small_task(3).vocab_size(), 1));
  const data::TaskData task = small_task(3);
  auto opt = std::make_shared<optim::AdamW>(optim::decay_groups(wrapped->named_parameters(), 1e-3, 0.0));
  train::TrainerConfig tc;
  tc.steps = 50;
  tc.out_dir = dir;
  tc.progress = false;
  train::Trainer t(wrapped, opt, std::make_shared<optim::ConstantSchedule>(1e-3),
                   data::DataLoader(task.dataset(), 8, true, 1), nullptr, tc);
  train::Trainer::handle_interrupts();
  const train::TrainResult r = t.fit();
  std::signal(SIGINT, SIG_DFL);
  CHECK(r.interrupted);
  CHECK(r.step == 3);
  CHECK(train::load_checkpoint(dir + "/checkpoint.safetensors").step == 3);
}

TEST_CASE("trainer: bad settings are reported") {
  auto model = small_model(8, 1);
  auto opt = std::make_shared<optim::AdamW>(optim::decay_groups(model->named_parameters(), 1e-3, 0.0));
  train::TrainerConfig tc;
  tc.log_every = 0;
  const data::TaskData task = small_task(3);
  CHECK_THROWS_EMBER(train::Trainer(model, opt, std::make_shared<optim::ConstantSchedule>(1e-3),
                                    data::DataLoader(task.dataset(), 8, true, 1), nullptr, tc),
                     "log_every 0");
}
