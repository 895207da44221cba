/// \file
/// \brief train::Trainer: the loop, evaluation, checkpoints, resume and SIGINT handling.
#include "train/trainer.h"

#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <limits>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "train/checkpoint.h"
#include "train/data/tasks.h"
#include "train/loss.h"
#include "train/progress.h"
#include "train/svg_plot.h"

namespace ember::train {

namespace {

std::atomic<bool> g_stop_requested{false};

extern "C" void on_sigint(int) { g_stop_requested.store(true); }

/// Scored positions (target != ignore) in a target batch.
std::int64_t scored_count(const Tensor& target) {
  std::int64_t n = 0;
  for (std::int64_t v : target.to_vector<std::int64_t>()) n += v != data::kIgnoreIndex;
  return n;
}

}  // namespace

Trainer::Trainer(std::shared_ptr<nn::Module> model, std::shared_ptr<optim::Optimizer> optimizer,
                 std::shared_ptr<const optim::Schedule> schedule, data::DataLoader train,
                 std::shared_ptr<const data::Dataset> held_out, TrainerConfig config)
    : model_(std::move(model)),
      optimizer_(std::move(optimizer)),
      schedule_(std::move(schedule)),
      train_(std::move(train)),
      held_out_(std::move(held_out)),
      config_(std::move(config)) {
  EMBER_CHECK(model_ && optimizer_ && schedule_, "Trainer: model, optimizer and schedule must be given");
  EMBER_CHECK(config_.steps >= 0 && config_.log_every > 0 && config_.eval_every >= 0 && config_.checkpoint_every >= 0 &&
                  config_.eval_batch_size > 0 && config_.clip_grad_norm >= 0,
              fmt::format("Trainer: bad config (steps {}, log_every {}, eval_every {}, checkpoint_every {}, "
                          "eval_batch_size {}, clip {})",
                          config_.steps, config_.log_every, config_.eval_every, config_.checkpoint_every,
                          config_.eval_batch_size, config_.clip_grad_norm));
  EMBER_CHECK(config_.amp == DType::Float32 || config_.amp == DType::Float16 || config_.amp == DType::BFloat16,
              "Trainer: amp must be float32 (off), float16 or bfloat16, got " + dtype_name(config_.amp));
  if (config_.amp == DType::Float16 && config_.loss_scaling) scaler_ = std::make_unique<amp::GradScaler>(config_.scaler);
  if (!config_.out_dir.empty()) std::filesystem::create_directories(config_.out_dir);
}

void Trainer::set_objective(Objective objective) {
  EMBER_CHECK(objective != nullptr, "Trainer::set_objective: the objective is empty");
  objective_ = std::move(objective);
}

amp::Autocast Trainer::autocast() const {
  const bool on = config_.amp != DType::Float32;
  return amp::Autocast(on ? config_.amp : DType::Float16, on);
}

std::string Trainer::path(const std::string& file) const {
  return (std::filesystem::path(config_.out_dir) / file).string();
}

double Trainer::train_step(const data::Batch& batch) {
  model_->train();
  optimizer_->set_lr(schedule_->lr(step_));
  optimizer_->zero_grad();
  Tensor loss;
  {
    const amp::Autocast region = autocast();
    loss = objective_ ? objective_(*model_, batch.input, batch.target)
                      : cross_entropy(model_->forward(batch.input), batch.target);
  }
  if (scaler_) {
    scaler_->scale(loss).backward();
    scaler_->unscale_(*optimizer_);  // clipping below sees the true gradients
  } else {
    loss.backward();
  }
  if (config_.clip_grad_norm > 0) optim::clip_grad_norm(model_->parameters(), config_.clip_grad_norm);
  if (scaler_) {
    scaler_->step(*optimizer_);  // skipped when a gradient overflowed
    scaler_->update();
  } else {
    optimizer_->step();
  }
  ++step_;
  const double value = loss.item();
  losses_.push_back(value);
  return value;
}

EvalResult Trainer::evaluate() {
  EvalResult r;
  if (!held_out_ || held_out_->size() == 0) return r;
  NoGradGuard no_grad;
  const amp::Autocast region = autocast();
  model_->eval();
  const std::int64_t n = held_out_->size();
  const std::int64_t m = config_.eval_examples > 0 ? std::min(n, config_.eval_examples) : n;
  double loss_sum = 0;
  std::int64_t tokens = 0, right = 0, rows = 0;
  for (std::int64_t begin = 0; begin < m; begin += config_.eval_batch_size) {
    std::vector<std::int64_t> idx;
    for (std::int64_t i = begin; i < std::min(m, begin + config_.eval_batch_size); ++i) idx.push_back(i * n / m);
    const data::Example b = held_out_->get_batch(idx);
    const Tensor logits = model_->forward(b.input), predictions = argmax(logits, -1);
    const std::int64_t scored = scored_count(b.target);
    if (scored > 0) loss_sum += cross_entropy(logits, b.target).item() * static_cast<double>(scored);
    tokens += scored;
    if (config_.exact_match) {
      for (bool ok : data::rows_correct(predictions, b.target)) right += ok;
      rows += static_cast<std::int64_t>(idx.size());
    } else {
      right += std::llround(data::token_accuracy(predictions, b.target) * static_cast<double>(scored));
    }
  }
  model_->train();
  r.loss = tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0;
  const std::int64_t total = config_.exact_match ? rows : tokens;
  r.accuracy = total > 0 ? static_cast<double>(right) / static_cast<double>(total) : 0.0;
  return r;
}

void Trainer::save() const {
  if (config_.out_dir.empty()) return;
  save_checkpoint(path("checkpoint.safetensors"), *model_, *optimizer_, step_, train_.state(), config_.metadata,
                  scaler_ ? scaler_->state_dict() : optim::NamedTensors{});
}

void Trainer::resume(const std::string& checkpoint_path) {
  const Checkpoint ckpt = load_checkpoint(checkpoint_path);
  restore(ckpt, *model_, *optimizer_);
  if (scaler_ && !ckpt.scaler.empty()) scaler_->load_state_dict(ckpt.scaler);  // else: a fresh scale
  train_.set_state(ckpt.loader);
  step_ = ckpt.step;
  // Rows after the checkpoint's step belong to the part of the old run that is being redone.
  if (!config_.out_dir.empty()) metrics_ = std::make_unique<MetricsLog>(MetricsLog::resume(path("metrics.csv"), step_ + 1));
}

void Trainer::close_window(Window& w, bool evaluate_now, TrainResult& result) {
  result.loss = w.loss / static_cast<double>(w.steps);
  EvalResult eval;
  if (evaluate_now) result.eval = eval = evaluate();
  const double seconds = std::max(monotonic_seconds() - w.start, 1e-9);
  log_row(result.loss, static_cast<double>(w.tokens) / seconds, evaluate_now ? &eval : nullptr);
  w = Window{0.0, 0, 0, monotonic_seconds()};
}

TrainResult Trainer::fit() {
  TrainResult result;
  g_stop_requested.store(false);
  const std::int64_t start = step_;
  if (!metrics_ && !config_.out_dir.empty()) metrics_ = std::make_unique<MetricsLog>(path("metrics.csv"));
  std::unique_ptr<ProgressBar> progress;
  if (config_.progress)
    progress = std::make_unique<ProgressBar>(config_.steps, std::cout, stdout_is_terminal(), monotonic_seconds, step_);
  Window window{0.0, 0, 0, monotonic_seconds()};
  while (step_ < config_.steps && !result.interrupted) {
    const data::Batch batch = train_.next();
    const double t0 = monotonic_seconds();
    const double loss = train_step(batch);
    if (progress) progress->update(step_, loss, static_cast<double>(batch.input.numel()) / (monotonic_seconds() - t0));
    window.loss += loss;
    window.tokens += batch.input.numel();
    ++window.steps;
    const bool last = step_ == config_.steps;
    const bool evaluate_now = last || (config_.eval_every > 0 && step_ % config_.eval_every == 0);
    if (evaluate_now || step_ % config_.log_every == 0) close_window(window, evaluate_now, result);
    if (config_.checkpoint_every > 0 && step_ % config_.checkpoint_every == 0) save();
    result.interrupted = g_stop_requested.load();
  }
  if (progress) progress->finish();
  if (step_ == start) result.eval = evaluate();  // nothing to train: still report where the model stands
  save();
  write_plot();
  result.step = step_;
  return result;
}

void Trainer::log_row(double train_loss, double tokens_per_s, const EvalResult* eval) {
  if (!metrics_) return;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  metrics_->append(step_, {{"loss", train_loss},
                           {"lr", schedule_->lr(step_ - 1)},
                           {"tokens_per_s", tokens_per_s},
                           {"eval_loss", eval ? eval->loss : nan},
                           {"eval_accuracy", eval ? eval->accuracy : nan}});
}

void Trainer::write_plot() const {
  if (!metrics_ || metrics_->rows().empty()) return;
  const MetricsTable& t = metrics_->table();
  const auto step = t.column("step");
  LinePlot plot("training curves", "step", "cross-entropy");
  plot.log_y().add("train loss", step, t.column("loss")).add("held-out loss", step, t.column("eval_loss"));
  plot.add_panel("held-out accuracy").add("accuracy", step, t.column("eval_accuracy"));
  plot.save(path("curves.svg"));
}

void Trainer::handle_interrupts() { std::signal(SIGINT, on_sigint); }

void Trainer::request_stop() { g_stop_requested.store(true); }

}  // namespace ember::train
