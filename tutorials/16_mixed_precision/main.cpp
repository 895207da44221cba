// Tutorial 16: mixed precision. Float32, Float16 and bfloat16 bit by bit; where small gradients vanish in Float16
// (measured on a trained model), how loss scaling lifts them back into range, training in Float16 with and without
// amp::GradScaler and in bfloat16, and why the optimizer must update Float32 master weights.
// Run: tutorial_16_mixed_precision [--short] [--out DIR]. The page README.md next to this file explains each step.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <numbers>
#include <string>
#include <vector>

#include "core/half.h"
#include "ember.h"
#include "layers/models/language_model.h"
#include "train/amp.h"
#include "train/data/tasks.h"
#include "train/optim.h"
#include "train/svg_plot.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// 1. The formats

// The low `n` bits of x as a string of 0s and 1s, most significant first.
std::string bit_string(std::uint32_t x, int n) {
  std::string s;
  for (int i = n - 1; i >= 0; --i) s += ((x >> i) & 1u) ? '1' : '0';
  return s;
}

// "s eeeee mmmmmmmmmm": the sign, exponent and mantissa fields of a format with `e` exponent and `m` mantissa bits.
std::string fields(std::uint32_t bits, int e, int m) {
  return bit_string(bits >> (e + m), 1) + " " + bit_string(bits >> m, e) + " " + bit_string(bits, m);
}

float fp16(float x) { return half_bits_to_float(float_to_half_bits(x)); }
float bf16(float x) { return bf16_bits_to_float(float_to_bf16_bits(x)); }

// Section 1: a few values in the three formats, the formats' limits, and the rounding oracles.
void formats(tutorial::Claims& claims) {
  tutorial::section("1. Float32, Float16 and bfloat16 bit by bit");
  const float pi = std::numbers::pi_v<float>;
  const std::vector<std::pair<const char*, float>> values = {
      {"1", 1.0f},         {"0.1", 0.1f},       {"pi", pi},      {"65504", 65504.0f},
      {"65520", 65520.0f}, {"2^-24", 0x1p-24f}, {"1e-8", 1e-8f}, {"1+2^-8", 1.0f + 0x1p-8f}};
  for (const auto& [name, x] : values) {
    std::printf("%s\n", name);
    std::printf("  fp32 %-45s = %.10g\n", fields(std::bit_cast<std::uint32_t>(x), 8, 23).c_str(), x);
    std::printf("  fp16 %-45s = %.10g\n", fields(float_to_half_bits(x), 5, 10).c_str(), fp16(x));
    std::printf("  bf16 %-45s = %.10g\n", fields(float_to_bf16_bits(x), 8, 7).c_str(), bf16(x));
  }

  // Each limit decoded from its bit pattern by the library, against the closed form.
  struct Limit {
    const char* format;
    const char* what;
    float decoded;
    double closed_form;
  };
  const auto f32 = [](std::uint32_t b) { return std::bit_cast<float>(b); };
  const std::vector<Limit> limits = {
      {"fp32", "max finite      0x7f7fffff", f32(0x7f7fffffu), std::ldexp(2.0 - std::ldexp(1.0, -23), 127)},
      {"fp32", "min normal      0x00800000", f32(0x00800000u), std::ldexp(1.0, -126)},
      {"fp32", "min subnormal   0x00000001", f32(0x00000001u), std::ldexp(1.0, -149)},
      {"fp32", "ulp at 1   0x3f800001 - 1", f32(0x3f800001u) - 1.0f, std::ldexp(1.0, -23)},
      {"fp16", "max finite          0x7bff", half_bits_to_float(0x7bff), std::ldexp(2.0 - std::ldexp(1.0, -10), 15)},
      {"fp16", "min normal          0x0400", half_bits_to_float(0x0400), std::ldexp(1.0, -14)},
      {"fp16", "min subnormal       0x0001", half_bits_to_float(0x0001), std::ldexp(1.0, -24)},
      {"fp16", "ulp at 1       0x3c01 - 1", half_bits_to_float(0x3c01) - 1.0f, std::ldexp(1.0, -10)},
      {"bf16", "max finite          0x7f7f", bf16_bits_to_float(0x7f7f), std::ldexp(2.0 - std::ldexp(1.0, -7), 127)},
      {"bf16", "min normal          0x0080", bf16_bits_to_float(0x0080), std::ldexp(1.0, -126)},
      {"bf16", "min subnormal       0x0001", bf16_bits_to_float(0x0001), std::ldexp(1.0, -133)},
      {"bf16", "ulp at 1       0x3f81 - 1", bf16_bits_to_float(0x3f81) - 1.0f, std::ldexp(1.0, -7)}};
  bool all_exact = true;
  std::printf("\n%-6s %-28s %14s %14s\n", "format", "limit (bits)", "decoded", "closed form");
  for (const Limit& l : limits) {
    std::printf("%-6s %-28s %14.6g %14.6g\n", l.format, l.what, l.decoded, l.closed_form);
    all_exact = all_exact && static_cast<double>(l.decoded) == l.closed_form;
  }
  claims.check(all_exact, "the 12 limits decoded from their bit patterns equal the closed forms exactly");

  // Round to nearest even (technique notes §8): the oracles, through the scalar conversions and through tensors.
  const auto tensor16 = [](float x) { return full({1}, x).to(DType::Float16).to(DType::Float32).item(); };
  const auto tensorbf = [](float x) { return full({1}, x).to(DType::BFloat16).to(DType::Float32).item(); };
  claims.check(fp16(65519.0f) == 65504.0f && tensor16(65519.0f) == 65504.0,
               "fp16(65519) = 65504: below the midpoint 65520 it rounds down to the largest finite value");
  claims.check(std::isinf(fp16(65520.0f)) && std::isinf(tensor16(65520.0f)),
               "fp16(65520) = inf: the midpoint to the next (missing) value 65536 rounds to even, i.e. up");
  claims.check(fp16(0x1p-25f) == 0.0f && tensor16(0x1p-25f) == 0.0,
               "fp16(2^-25) = 0: half the smallest subnormal is a tie, rounded to the even 0");
  claims.check(fp16(0x3p-26f) == 0x1p-24f && tensor16(0x3p-26f) == 0x1p-24,
               "fp16(3*2^-26) = 2^-24: above the tie it rounds up to the smallest subnormal");
  claims.check(fp16(1e-8f) == 0.0f, "fp16(1e-8) = 0: a gradient of 1e-8 is lost");
  claims.check(bf16(1.0f + 0x1p-8f) == 1.0f && tensorbf(1.0f + 0x1p-8f) == 1.0,
               "bf16(1 + 2^-8) = 1: half bf16's ulp at 1 (2^-7) is a tie, rounded to the even 1");
  claims.check(bf16(pi) == 3.140625f && tensorbf(pi) == 3.140625, "bf16(pi) = 3.140625: only 8 significant bits");
  claims.check(bf16(1e-8f) != 0.0f && std::abs(bf16(1e-8f) - 1e-8) < 1e-8 * 0x1p-8,
               "bf16(1e-8) keeps 1e-8 to 2^-8 relative: bfloat16 has Float32's exponent range");
}

// ---------------------------------------------------------------------------------------------------------------
// Training on the copy task, in one of four precisions

// How a training step computes: the autocast dtype (Float32: no autocast) and whether the loss is scaled.
struct Precision {
  const char* name;
  DType amp;
  bool loss_scaling;
};

// The task and the model's size.
struct Setup {
  data::TaskData train, held_out;
  nn::LanguageModelConfig model;
  std::int64_t steps = 0, batch = 64;
  double lr = 0;
};

// The copy task ("abcd|abcd", scored on the copy) and a small LanguageModel; --short uses shorter sequences, a
// smaller model and fewer steps.
Setup make_setup(bool quick) {
  data::CopyConfig cc;
  cc.length = quick ? 4 : 6;
  cc.num_symbols = 8;
  cc.num_examples = quick ? 1024 : 4096;
  Setup s{data::copy_task(cc, 1), {}, {}};
  cc.num_examples = 256;
  s.held_out = data::copy_task(cc, 2);
  s.model.vocab_size = s.train.vocab_size();
  s.model.d_model = quick ? 16 : 32;
  s.model.n_heads = 2;
  s.model.n_layers = 2;
  s.model.max_len = s.train.seq_len;
  s.model.seed = 3;
  s.steps = quick ? 300 : 400;
  s.batch = quick ? 32 : 64;
  s.lr = quick ? 1e-2 : 3e-3;
  return s;
}

// Batch number `step`, taken in order: (inputs [B, T], targets [B, T]).
std::pair<Tensor, Tensor> batch_at(const Setup& s, std::int64_t step) {
  const std::int64_t start = (step * s.batch) % (s.train.size() - s.batch + 1);
  return {narrow(s.train.inputs, 0, start, s.batch), narrow(s.train.targets, 0, start, s.batch)};
}

// Forward pass and mean cross-entropy over the scored tokens, inside an autocast region of `amp` (none for
// Float32). Returns (logits [B, T, V], whose gradient backward() keeps, and the loss).
std::pair<Tensor, Tensor> forward_loss(nn::LanguageModel& model, const Tensor& ids, const Tensor& target, DType amp) {
  amp::Autocast region(amp == DType::Float32 ? DType::Float16 : amp, amp != DType::Float32);
  const Tensor logits = model.forward(ids);
  if (logits.requires_grad()) logits.retain_grad();  // keep dL/dlogits (not under NoGradGuard)
  const std::int64_t n = ids.shape()[0] * ids.shape()[1];
  return {logits, cross_entropy(reshape(logits, {n, logits.shape()[2]}), reshape(target, {n}))};
}

// The fraction of dL/dlogits entries that are exactly zero, over the scored positions (logits_grad [B, T, V] of
// any dtype; a Float32 softmax gradient p - y is never exactly zero there).
double zero_fraction(const Tensor& logits_grad, const Tensor& target) {
  const std::vector<float> g = logits_grad.to(DType::Float32).to_vector<float>();
  const std::vector<std::int64_t> y = target.to_vector<std::int64_t>();
  const std::size_t V = g.size() / y.size();
  std::int64_t zeros = 0, scored = 0;
  for (std::size_t row = 0; row < y.size(); ++row) {
    if (y[row] == data::kIgnoreIndex) continue;
    scored += static_cast<std::int64_t>(V);
    for (std::size_t v = 0; v < V; ++v) zeros += g[row * V + v] == 0.0f;
  }
  return static_cast<double>(zeros) / static_cast<double>(scored);
}

// Mean cross-entropy on the held-out problems, computed in Float32 (under Autocast(amp) for a Float16 model).
double held_out_loss(nn::LanguageModel& model, const Setup& s, DType amp = DType::Float32) {
  NoGradGuard no_grad;
  return forward_loss(model, s.held_out.inputs, s.held_out.targets, amp).second.item();
}

// What a training run records at every step.
struct Curve {
  std::vector<double> loss, scale, zero_grads;
  std::int64_t skipped = 0;
  double held_out = 0;
};

// Trains `model` from its initial weights: AdamW, gradient clipping at 1, and GradScaler's four calls. With
// loss scaling off the scaler is disabled, and its calls pass straight through (scale 1, every step taken).
Curve train_in(nn::LanguageModel& model, const Setup& s, const Precision& p) {
  optim::AdamW opt(optim::decay_groups(model.named_parameters(), s.lr, 0.1), 0.9, 0.95);
  amp::GradScalerConfig sc;
  sc.enabled = p.loss_scaling;
  amp::GradScaler scaler(sc);
  Curve c;
  for (std::int64_t step = 0; step < s.steps; ++step) {
    const auto [ids, target] = batch_at(s, step);
    const auto [logits, loss] = forward_loss(model, ids, target, p.amp);
    opt.zero_grad();
    scaler.scale(loss).backward();  // gradients S·g, in the dtype of each tensor (Float16 for the logits)
    scaler.unscale_(opt);           // g, in Float32, and found_inf
    optim::clip_grad_norm(model.parameters(), 1.0);
    c.skipped += !scaler.step(opt);  // skipped when a gradient overflowed
    scaler.update();
    c.loss.push_back(loss.item());
    c.scale.push_back(scaler.get_scale());
    c.zero_grads.push_back(zero_fraction(logits.grad(), target));
  }
  c.held_out = held_out_loss(model, s);
  return c;
}

// The mean of the last `fraction` of v (at least one value).
double mean_tail(const std::vector<double>& v, double fraction) {
  const std::size_t n = std::max<std::size_t>(1, static_cast<std::size_t>(fraction * static_cast<double>(v.size())));
  double sum = 0;
  for (std::size_t i = v.size() - n; i < v.size(); ++i) sum += v[i];
  return sum / static_cast<double>(n);
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Where small gradients vanish

// Every element of the tensors, in Float32.
std::vector<float> flatten(const std::vector<Tensor>& ts) {
  std::vector<float> all;
  for (const Tensor& t : ts) {
    const std::vector<float> v = t.to(DType::Float32).to_vector<float>();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

// Histogram of floor(log2 |g|) over the nonzero g: bin e counts 2^e <= |g| < 2^(e+1).
std::map<int, double> exponent_histogram(const std::vector<float>& g) {
  std::map<int, double> h;
  for (float x : g)
    if (x != 0.0f) h[std::ilogb(x)] += 1;
  return h;
}

// The fraction of nonzero g with |g| < bound.
double fraction_below(const std::vector<float>& g, double bound) {
  std::int64_t nonzero = 0, below = 0;
  for (float x : g) {
    nonzero += x != 0.0f;
    below += x != 0.0f && std::abs(x) < bound;
  }
  return static_cast<double>(below) / static_cast<double>(nonzero);
}

// Entries nonzero in `ref` (Float32) that are exactly zero in `g`.
std::int64_t flushed(const std::vector<float>& ref, const std::vector<float>& g) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) n += ref[i] != 0.0f && g[i] == 0.0f;
  return n;
}

// ‖g − ref‖ / ‖ref‖.
double relative_error(const std::vector<float>& ref, const std::vector<float>& g) {
  double diff = 0, size = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    diff += (static_cast<double>(g[i]) - ref[i]) * (static_cast<double>(g[i]) - ref[i]);
    size += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(diff / size);
}

// The gradients of one backward pass: dL/dlogits (times S, as the backward pass produced them) and dL/dparams.
struct Grads {
  std::vector<float> logits, params;
};

// One backward pass of the loss times `scale` on a batch (ids, target: [B, T]), under Autocast(amp) unless amp is
// Float32.
Grads gradients(nn::LanguageModel& model, const Tensor& ids, const Tensor& target, DType amp, double scale) {
  model.zero_grad();
  const auto [logits, loss] = forward_loss(model, ids, target, amp);
  (loss * scale).backward();
  std::vector<Tensor> grads;
  for (const Tensor& p : model.parameters()) grads.push_back(p.grad() * (1.0 / scale));  // unscaled, in Float32
  return {flatten({logits.grad()}), flatten(grads)};
}

// Draws the exponent histograms as lines of counts per binade, with Float16's two thresholds as vertical lines.
void save_histogram(const std::string& dir, const Grads& f32, const Grads& scaled) {
  if (dir.empty()) return;
  train::LinePlot plot("Gradient exponents of a trained model (one batch)", "floor(log2 |g|)", "entries");
  double top = 1;
  const auto add = [&](const std::string& name, const std::vector<float>& g) {
    std::vector<double> x, y;
    for (const auto& [e, n] : exponent_histogram(g)) x.push_back(e), y.push_back(n), top = std::max(top, n);
    plot.add(name, x, y);
  };
  add("dL/dlogits, Float32", f32.logits);
  add("dL/dparameters, Float32", f32.params);
  add("65536 dL/dlogits, Float16 (measured)", scaled.logits);
  plot.add("Float16 min subnormal 2^-24", {-24, -24}, {1, top});
  plot.add("Float16 min normal 2^-14", {-14, -14}, {1, top});
  plot.log_y();
  plot.save(dir + "/gradient_exponents.svg");
  std::printf("wrote %s/gradient_exponents.svg\n", dir.c_str());
}

// The gradients of the trained model on one batch: their exponents in Float32, and which of them Float16 keeps
// with and without loss scaling.
void vanishing_gradients(tutorial::Claims& claims, nn::LanguageModel& model, const Setup& s, const std::string& dir) {
  const auto [ids, target] = batch_at(s, 0);
  const Grads f32 = gradients(model, ids, target, DType::Float32, 1.0);
  const Grads plain = gradients(model, ids, target, DType::Float16, 1.0);
  const Grads scaled = gradients(model, ids, target, DType::Float16, 65536.0);

  const std::int64_t nonzero =
      static_cast<std::int64_t>(std::count_if(f32.logits.begin(), f32.logits.end(), [](float x) { return x != 0.0f; }));
  const double sub = std::ldexp(1.0, -24), normal = std::ldexp(1.0, -14);
  std::printf("\ndL/dlogits at the trained weights, one batch: %lld nonzero entries in Float32\n",
              static_cast<long long>(nonzero));
  std::printf("%-22s %16s %22s %16s\n", "", "< 2^-25 (to 0)", "[2^-25, 2^-14) subnorm.", ">= 2^-14 normal");
  const auto row = [&](const char* name, const std::vector<float>& g) {
    const double tiny = fraction_below(g, sub / 2), small = fraction_below(g, normal) - tiny;
    std::printf("%-22s %15.1f%% %21.1f%% %15.1f%%\n", name, 100 * tiny, 100 * small,
                100 * (1 - fraction_below(g, normal)));
    return tiny;
  };
  const double logits_tiny = row("dL/dlogits", f32.logits);
  row("dL/dparameters", f32.params);
  std::printf("Float32 histogram of floor(log2 |dL/dlogits|):\n");
  int mode32 = 0, mode16 = 0;
  double best = 0;
  int column = 0;
  for (const auto& [e, n] : exponent_histogram(f32.logits)) {
    std::printf("  2^%-3d %5.0f%s", e, n, ++column % 6 == 0 ? "\n" : "");
    if (n > best) best = n, mode32 = e;
  }
  std::printf("\n");
  best = 0;
  for (const auto& [e, n] : exponent_histogram(scaled.logits))
    if (n > best) best = n, mode16 = e;

  // Float16 rounds |g| < 2^-25 to zero, so S·g flushes where |g| < 2^-25 / S.
  const auto predicted = [&](double S) {
    return fraction_below(f32.logits, sub / 2 / S) * static_cast<double>(nonzero);
  };
  const std::int64_t lost_plain = flushed(f32.logits, plain.logits), lost_scaled = flushed(f32.logits, scaled.logits);
  std::printf("the same backward pass under Autocast(Float16): zero entries of dL/dlogits\n");
  std::printf("  without scaling: %lld measured, %.0f predicted from Float32 (|g| < 2^-25)\n",
              static_cast<long long>(lost_plain), predicted(1));
  std::printf("  with S = 65536:  %lld measured, %.0f predicted (|g| < 2^-41)\n", static_cast<long long>(lost_scaled),
              predicted(65536));
  std::printf("  histogram peak: Float32 at 2^%d, Float16 of 65536 g at 2^%d\n", mode32, mode16);
  const auto matches = [&](std::int64_t measured, double S) {
    return std::abs(static_cast<double>(measured) - predicted(S)) < 0.02 * static_cast<double>(nonzero);
  };
  claims.check(logits_tiny > 0.1,
               "more than 10% of the nonzero Float32 logit gradients are below 2^-25, out of Float16's range");
  claims.check(matches(lost_plain, 1) && matches(lost_scaled, 65536),
               "the Float16 zeros measured with S = 1 and S = 65536 match the Float32 counts (within 2% of entries)");
  claims.check(lost_scaled * 10 < lost_plain, "scaling the loss by 65536 cuts the zeros more than tenfold");
  claims.check(mode16 == mode32 + 16, "and moves the histogram's peak up by exactly 16 binades");
  const std::int64_t params_plain = flushed(f32.params, plain.params),
                     params_scaled = flushed(f32.params, scaled.params);
  std::printf(
      "parameter gradients (Float32 weights, Float16 matmuls), against Float32's: %lld zeros and relative "
      "error %.2e without scaling; %lld zeros and %.2e with\n",
      static_cast<long long>(params_plain), relative_error(f32.params, plain.params),
      static_cast<long long>(params_scaled), relative_error(f32.params, scaled.params));
  save_histogram(dir, f32, scaled);
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Master weights

// Ten Float16 weights equal to 1 take 100 steps of -1e-4: stored in Float16 they never move; a Float32 master
// moves to 0.99 and rounds to the nearest Float16.
void scalar_master_example(tutorial::Claims& claims) {
  Tensor w16 = full({10}, 1.0).to(DType::Float16), master = full({10}, 1.0);
  for (int step = 0; step < 100; ++step) {
    w16 = (w16.to(DType::Float32) - 1e-4).to(DType::Float16);
    master = master - 1e-4;
  }
  std::printf("w = 1, 100 updates of -1e-4: Float16 weight %.6f; Float32 master %.6f, rounded to Float16 %.6f\n",
              w16.to(DType::Float32).to_vector<float>()[0], master.to_vector<float>()[0],
              master.to(DType::Float16).to(DType::Float32).to_vector<float>()[0]);
  claims.check(half_bits_to_float(0x3c01) - 1.0f == 0x1p-10f && 1e-4 < std::ldexp(1.0, -11),
               "1e-4 is less than half the Float16 ulp at 1 (2^-11), so 1 - 1e-4 rounds back to 1");
  claims.check(w16.to(DType::Float32).to_vector<float>() == std::vector<float>(10, 1.0f),
               "the Float16 weights never move: all 100 updates are lost");
  claims.check(std::abs(master.to_vector<float>()[0] - 0.99) < 1e-5 &&
                   master.to(DType::Float16).to(DType::Float32).to_vector<float>()[0] == fp16(0.99f),
               "the Float32 master reaches 0.99 (to 1e-5) and the model gets fp16(0.99)");
}

// What a Float16 model run records.
struct HalfRun {
  double start = 0, held_out = 0, lost_fraction = 0;
};

// Trains the model stored in Float16 with SGD (learning rate lr), under Autocast(Float16) with the loss scaled by
// a GradScaler. With `master`, the optimizer updates Float32 masters (amp::MasterWeights); without, each step is
// w16 <- fp16(w16 - lr g) and we count the entries whose update was lost (w16 unchanged although lr g != 0).
HalfRun train_half(const nn::LanguageModel& start, const Setup& s, double lr, bool master) {
  nn::LanguageModel model(s.model);
  model.load_state_dict(start.state_dict());
  model.to(DType::Float16);
  HalfRun r;
  r.start = held_out_loss(model, s, DType::Float16);
  amp::MasterWeights masters(model.named_parameters());
  optim::SGD opt({{masters.master_tensors(), lr}});
  amp::GradScaler scaler;
  std::int64_t lost = 0, nonzero = 0;
  for (std::int64_t step = 0; step < s.steps; ++step) {
    const auto [ids, target] = batch_at(s, step);
    const Tensor loss = forward_loss(model, ids, target, DType::Float16).second;
    model.zero_grad();
    opt.zero_grad();
    scaler.scale(loss).backward();
    masters.copy_grads_to_master();  // the Float16 gradients S·g, into the masters' Float32 .grad()
    scaler.unscale_(opt);            // g, and whether any overflowed
    if (master) {
      scaler.step(opt);  // w32 <- w32 - lr g, skipped on overflow
      masters.copy_master_to_model();
    } else {
      // No master: the masters only lent their Float32 gradients; the step goes straight into the Float16 weights.
      NoGradGuard no_grad;
      std::vector<Tensor> w = model.parameters();
      const std::vector<Tensor> g = masters.master_tensors();
      bool finite = true;
      for (const Tensor& m : g) finite = finite && std::isfinite(sum(m.grad()).item());
      for (std::size_t k = 0; finite && k < w.size(); ++k) {
        const Tensor update = g[k].grad() * lr, before = w[k].to(DType::Float32);
        const Tensor after = (before - update).to(DType::Float16);  // w16 <- fp16(w16 - lr g)
        const std::vector<float> u = update.to_vector<float>(), b = before.to_vector<float>(),
                                 a = after.to(DType::Float32).to_vector<float>();
        for (std::size_t i = 0; i < u.size(); ++i) {
          nonzero += u[i] != 0.0f;
          lost += u[i] != 0.0f && a[i] == b[i];
        }
        w[k].copy_(after);
      }
    }
    scaler.update();
  }
  r.held_out = held_out_loss(model, s, DType::Float16);
  r.lost_fraction = static_cast<double>(lost) / static_cast<double>(std::max<std::int64_t>(1, nonzero));
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  const std::string dir = tutorial::out_dir(argc, argv);
  set_num_threads(1);  // the same numbers on every machine (a parallel sum's order depends on the thread count)
  tutorial::Claims claims;
  const auto start = std::chrono::steady_clock::now();

  formats(claims);

  tutorial::section("2. Where small gradients vanish");
  const Setup setup = make_setup(quick);
  std::printf(
      "copy task: %lld examples of T = %lld, vocabulary %lld; LanguageModel d_model %lld, %lld layers; "
      "%lld AdamW steps of %lld examples\n",
      static_cast<long long>(setup.train.size()), static_cast<long long>(setup.train.seq_len),
      static_cast<long long>(setup.train.vocab_size()), static_cast<long long>(setup.model.d_model),
      static_cast<long long>(setup.model.n_layers), static_cast<long long>(setup.steps),
      static_cast<long long>(setup.batch));
  const std::vector<Precision> precisions = {{"Float32", DType::Float32, false},
                                             {"Float16 + GradScaler", DType::Float16, true},
                                             {"Float16, no scaling", DType::Float16, false},
                                             {"bfloat16, no scaling", DType::BFloat16, false}};
  std::vector<Curve> curves;
  nn::LanguageModel reference(setup.model);
  curves.push_back(train_in(reference, setup, precisions[0]));
  std::printf("Float32 training: loss %.4f -> %.2e (last 10%% of steps), held-out %.2e\n", curves[0].loss[0],
              mean_tail(curves[0].loss, 0.1), curves[0].held_out);
  vanishing_gradients(claims, reference, setup, dir);

  tutorial::section("3. Training in Float16 and bfloat16");
  for (std::size_t i = 1; i < precisions.size(); ++i) {
    nn::LanguageModel model(setup.model);  // the same initial weights as the Float32 run
    curves.push_back(train_in(model, setup, precisions[i]));
  }
  std::printf("%-22s %12s %12s %16s %10s %16s\n", "", "held-out", "train (last", "zero dL/dlogits", "skipped",
              "loss scale S");
  std::printf("%-22s %12s %12s %16s %10s %16s\n", "", "loss", "10%)", "(last 10%)", "steps", "(min..max)");
  for (std::size_t i = 0; i < curves.size(); ++i) {
    const auto [lo, hi] = std::minmax_element(curves[i].scale.begin(), curves[i].scale.end());
    std::printf("%-22s %12.3e %12.3e %15.2f%% %10lld %8.0f..%-7.0f\n", precisions[i].name, curves[i].held_out,
                mean_tail(curves[i].loss, 0.1), 100 * mean_tail(curves[i].zero_grads, 0.1),
                static_cast<long long>(curves[i].skipped), *lo, *hi);
  }
  const double ref = curves[0].held_out;
  claims.check(curves[0].held_out < 0.05 * std::log(8.0), "Float32 learned the task (held-out loss < 5% of ln 8)");
  claims.check(std::abs(curves[1].held_out - ref) < 0.05 * ref, "Float16 with loss scaling ends within 5% of Float32");
  claims.check(std::abs(curves[3].held_out - ref) < 0.05 * ref, "bfloat16 without scaling ends within 5% of Float32");
  claims.check(mean_tail(curves[2].zero_grads, 0.1) > 10 * mean_tail(curves[1].zero_grads, 0.1),
               "late in training, unscaled Float16 flushes over 10x more logit gradients to zero than scaled");
  claims.check(curves[2].held_out > 1.1 * ref, "and ends with a held-out loss more than 10% above Float32's");
  if (!dir.empty()) {
    train::LinePlot plot("Copy task: the same model trained in four precisions", "step", "training loss");
    std::vector<double> x(curves[0].loss.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i + 1);
    for (std::size_t i = 0; i < curves.size(); ++i) plot.add(precisions[i].name, x, curves[i].loss);
    plot.log_y();
    plot.add_panel("zero dL/dlogits (fraction)");
    for (std::size_t i = 1; i < 3; ++i) plot.add(precisions[i].name, x, curves[i].zero_grads);
    plot.save(dir + "/precision_curves.svg");
    std::printf("wrote %s/precision_curves.svg\n", dir.c_str());
  }

  tutorial::section("4. Why master weights matter");
  scalar_master_example(claims);
  Setup early = setup;
  early.steps = setup.steps / 2;
  nn::LanguageModel early_model(setup.model);
  train_in(early_model, early, precisions[0]);
  const double sgd_lr = 0.2;
  const HalfRun with = train_half(early_model, setup, sgd_lr, true),
                without = train_half(early_model, setup, sgd_lr, false);
  std::printf("the Float32 run of section 2 stopped half way (step %lld), stored in Float16: held-out loss %.3e\n",
              static_cast<long long>(early.steps), with.start);
  std::printf(
      "%lld SGD steps (lr %g): held-out loss with Float32 masters %.3e, updating Float16 directly "
      "%.3e; updates lost without masters: %.1f%%\n",
      static_cast<long long>(setup.steps), sgd_lr, with.held_out, without.held_out, 100 * without.lost_fraction);
  claims.check(without.lost_fraction > 0.9, "updating the Float16 weights directly loses more than 90% of the updates");
  claims.check(with.start - with.held_out > 3 * (without.start - without.held_out),
               "with Float32 master weights the held-out loss falls more than 3x as far");

  std::printf("\n(%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return claims.exit_code();
}
