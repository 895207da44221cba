/// \file
/// \brief What the tutorials that compare mixers on a small task (10 and 11) share: a brief training run (AdamW on
/// batches taken in order, the loss printed now and then, the held-out exact match at the end) and the gap between
/// decoding token by token and the forward pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "ember.h"

namespace tutorial {

/// What a brief training run ends with.
struct TrainRun {
  double first = 0;  ///< mean loss of the first 10 steps
  double last = 0;   ///< mean loss of the last 10 steps
  double match = 0;  ///< held-out exact match, teacher forced
};

/// Trains `model` with AdamW (lr 3e-3) on batches of 64 problems taken in order, printing the loss now and then.
inline TrainRun train_briefly(const char* label, ember::nn::LanguageModel& model, const ember::data::TaskSplit& split,
                              std::int64_t steps) {
  std::printf("%s:\n", label);
  using namespace ember;
  const data::TaskData& task = split.train;
  const std::int64_t batch = 64, V = task.vocab_size();
  optim::AdamW opt(optim::decay_groups(model.named_parameters(), 3e-3, 0.1), 0.9, 0.95);
  std::vector<double> losses;
  for (std::int64_t step = 0; step < steps; ++step) {
    const std::int64_t start = (step * batch) % (task.size() - batch);
    const Tensor ids = narrow(task.inputs, 0, start, batch), target = narrow(task.targets, 0, start, batch);
    const Tensor loss =
        cross_entropy(reshape(model.forward(ids), {batch * task.seq_len, V}), reshape(target, {batch * task.seq_len}));
    opt.zero_grad();
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
    if (step % (steps / 5) == 0 || step == steps - 1)
      std::printf("  step %4lld  loss %.4f\n", static_cast<long long>(step + 1), losses.back());
  }
  TrainRun run;
  for (std::int64_t i = 0; i < 10; ++i) run.first += losses[i] / 10, run.last += losses[steps - 1 - i] / 10;
  run.match = data::exact_match(argmax(model.forward(split.held_out.inputs), -1), split.held_out.targets);
  return run;
}

/// The largest |logit| difference between decoding ids [B, T] token by token with model.step and one forward
/// pass over the whole batch: how far the decoding state is from the training form.
inline double step_forward_gap(ember::nn::LanguageModel& model, const ember::Tensor& ids) {
  using namespace ember;
  const Tensor logits = model.forward(ids);
  nn::LanguageModelState state = model.init_state(ids.shape()[0]);
  double gap = 0;
  for (std::int64_t t = 0; t < ids.shape()[1]; ++t)
    gap = std::max(gap, max(abs(model.step(select(ids, 1, t), state) - select(logits, 1, t))).item());
  return gap;
}

}  // namespace tutorial
