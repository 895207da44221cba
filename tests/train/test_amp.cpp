/// \file
/// \brief amp::GradScaler's state machine (technique notes §8, oracles 2–4), amp::MasterWeights, the underflow that
/// loss scaling prevents, measured on a confident classifier, and mixed-precision training through the Trainer
/// against the same run in Float32.
#include <cmath>
#include <filesystem>

#include "core/half.h"
#include "helpers.h"
#include "layers/models/language_model.h"
#include "train/amp.h"
#include "train/checkpoint.h"
#include "train/data/tasks.h"
#include "train/trainer.h"

using namespace ember;

namespace {

/// One parameter with gradient `g` (Float32) inside an SGD optimizer with lr 0.5.
struct OneParam {
  Tensor p = from_vector(std::vector<double>{1.0f, -2.0f}, {2}).requires_grad_();
  std::shared_ptr<optim::Optimizer> opt;
  explicit OneParam(bool adam = false) {
    std::vector<optim::ParamGroup> groups{{{p}, 0.5}};
    if (adam) opt = std::make_shared<optim::Adam>(groups);
    else opt = std::make_shared<optim::SGD>(groups);
  }
  void set_grad(float a, float b) { p.set_grad(from_vector(std::vector<double>{a, b}, {2})); }
};

/// Runs one scaler step with gradients (a, b).
bool scaler_step(amp::GradScaler& s, OneParam& m, float a, float b) {
  m.set_grad(a, b);
  const bool stepped = s.step(*m.opt);
  s.update();
  return stepped;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  if (va.size() != vb.size()) return false;
  for (std::size_t i = 0; i < va.size(); ++i)
    if (std::bit_cast<std::uint32_t>(va[i]) != std::bit_cast<std::uint32_t>(vb[i])) return false;
  return true;
}

}  // namespace

TEST_CASE("GradScaler: backoff on Inf, growth after 2000 clean steps, tracker reset, never infinite (oracle 2)") {
  amp::GradScaler s;
  OneParam m;
  CHECK(s.get_scale() == 65536.0);
  CHECK(!scaler_step(s, m, INFINITY, 1.0f));
  CHECK(s.get_scale() == 32768.0);
  for (int i = 0; i < 1999; ++i) CHECK(scaler_step(s, m, 1.0f, 1.0f));
  CHECK(s.get_scale() == 32768.0);
  CHECK(s.growth_tracker() == 1999);
  CHECK(scaler_step(s, m, 1.0f, 1.0f));  // the 2000th clean step
  CHECK(s.get_scale() == 65536.0);
  CHECK(s.growth_tracker() == 0);
  // An overflow at clean step 1999 resets the count: growth needs 2000 more.
  for (int i = 0; i < 1998; ++i) scaler_step(s, m, 1.0f, 1.0f);
  CHECK(!scaler_step(s, m, 1.0f, NAN));
  CHECK(s.get_scale() == 32768.0);
  CHECK(s.growth_tracker() == 0);
  for (int i = 0; i < 1999; ++i) scaler_step(s, m, 1.0f, 1.0f);
  CHECK(s.get_scale() == 32768.0);
  CHECK(s.skipped_steps() == 2);

  amp::GradScalerConfig big;
  big.init_scale = std::ldexp(1.0, 127);  // the next growth, 2^128, is not a finite float
  big.growth_interval = 1;
  amp::GradScaler t(big);
  for (int i = 0; i < 3; ++i) scaler_step(t, m, 1.0f, 1.0f);
  CHECK(t.get_scale() == std::ldexp(1.0, 127));
}

TEST_CASE("GradScaler: scale multiplies the loss and unscale_ divides each gradient by S, once per step") {
  amp::GradScaler s;
  OneParam m;
  const Tensor loss = from_vector(std::vector<double>{0.25f}, {});
  CHECK(s.scale(loss).item() == 0.25 * 65536);
  m.set_grad(65536.0f * 3.0f, -65536.0f * 1e-8f);
  s.unscale_(*m.opt);
  const auto g = m.p.grad().to_vector<float>();
  CHECK(g[0] == 3.0f);  // S is a power of two: dividing is exact
  CHECK(g[1] == static_cast<float>(-65536.0f * 1e-8f) * (1.0f / 65536.0f));
  CHECK_THROWS_EMBER(s.unscale_(*m.opt), "already called on this optimizer");
  CHECK(s.step(*m.opt));  // step does not unscale a second time
  CHECK(m.p.to_vector<float>()[0] == 1.0f - 0.5f * 3.0f);
  CHECK_THROWS_EMBER(s.step(*m.opt), "already called since the last update()");
  s.update();
  CHECK_THROWS_EMBER(s.update(), "no unscale_() or step() since the last update()");
  CHECK_THROWS_EMBER(amp::GradScaler(amp::GradScalerConfig{65536, 0.5}), "growth_factor must be > 1");
  CHECK_THROWS_EMBER(amp::GradScaler(amp::GradScalerConfig{0}), "init_scale must be positive");
}

TEST_CASE("GradScaler: a skipped step leaves the parameters and Adam's m and v bit-identical (oracle 3)") {
  amp::GradScaler s;
  OneParam m(true);
  CHECK(scaler_step(s, m, 65536.0f * 0.5f, 65536.0f * -0.25f));  // one real step fills m and v
  const Tensor p0 = m.p.detach().clone();
  const optim::NamedTensors st0 = m.opt->state_dict();
  CHECK(!scaler_step(s, m, INFINITY, 1.0f));
  CHECK(!scaler_step(s, m, 1.0f, NAN));
  CHECK(same_bits(m.p.detach(), p0));
  const optim::NamedTensors st1 = m.opt->state_dict();
  REQUIRE(st1.size() == st0.size());
  for (std::size_t i = 0; i < st0.size(); ++i) {
    CHECK(st1[i].first == st0[i].first);
    if (st0[i].second.dtype() == DType::Float32) CHECK(same_bits(st1[i].second, st0[i].second));
    else CHECK(st1[i].second.to_vector<std::int64_t>() == st0[i].second.to_vector<std::int64_t>());
  }
  CHECK(m.opt->steps() == 1);
}

TEST_CASE("GradScaler: state_dict round trip and bad states") {
  amp::GradScalerConfig c;
  c.growth_interval = 3;
  amp::GradScaler a(c), b(c);
  OneParam m;
  scaler_step(a, m, INFINITY, 0.0f);
  scaler_step(a, m, 1.0f, 1.0f);
  b.load_state_dict(a.state_dict());
  CHECK(b.get_scale() == 32768.0);
  CHECK(b.growth_tracker() == 1);
  scaler_step(a, m, 1.0f, 1.0f);
  scaler_step(b, m, 1.0f, 1.0f);
  scaler_step(a, m, 1.0f, 1.0f);
  scaler_step(b, m, 1.0f, 1.0f);
  CHECK(a.get_scale() == 65536.0);
  CHECK(b.get_scale() == 65536.0);
  CHECK_THROWS_EMBER(b.load_state_dict({}), "no 'scale'");
  CHECK_THROWS_EMBER(b.load_state_dict({{"scale", scalar_tensor(-1.0)}, {"growth_tracker", a.state_dict()[1].second}}),
                     "out of range");
}

TEST_CASE("loss scaling: 1e-8 flushes to zero in float16, 1e-8 * 65536 survives and unscales to 1e-8 (oracle 4)") {
  const Tensor g = from_vector(std::vector<double>{1e-8f}, {1});
  CHECK(g.to(DType::Float16).item() == 0.0);
  const Tensor scaled = (g * 65536.0).to(DType::Float16);
  CHECK(std::abs(scaled.item() - 6.5536e-4) < 6.5536e-4 * std::ldexp(1.0, -11));
  const double back = (scaled.to(DType::Float32) * (1.0 / 65536)).item();
  CHECK(std::abs(back - 1e-8) < 1e-8 * std::ldexp(1.0, -10));
}

TEST_CASE("loss scaling: on a confident classifier float16 gradients flush to zero without scaling, not with it") {
  // The setup where underflow happens: small loss values. The loss carries a weight of 1e-4 (as an auxiliary loss
  // would), so dL/dlogits = 1e-4 (p − y)/N is about 1e-8 to 1e-7, around Float16's smallest subnormal 2^-24 ≈ 6e-8.
  // The logits are a Float16 tensor under autocast, so their gradient is too: count its entries that are zero where
  // Float32's is not.
  Generator gen(7);
  const std::int64_t N = 256, F = 32, H = 64, C = 10;
  const double weight = 1e-4;
  const Tensor x = randn({N, F}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen);
  Tensor w1 = (randn({H, F}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen) * 0.2).requires_grad_();
  Tensor w2 = (randn({C, H}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen) * 0.2).requires_grad_();
  const Tensor target = randint(0, C, {N}, DType::Int64, Device::cpu(), &gen);
  struct Grads {
    std::vector<float> logits;  // dL/dlogits, times 1/scale
    Tensor w1;                  // dL/dW1, unscaled
  };
  const auto run = [&](bool autocast, double scale) {
    w1.set_grad(Tensor());
    w2.set_grad(Tensor());
    Tensor logits, loss;
    {
      amp::Autocast region(DType::Float16, autocast);
      logits = nn::linear(relu(nn::linear(x, w1)), w2);
      logits.retain_grad();
      loss = cross_entropy(logits, target) * weight;
    }
    (loss * scale).backward();
    CHECK(logits.grad().dtype() == (autocast ? DType::Float16 : DType::Float32));
    return Grads{logits.grad().to_vector<float>(), w1.grad() * (1.0 / scale)};
  };
  const Grads ref = run(false, 1.0), plain = run(true, 1.0), scaled = run(true, 65536.0);
  std::int64_t nonzero = 0, flushed_plain = 0, flushed_scaled = 0;
  for (std::size_t i = 0; i < ref.logits.size(); ++i) {
    if (ref.logits[i] == 0.0f) continue;
    ++nonzero;
    flushed_plain += plain.logits[i] == 0.0f;
    flushed_scaled += scaled.logits[i] == 0.0f;
  }
  const auto rel = [&](const Grads& g) { return norm(g.w1 - ref.w1).item() / norm(ref.w1).item(); };
  MESSAGE("dL/dlogits: ", nonzero, " nonzero in float32; flushed to zero in float16: unscaled ", flushed_plain,
          ", scaled ", flushed_scaled, ". Relative error of dL/dW1: unscaled ", rel(plain), ", scaled ", rel(scaled));
  CHECK(flushed_plain > nonzero / 3);
  CHECK(flushed_scaled < nonzero / 100);
  CHECK(rel(scaled) < 1e-2);
  CHECK(rel(plain) > 10 * rel(scaled));
}

TEST_CASE("MasterWeights: updates below half a float16 ulp accumulate in the float32 master, not in float16") {
  // w = 1 in Float16, 100 SGD steps of −1e-4: a Float16 weight never moves (half its ulp at 1 is 2^-11 ≈ 4.9e-4),
  // the Float32 master goes to 0.99 and the model gets 0.99 rounded.
  Tensor w16 = from_vector(std::vector<double>{1.0f, 0.5f}, {2}).to(DType::Float16).requires_grad_();
  amp::MasterWeights master({{"w", w16}});
  optim::SGD opt({{master.master_tensors(), 1.0}});
  Tensor plain = w16.detach().clone();
  float expect[2] = {1.0f, 0.5f};
  for (int step = 0; step < 100; ++step) {
    w16.set_grad(from_vector(std::vector<double>{1e-4f, 1e-4f}, {2}).to(DType::Float16));
    master.copy_grads_to_master();
    opt.step();
    master.copy_master_to_model();
    plain = (plain.to(DType::Float32) - w16.grad().to(DType::Float32)).to(DType::Float16);  // no master
    const float g = half_bits_to_float(float_to_half_bits(1e-4f));                         // the Float16 gradient
    for (float& e : expect) e -= g;
  }
  CHECK(plain.to_vector<float>() == std::vector<float>{1.0f, 0.5f});
  const auto m = master.master_tensors()[0].to_vector<float>();
  CHECK(std::abs(m[0] - expect[0]) < 1e-6f);
  CHECK(std::abs(m[1] - expect[1]) < 1e-6f);
  const auto w = w16.detach().to_vector<float>();
  CHECK(w[0] == half_bits_to_float(float_to_half_bits(m[0])));
  CHECK(w[1] == half_bits_to_float(float_to_half_bits(m[1])));
  CHECK(w[0] < 0.9903f);
  CHECK(w16.dtype() == DType::Float16);
  CHECK(master.master_tensors()[0].dtype() == DType::Float32);
}

namespace {

struct AmpRun {
  double final_loss = 0;
  std::vector<double> losses;
  double scale = 0;
  std::int64_t skipped = 0;
};

/// How train_copy runs.
struct AmpOptions {
  DType amp = DType::Float32;
  bool loss_scaling = true;
  std::int64_t steps = 200;            // steps to run now
  std::int64_t schedule = 200;         // the cosine schedule's length
  std::int64_t growth_interval = 2000;  // GradScaler's (PyTorch's default)
  std::string dir;                      // checkpoint directory ("" for none)
  bool resume = false;
};

/// Options for a run in `amp` with or without loss scaling.
AmpOptions in(DType amp, bool loss_scaling = true) {
  AmpOptions o;
  o.amp = amp;
  o.loss_scaling = loss_scaling;
  return o;
}

/// The copy task trained by the reference model of the benchmarks (d_model 128, 4 heads, 2 layers), in Float32 or
/// mixed precision.
AmpRun train_copy(const AmpOptions& o) {
  data::CopyConfig cc;
  cc.length = 6;
  cc.num_symbols = 8;
  cc.num_examples = 512;
  const data::TaskData task = data::copy_task(cc, 1);
  cc.num_examples = 128;
  const data::TaskData held_out = data::copy_task(cc, 2);
  nn::LanguageModelConfig mc;
  mc.vocab_size = task.tokenizer.vocab_size();
  mc.max_len = 16;  // otherwise the reference model: d_model 128, 4 heads, 2 layers
  mc.dropout = 0.0;
  mc.seed = 3;
  auto model = std::make_shared<nn::LanguageModel>(mc);
  auto opt = std::make_shared<optim::AdamW>(optim::decay_groups(model->named_parameters(), 3e-3, 0.1));
  auto sched = std::make_shared<optim::WarmupCosineSchedule>(3e-3, 10, o.schedule, 3e-4);
  train::TrainerConfig tc;
  tc.steps = o.steps;
  tc.log_every = 10;
  tc.progress = false;
  tc.amp = o.amp;
  tc.loss_scaling = o.loss_scaling;
  tc.scaler.growth_interval = o.growth_interval;
  tc.out_dir = o.dir;
  train::Trainer t(model, opt, sched, data::DataLoader(task.dataset(), 32, true, 5, true), held_out.dataset(), tc);
  if (o.resume) t.resume((std::filesystem::path(o.dir) / "checkpoint.safetensors").string());
  const train::TrainResult r = t.fit();
  return {r.eval.loss, t.losses(), t.scaler() ? t.scaler()->get_scale() : 0.0,
          t.scaler() ? t.scaler()->skipped_steps() : 0};
}

}  // namespace

TEST_CASE("Trainer with amp: float16 with loss scaling and bfloat16 without end within 5% of float32's loss") {
  const AmpRun f32 = train_copy(in(DType::Float32)), f16 = train_copy(in(DType::Float16)),
               bf16 = train_copy(in(DType::BFloat16, false));
  MESSAGE("held-out loss after 200 steps: float32 ", f32.final_loss, ", float16 + scaling ", f16.final_loss,
          ", bfloat16 ", bf16.final_loss, "; float16 skipped ", f16.skipped, " steps");
  CHECK(f32.final_loss < 0.1 * std::log(8.0));  // it learned the task
  CHECK(std::abs(f16.final_loss - f32.final_loss) < 0.05 * f32.final_loss);
  CHECK(std::abs(bf16.final_loss - f32.final_loss) < 0.05 * f32.final_loss);
  CHECK(f16.losses != f32.losses);  // the runs did differ in precision
  CHECK(bf16.losses != f32.losses);
}

TEST_CASE("Trainer with amp: the loss scale is saved in the checkpoint and a resumed run replays the losses") {
  const auto dir = (std::filesystem::temp_directory_path() / "ember_test_amp_resume").string();
  std::filesystem::remove_all(dir);
  AmpOptions o = in(DType::Float16);
  o.steps = o.schedule = 60;
  o.growth_interval = 20;
  const AmpRun full = train_copy(o);
  o.dir = dir;
  o.steps = 30;
  const AmpRun first = train_copy(o);
  const train::Checkpoint ckpt = train::load_checkpoint((std::filesystem::path(dir) / "checkpoint.safetensors").string());
  REQUIRE(ckpt.scaler.size() == 2);
  CHECK(ckpt.scaler[0].second.item() == first.scale);
  CHECK(ckpt.scaler[1].second.to_vector<std::int64_t>()[0] > 0);
  o.steps = 60;
  o.resume = true;
  const AmpRun resumed = train_copy(o);
  REQUIRE(resumed.losses.size() == 30);
  CHECK(std::vector<double>(full.losses.begin() + 30, full.losses.end()) == resumed.losses);
  CHECK(resumed.scale == full.scale);
  CHECK(full.scale != 65536.0);  // the scale moved during the run, so restoring it mattered
  std::filesystem::remove_all(dir);
}
