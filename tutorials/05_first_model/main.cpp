// Tutorial 05: your first model. A small MLP (Sequential of Linear and GELU) learns to tell the arms of
// the 2-D spirals apart. SGD with momentum and Adam train it from the same initial weights on the same
// batches; the program prints loss and accuracy as training goes, draws both loss curves and each
// model's decision boundary as SVG files, and checks its claims.
// Run: tutorial_05_first_model [--short] [--out DIR] [--seed N]. The page README.md next to this file
// explains each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ember.h"
#include "layers/containers.h"
#include "layers/linear.h"
#include "train/data/loader.h"
#include "train/data/tasks.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/svg_plot.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// 2 -> width -> width -> classes: two hidden layers of GELU units and a linear read-out of class scores
// (logits). Linear layers draw their initial weights from `gen`.
std::shared_ptr<nn::Sequential> make_mlp(std::int64_t width, std::int64_t classes, Generator& gen) {
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Linear>(2, width, true, &gen), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Linear>(width, width, true, &gen), std::make_shared<nn::GELU>(),
      std::make_shared<nn::Linear>(width, classes, true, &gen)});
}

// Loss and accuracy of `model` on the whole data set, without recording a graph.
struct Score {
  double loss, accuracy;
};
Score score(nn::Module& model, const data::TensorDataset& set) {
  NoGradGuard no_grad;
  const Tensor logits = model(set.inputs());
  const Tensor predicted = argmax(logits, -1);
  const auto p = predicted.to_vector<std::int64_t>(), y = set.targets().to_vector<std::int64_t>();
  std::int64_t right = 0;
  for (std::size_t i = 0; i < p.size(); ++i) right += p[i] == y[i];
  return {cross_entropy(logits, set.targets()).item(), static_cast<double>(right) / static_cast<double>(p.size())};
}

// The value after `flag` on the command line, or `fallback`.
std::string option(int argc, char** argv, const char* flag, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  const std::filesystem::path out_dir = option(argc, argv, "--out", ".");
  const std::uint64_t seed = std::strtoull(option(argc, argv, "--seed", "0").c_str(), nullptr, 10);
  // One thread: for a model this small threads cost more than they save, and a fixed count makes the
  // printed numbers the same on every machine (a parallel sum's rounding depends on how it is split).
  set_num_threads(1);
  tutorial::Claims claims;
  const auto start = std::chrono::steady_clock::now();

  // Sizes: the full run trains longer on more points; --short is what the test suite runs.
  const std::int64_t classes = 3, per_class = quick ? 100 : 200, width = 64, batch = 32;
  const std::int64_t steps = quick ? 800 : 3000, log_every = quick ? 100 : 300;
  const double noise = 0.02;

  tutorial::section("1. The data: three interleaved spirals");
  const auto train_set = std::make_shared<data::TensorDataset>(data::spirals(per_class, classes, noise, seed));
  std::printf("%lld points in %lld classes (%lld per arm, noise %.2f); the middle point of each arm:\n",
              static_cast<long long>(train_set->size()), static_cast<long long>(classes),
              static_cast<long long>(per_class), noise);
  for (std::int64_t k = 0; k < classes; ++k) {
    const auto xy = train_set->get(k * per_class + per_class / 2).input.to_vector<double>();
    std::printf("  class %lld, point %lld: (%+.3f, %+.3f)\n", static_cast<long long>(k),
                static_cast<long long>(k * per_class + per_class / 2), xy[0], xy[1]);
  }

  tutorial::section("2. The model: an MLP, built twice from the same weights");
  Generator init(seed + 1);
  const auto sgd_model = make_mlp(width, classes, init);
  const auto adam_model = make_mlp(width, classes, init);  // different draws ...
  adam_model->load_state_dict(sgd_model->state_dict());    // ... replaced by a copy of the first model's
  std::printf("%s", sgd_model->str().c_str());
  const std::int64_t by_hand = (2 * width + width) + (width * width + width) + (width * classes + classes);
  claims.check(sgd_model->num_parameters() == by_hand, "parameters: (2*64 + 64) + (64*64 + 64) + (64*3 + 3) = 4547");
  bool same_start = true;
  const auto ps = sgd_model->parameters(), pa = adam_model->parameters();
  for (std::size_t i = 0; i < ps.size(); ++i)
    same_start = same_start && ps[i].to_vector<float>() == pa[i].to_vector<float>() && !ps[i].is_same(pa[i]);
  claims.check(same_start, "both models start from equal weights, held in separate tensors");
  const Score at_start = score(*sgd_model, *train_set);
  std::printf("untrained: loss %.4f (ln 3 = %.4f), accuracy %.3f\n", at_start.loss, std::log(3.0), at_start.accuracy);
  claims.check(std::abs(at_start.loss - std::log(3.0)) < 0.2,
               "an untrained classifier's loss is near ln(3): it spreads its bets over 3 classes");

  tutorial::section("3. Training: SGD with momentum versus Adam");
  // The optimizers see the same batches: each has its own loader with the same seed.
  optim::SGD sgd({optim::ParamGroup{sgd_model->parameters(), 0.1, 0.0}}, /*momentum=*/0.9);
  optim::Adam adam({optim::ParamGroup{adam_model->parameters(), 0.01, 0.0}});
  data::DataLoader sgd_loader(train_set, batch, /*shuffle=*/true, seed);
  data::DataLoader adam_loader(train_set, batch, /*shuffle=*/true, seed);
  // The curves: the loss on the whole training set every `curve_every` steps, from step 0.
  const std::int64_t curve_every = 20;
  std::vector<double> at_step = {0}, sgd_loss = {at_start.loss}, adam_loss = {at_start.loss};
  std::printf("%6s  %10s %8s  %10s %8s\n", "step", "SGD loss", "acc", "Adam loss", "acc");
  const auto train_step = [](nn::Module& model, optim::Optimizer& opt, data::DataLoader& loader) {
    const data::Batch b = loader.next();  // input [32, 2], target [32]
    const Tensor loss = cross_entropy(model(b.input), b.target);
    opt.zero_grad();  // drop the previous step's gradients
    loss.backward();  // d loss / d every parameter
    opt.step();       // move each parameter against its gradient
  };
  // Both learning rates decay along a half cosine to 1% of their start: big steps early to make
  // progress, small steps late to settle into a minimum instead of bouncing around it.
  const optim::WarmupCosineSchedule sgd_lr(0.1, 0, steps, 0.001), adam_lr(0.01, 0, steps, 0.0001);
  Score sgd_score = at_start, adam_score = at_start;
  for (std::int64_t step = 1; step <= steps; ++step) {
    sgd.set_lr(sgd_lr.lr(step - 1));
    adam.set_lr(adam_lr.lr(step - 1));
    train_step(*sgd_model, sgd, sgd_loader);
    train_step(*adam_model, adam, adam_loader);
    if (step % curve_every != 0 && step != steps) continue;
    sgd_score = score(*sgd_model, *train_set);
    adam_score = score(*adam_model, *train_set);
    at_step.push_back(static_cast<double>(step));
    sgd_loss.push_back(sgd_score.loss);
    adam_loss.push_back(adam_score.loss);
    if (step % log_every == 0 || step == steps)
      std::printf("%6lld  %10.4f %8.3f  %10.4f %8.3f\n", static_cast<long long>(step), sgd_score.loss,
                  sgd_score.accuracy, adam_score.loss, adam_score.accuracy);
  }
  if (quick) {
    claims.check(adam_score.accuracy > 0.85, "after 800 steps Adam classifies more than 85% of the points right");
  } else {
    claims.check(adam_score.accuracy > 0.95, "after 3000 steps Adam classifies more than 95% of the points right");
  }
  claims.check(adam_score.loss < sgd_score.loss, "Adam ends with a lower loss than SGD with momentum, same steps");

  tutorial::section("4. Pictures: loss curves and decision boundaries");
  std::filesystem::create_directories(out_dir);
  train::LinePlot curves("spirals: training loss (whole set)", "step", "cross-entropy");
  curves.log_y().add("SGD, momentum 0.9, lr 0.1", at_step, sgd_loss).add("Adam, lr 0.01", at_step, adam_loss);
  const std::string curves_path = (out_dir / "spirals_loss.svg").string();
  curves.save(curves_path);
  std::printf("wrote %s\n", curves_path.c_str());

  // The plot's grid: every cell centre goes through the model in one batch, its argmax colours the cell.
  const int cells = 200;
  bool grid_ok = true;
  struct Trained {
    const char* tag;   // in the file name
    const char* name;  // in the title
    std::shared_ptr<nn::Sequential> model;
  };
  for (const Trained& t : {Trained{"sgd", "SGD", sgd_model}, Trained{"adam", "Adam", adam_model}}) {
    nn::Module& model = *t.model;
    train::DecisionBoundaryPlot plot(std::string("spirals: decision regions after ") + t.name, -1.25, 1.25, -1.25, 1.25,
                                     cells, cells);
    Tensor grid_class;
    {
      NoGradGuard no_grad;
      grid_class = argmax(model(plot.cell_centers()), -1);  // [cells * cells]
    }
    plot.set_classes(grid_class).add_points(train_set->inputs(), train_set->targets());
    const std::string path = (out_dir / ("spirals_boundary_" + std::string(t.tag) + ".svg")).string();
    plot.save(path);
    // Read the picture back: the cell under each training point should show the class the model gives
    // that point. Where they differ, the boundary runs through that point's cell.
    NoGradGuard no_grad;
    const auto g = grid_class.to_vector<std::int64_t>();
    const auto pred = argmax(model(train_set->inputs()), -1).to_vector<std::int64_t>();
    const auto xy = train_set->inputs().to_vector<double>();
    const double cell = 2.5 / cells;
    std::int64_t agree = 0, off_boundary_disagree = 0;
    for (std::size_t i = 0; i < pred.size(); ++i) {
      const int col = std::clamp(static_cast<int>((xy[2 * i] + 1.25) / cell), 0, cells - 1);
      const int row = std::clamp(static_cast<int>((xy[2 * i + 1] + 1.25) / cell), 0, cells - 1);  // row 0 at the bottom
      if (g[row * cells + col] == pred[i]) {
        ++agree;
        continue;
      }
      bool next_to_other = false;  // does a neighbouring cell hold the point's predicted class?
      for (int dr = -1; dr <= 1; ++dr)
        for (int dc = -1; dc <= 1; ++dc) {
          const int r = std::clamp(row + dr, 0, cells - 1), c = std::clamp(col + dc, 0, cells - 1);
          next_to_other = next_to_other || g[r * cells + c] == pred[i];
        }
      off_boundary_disagree += !next_to_other;
    }
    std::printf("wrote %s: the grid agrees with the model on %lld of %zu training points\n", path.c_str(),
                static_cast<long long>(agree), pred.size());
    grid_ok = grid_ok && off_boundary_disagree == 0 && agree >= static_cast<std::int64_t>(0.97 * pred.size());
  }
  claims.check(grid_ok,
               "the picture classifies the training points as the model does (>= 97%, and every "
               "exception sits in a cell the boundary crosses)");

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("\n(%.1f s)\n", seconds);
  return claims.exit_code();
}
