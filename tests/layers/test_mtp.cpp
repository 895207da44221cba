/// \file
/// \brief Multi-token prediction (technique notes §11) against independent computations: speculative decoding with
/// MTP modules and with Gloeckle heads equals LanguageModel::generate's greedy output (random and briefly trained
/// drafters, softmax, flash_attention, retnet and mamba, many seeds, prompts and lengths); the MTP loss and its
/// gradients against h'^k built from the pieces in the test with per-position cross-entropy loops; λ = 0 against
/// the plain next-token loss (train/loss.h) and its gradients; Float64 gradcheck of a module and a head; label
/// alignment on hand-set weights where only t_{i+k+1} is predicted; the Gloeckle loss against a direct loop; the
/// statistics against loops; the depth-1 acceptance rate after brief training on the copy task; bad input.
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "layer_helpers.h"
#include "layers/decoding/mtp.h"
#include "train/data/tasks.h"
#include "train/loss.h"
#include "train/optim.h"

using namespace ember;
using namespace ember::decoding;
using namespace ember::test;
using i64 = std::int64_t;
using Ids = std::vector<i64>;

namespace {

/// A small model of the given mixer: vocabulary V, width 16, max_len 64.
nn::LanguageModelConfig small_config(const std::string& mixer, i64 V = 12, i64 layers = 2, std::uint64_t seed = 3) {
  nn::LanguageModelConfig c;
  c.vocab_size = V;
  c.d_model = 16;
  c.n_layers = layers;
  c.n_heads = 2;
  c.max_len = 64;
  c.mixers = {mixer};
  c.seed = seed;
  return c;
}

/// An MTP model of depth D on a fresh LanguageModel of config c.
std::shared_ptr<MTPModel> make_mtp(const nn::LanguageModelConfig& c, i64 D, std::uint64_t seed = 7) {
  return std::make_shared<MTPModel>(std::make_shared<nn::LanguageModel>(c), MTPConfig{D, seed});
}

/// lm.generate with temperature 0.
Ids greedy(const nn::LanguageModel& lm, const Ids& prompt, i64 n, i64 stop = -1) {
  nn::GenerateOptions o;
  o.temperature = 0.0;
  o.max_new_tokens = n;
  o.stop_token = stop;
  return lm.generate(prompt, o);
}

/// `len` tokens uniform in [0, V) from seed.
Ids random_tokens(i64 len, i64 V, std::uint64_t seed) {
  Generator gen(seed);
  return randint(0, V, {len}, DType::Int64, Device::cpu(), &gen).to_vector<i64>();
}

/// The arithmetic progression a, a + s, a + 2s, ... mod V of `len` tokens.
Ids progression(i64 a, i64 s, i64 len, i64 V) {
  Ids x(len);
  for (i64 i = 0; i < len; ++i) x[i] = (a + s * i) % V;
  return x;
}

/// Checks a generation's tokens and bookkeeping: the tokens equal `expected`; without a stop token, the first root
/// plus each pass's accepted drafts and next token cover the new tokens, and the passes before the last do not.
void check_generation(const MTPGeneration& g, const Ids& expected, i64 prompt_len, bool stopped) {
  CHECK(g.tokens == expected);
  CHECK(g.prefill_steps == prompt_len);
  REQUIRE(g.drafted.size() == g.accepted.size());
  for (std::size_t s = 0; s < g.drafted.size(); ++s) {
    CHECK(g.accepted[s] >= 0);
    CHECK(g.accepted[s] <= g.drafted[s]);
  }
  const auto made = static_cast<i64>(expected.size()) - prompt_len;
  if (stopped || made == 0) return;
  i64 covered = 1;
  for (std::size_t s = 0; s < g.accepted.size(); ++s) {
    CHECK(covered < made);  // a pass only runs while tokens are missing
    covered += g.accepted[s] + 1;
  }
  CHECK(covered >= made);
}

/// Drafts accepted and proposed.
struct Tally {
  i64 accepted = 0;
  i64 drafted = 0;
};

/// Random and progression prompts of lengths 1..6, with lengths of output 0..18: mtp_generate (all drafts, and
/// fewer) against greedy decoding; adds the drafts accepted and proposed to `tally`.
template <class Model>
void check_against_greedy(const Model& model, i64 drafters, std::uint64_t seed, Tally& tally) {
  const nn::LanguageModel& lm = *model.lm;
  const i64 V = lm.config().vocab_size;
  for (int trial = 0; trial < 8; ++trial) {
    const i64 P = 1 + (trial * 5 + static_cast<i64>(seed)) % 6;
    const i64 n = (trial * 7 + static_cast<i64>(seed)) % 19;
    const Ids prompt = trial % 2 ? random_tokens(P, V, seed * 100 + trial)
                                 : progression((trial + static_cast<i64>(seed)) % V, 1 + trial % 3, P, V);
    CAPTURE(trial);
    CAPTURE(P);
    CAPTURE(n);
    for (i64 drafts : {i64{-1}, std::max<i64>(drafters - 1, 0)}) {
      CAPTURE(drafts);
      MTPGenerateOptions o;
      o.max_new_tokens = n;
      o.max_drafts = drafts;
      const MTPGeneration g = mtp_generate(model, prompt, o);
      check_generation(g, greedy(lm, prompt, n), P, false);
      tally.accepted += std::accumulate(g.accepted.begin(), g.accepted.end(), i64{0});
      tally.drafted += std::accumulate(g.drafted.begin(), g.drafted.end(), i64{0});
    }
    // With a stop token: greedy decoding's third new token (it stops at the first time that token comes).
    const Ids full = greedy(lm, prompt, 12);
    MTPGenerateOptions o;
    o.max_new_tokens = 12;
    o.stop_token = full[prompt.size() + 2];
    check_generation(mtp_generate(model, prompt, o), greedy(lm, prompt, 12, o.stop_token), P, true);
  }
}

/// Index of the largest of a [V] row (the first on ties).
i64 argmax_of(const Tensor& row) {
  const std::vector<double> z = row.contiguous().to_vector<double>();
  return std::max_element(z.begin(), z.end()) - z.begin();
}

/// The drafts and accept counts of greedy speculative decoding recomputed naively: every draft and every
/// verification is a full forward over the whole sequence (no decoding state at all). `draft(ext, k)` gives draft
/// k from the tokens t_0..t_P, d_1..d_{k−1}.
struct NaiveRun {
  Ids tokens, drafted, accepted;
};

NaiveRun naive_speculation(const nn::LanguageModel& lm, const Ids& prompt, i64 n, i64 drafters,
                           const std::function<i64(const Ids&, i64)>& draft) {
  nn::LanguageModel& model = const_cast<nn::LanguageModel&>(lm);
  const auto next_after = [&](const Ids& ids, i64 pos) {
    const Tensor logits = model.forward(from_vector(ids, {1, static_cast<i64>(ids.size())}));
    return argmax_of(select(select(logits, 0, 0), 0, pos));
  };
  const auto total = static_cast<i64>(prompt.size()) + n;
  NaiveRun run{prompt, {}, {}};
  i64 root = next_after(prompt, static_cast<i64>(prompt.size()) - 1);
  while (true) {
    run.tokens.push_back(root);
    if (static_cast<i64>(run.tokens.size()) == total) break;
    const auto P = static_cast<i64>(run.tokens.size()) - 1;
    const i64 m = std::min(drafters, total - 1 - P);
    Ids ext = run.tokens;
    for (i64 k = 1; k <= m; ++k) ext.push_back(draft(ext, k));
    i64 a = 0;
    while (a < m && ext[P + 1 + a] == next_after(ext, P + a)) ++a;
    run.drafted.push_back(m);
    run.accepted.push_back(a);
    run.tokens.insert(run.tokens.end(), ext.begin() + P + 1, ext.begin() + P + 1 + a);
    if (static_cast<i64>(run.tokens.size()) >= total) {
      run.tokens.resize(total);
      break;
    }
    root = next_after(ext, P + a);
  }
  return run;
}

/// MTP draft k from t_0..t_P, d_1..d_{k−1} (L = P + k tokens) by full forwards: h^0 = lm.hidden, then
/// h^j = module j over the first L − j positions, and the argmax of module k's logits at position P − 1.
i64 mtp_draft_by_forward(MTPModel& m, const Ids& ext, i64 k) {
  const auto L = static_cast<i64>(ext.size());
  const Tensor ids = from_vector(ext, {1, L});
  Tensor h = m.lm->hidden(ids);
  for (i64 j = 1; j <= k; ++j)
    h = m.module(j)->hidden(narrow(h, 1, 0, L - j), m.lm->tok_emb->forward(narrow(ids, 1, j, L - j).contiguous()));
  const Tensor logits = m.lm->logits(m.module(k)->norm->forward(h));
  return argmax_of(select(select(logits, 0, 0), 0, L - k - 1));
}

/// Gloeckle draft k (head k + 1) from t_0..t_P by a full forward over t_0..t_{P−1}: argmax at position P − 1.
i64 head_draft_by_forward(MultiTokenHeads& h, const Ids& ext, i64 k) {
  const auto P = static_cast<i64>(ext.size()) - k;  // ext = t_0..t_P, d_1..d_{k−1}
  const Ids consumed(ext.begin(), ext.begin() + P);
  const Tensor logits = h.head_logits(from_vector(consumed, {1, P}))[static_cast<std::size_t>(k)];
  return argmax_of(select(select(logits, 0, 0), 0, P - 1));
}

/// mtp_generate's tokens, drafts proposed and accepted against naive_speculation, on progression and random prompts.
template <class Model>
void check_against_naive(Model& model, i64 drafters, const std::function<i64(const Ids&, i64)>& draft) {
  const i64 V = model.lm->config().vocab_size;
  for (int trial = 0; trial < 4; ++trial) {
    CAPTURE(trial);
    const i64 P = 2 + trial, n = 6 + 3 * trial;
    const Ids prompt = trial % 2 ? random_tokens(P, V, 300 + trial) : progression(trial, 1 + trial % 3, P, V);
    MTPGenerateOptions o;
    o.max_new_tokens = n;
    const MTPGeneration g = mtp_generate(model, prompt, o);
    const NaiveRun run = naive_speculation(*model.lm, prompt, n, drafters, draft);
    CHECK(g.tokens == run.tokens);
    CHECK(g.drafted == run.drafted);
    CHECK(g.accepted == run.accepted);
  }
}

/// One Adam run of `steps` steps on `loss(input, target)` over batches of progressions mod V (random start and step
/// s in {1, 2, 3}, T = 16).
void train_on_progressions(nn::Module& model, const std::function<Tensor(const Tensor&, const Tensor&)>& loss, i64 V,
                           int steps) {
  optim::Adam adam({{model.parameters(), 3e-3}});
  Generator gen(11);
  const i64 B = 16, T = 16;
  for (int step = 0; step < steps; ++step) {
    const Ids a = randint(0, V, {B}, DType::Int64, Device::cpu(), &gen).to_vector<i64>();
    const Ids s = randint(1, 4, {B}, DType::Int64, Device::cpu(), &gen).to_vector<i64>();
    Ids in, tgt;
    for (i64 b = 0; b < B; ++b) {
      const Ids x = progression(a[b], s[b], T + 1, V);
      in.insert(in.end(), x.begin(), x.end() - 1);
      tgt.insert(tgt.end(), x.begin() + 1, x.end());
    }
    adam.zero_grad();
    loss(from_vector(in, {B, T}), from_vector(tgt, {B, T})).backward();
    adam.step();
  }
}

/// x / sqrt(mean(x²) + 1e-5) ⊙ g, written out with elementwise ops.
Tensor rms(const Tensor& x, const Tensor& g) { return x * rsqrt(mean(x * x, {-1}, true) + 1e-5) * g; }

/// The cross-entropy −log softmax(row)[t] of logits row [V], by logsumexp.
Tensor ce_at(const Tensor& row, i64 t) { return logsumexp(row, {0}) - select(row, 0, t); }

/// The mean over (b, i) of ce_at(logits[b, i], label(b, i)), skipping label −100 (0 when all are skipped).
Tensor mean_ce(const Tensor& logits, const std::function<i64(i64, i64)>& label) {
  Tensor total = zeros({}, logits.dtype());
  double n = 0;
  for (i64 b = 0; b < logits.shape()[0]; ++b)
    for (i64 i = 0; i < logits.shape()[1]; ++i) {
      const i64 t = label(b, i);
      if (t == -100) continue;
      total = total + ce_at(select(select(logits, 0, b), 0, i), t);
      n += 1;
    }
  return total / std::max(n, 1.0);
}

/// The MTP loss terms computed directly: h'^k = M_k [rms(h^{k−1}) ; rms(E[t_{i+k}])] from the weights, the block's
/// forward, the module's rms norm and the shared head, each position scored against seq[b][i + k + 1] unless
/// `ignored` (b, i + k). Returns [L_main, L^1, ..., L^D].
std::vector<Tensor> direct_losses(MTPModel& m, const std::vector<Ids>& seq,
                                  const std::set<std::pair<i64, i64>>& ignored) {
  const auto B = static_cast<i64>(seq.size()), T = static_cast<i64>(seq[0].size()) - 1;
  Ids flat;
  for (const Ids& s : seq) flat.insert(flat.end(), s.begin(), s.end() - 1);
  const Tensor ids = from_vector(flat, {B, T});
  const auto label = [&](i64 k) {
    return [&, k](i64 b, i64 i) { return ignored.count({b, i + k}) ? i64{-100} : seq[b][i + k + 1]; };
  };
  Tensor h = m.lm->hidden(ids);
  std::vector<Tensor> out{mean_ce(m.lm->logits(h), label(0))};
  for (i64 k = 1; k <= m.depth(); ++k) {
    const MTPModule& mod = *m.module(k);
    const Tensor e =
        reshape(index_select(m.lm->tok_emb->weight, 0, reshape(narrow(ids, 1, k, T - k).contiguous(), {B * (T - k)})),
                {B, T - k, -1});
    const Tensor both = cat({rms(narrow(h, 1, 0, T - k), mod.hnorm->weight), rms(e, mod.enorm->weight)}, 2);
    h = mod.block->forward(matmul(both, transpose(mod.eh_proj->weight, 0, 1)));
    out.push_back(mean_ce(m.lm->logits(rms(h, mod.norm->weight)), label(k)));
  }
  return out;
}

/// Every parameter's gradient, by name (undefined ones as undefined).
std::map<std::string, Tensor> grads_of(const nn::Module& m) {
  std::map<std::string, Tensor> g;
  for (const auto& [name, p] : m.named_parameters()) g[name] = p.grad().defined() ? p.grad().clone() : Tensor();
  return g;
}

}  // namespace

TEST_CASE("mtp_generate: random MTP modules give exactly greedy decoding (softmax, flash_attention, retnet, mamba)") {
  for (const std::string mixer : {"softmax", "flash_attention", "retnet", "mamba"}) {
    for (i64 D : {1, 2, 3}) {
      CAPTURE(mixer);
      CAPTURE(D);
      auto model = make_mtp(small_config(mixer, 12, 2, 3 + D), D, 40 + D);
      randomize(*model, 100 + D);
      Tally tally;
      check_against_greedy(*model, D, static_cast<std::uint64_t>(D), tally);
      MESSAGE(mixer << ", D = " << D << ": random modules, drafts accepted " << tally.accepted << "/" << tally.drafted);
      // Up to max_len: the last steps draft fewer tokens, so that nothing passes the end of the caches.
      const Ids prompt = random_tokens(4, 12, 9 + static_cast<std::uint64_t>(D));
      MTPGenerateOptions o;
      o.max_new_tokens = 60;
      check_generation(mtp_generate(*model, prompt, o), greedy(*model->lm, prompt, 60), 4, false);
    }
  }
}

TEST_CASE("mtp_generate: random Gloeckle heads give exactly greedy decoding (softmax, retnet)") {
  for (const std::string mixer : {"softmax", "retnet"}) {
    for (i64 n : {1, 2, 4}) {
      CAPTURE(mixer);
      CAPTURE(n);
      auto model = std::make_shared<MultiTokenHeads>(std::make_shared<nn::LanguageModel>(small_config(mixer)), n, 5);
      randomize(*model, 200 + n);
      Tally tally;
      check_against_greedy(*model, n - 1, static_cast<std::uint64_t>(n), tally);
      MESSAGE(mixer << ", n = " << n << ": random heads, drafts accepted " << tally.accepted << "/" << tally.drafted);
    }
  }
}

TEST_CASE("mtp_generate: briefly trained modules and heads give exactly greedy decoding and accept drafts") {
  const i64 V = 12;
  for (const std::string mixer : {"softmax", "retnet"}) {
    CAPTURE(mixer);
    auto mtp = make_mtp(small_config(mixer, V), 3);
    train_on_progressions(
        *mtp, [&](const Tensor& in, const Tensor& t) { return mtp_loss(*mtp, in, t, 1.0).total; }, V, 80);
    Tally tally;
    check_against_greedy(*mtp, 3, 1, tally);
    MESSAGE(mixer << ": trained MTP modules (D = 3), drafts accepted " << tally.accepted << "/" << tally.drafted);
    CHECK(tally.accepted > tally.drafted / 4);

    auto heads = std::make_shared<MultiTokenHeads>(std::make_shared<nn::LanguageModel>(small_config(mixer, V)), 3);
    train_on_progressions(
        *heads, [&](const Tensor& in, const Tensor& t) { return multi_token_loss(*heads, in, t); }, V, 80);
    Tally head_tally;
    check_against_greedy(*heads, 2, 2, head_tally);
    MESSAGE(mixer << ": trained Gloeckle heads (n = 3), drafts accepted " << head_tally.accepted << "/"
                  << head_tally.drafted);
    CHECK(head_tally.accepted > head_tally.drafted / 4);

    // The drafters' decoding states (committed, cloned for drafting, rolled back) against full recomputation, in
    // Float64 so that stepping and forward agree far below any gap between logits.
    mtp->to(DType::Float64);
    check_against_naive(*mtp, 3, [&](const Ids& ext, i64 k) { return mtp_draft_by_forward(*mtp, ext, k); });
    heads->to(DType::Float64);
    check_against_naive(*heads, 2, [&](const Ids& ext, i64 k) { return head_draft_by_forward(*heads, ext, k); });
  }
}

namespace {

/// B rows of T + 1 tokens (seq) and the batch they make: input [B, T] = the first T, target [B, T] = the last T
/// with −100 at the ignored (b, j).
struct Batch {
  std::vector<Ids> seq;
  Tensor input, target;
};

/// B rows of T + 1 random tokens from seed, with the given target positions ignored.
Batch random_batch(i64 B, i64 T, i64 V, std::uint64_t seed, const std::set<std::pair<i64, i64>>& ignored) {
  Batch batch;
  Ids in, tgt;
  for (i64 b = 0; b < B; ++b) {
    batch.seq.push_back(random_tokens(T + 1, V, seed + static_cast<std::uint64_t>(b)));
    in.insert(in.end(), batch.seq[b].begin(), batch.seq[b].end() - 1);
    for (i64 j = 0; j < T; ++j) tgt.push_back(ignored.count({b, j}) ? -100 : batch.seq[b][j + 1]);
  }
  batch.input = from_vector(in, {B, T});
  batch.target = from_vector(tgt, {B, T});
  return batch;
}

/// The parameters of m whose names start with `prefix`.
std::vector<Tensor> params_under(const nn::Module& m, const std::string& prefix) {
  std::vector<Tensor> out;
  for (const auto& [name, p] : m.named_parameters())
    if (name.starts_with(prefix)) out.push_back(p);
  return out;
}

/// A tiny Float64 config for gradcheck: V = 5, D = 4, one layer, MLP hidden 8.
nn::LanguageModelConfig tiny_config(const std::string& mixer) {
  nn::LanguageModelConfig c = small_config(mixer, 5, 1);
  c.d_model = 4;
  c.mlp_hidden = 8;
  c.max_len = 16;
  return c;
}

}  // namespace

TEST_CASE("mtp_loss: each depth's loss and all gradients equal h'^k built from the pieces with the shift") {
  for (const std::string mixer : {"softmax", "retnet"}) {
    CAPTURE(mixer);
    auto m = make_mtp(small_config(mixer, 9, 1), 2, 9);
    randomize(*m, 31);
    m->to(DType::Float64);
    const std::set<std::pair<i64, i64>> ignored = {{0, 2}, {1, 5}, {1, 6}};
    const Batch batch = random_batch(2, 7, 9, 50, ignored);
    const double lambda = 0.4;
    const MTPLoss loss = mtp_loss(*m, batch.input, batch.target, lambda);
    loss.total.backward();
    const auto grads = grads_of(*m);
    m->zero_grad();
    const std::vector<Tensor> direct = direct_losses(*m, batch.seq, ignored);
    REQUIRE(loss.depth.size() == 2);
    CHECK(std::abs(loss.main.item() - direct[0].item()) < 1e-12);
    for (i64 k = 1; k <= 2; ++k) {
      CAPTURE(k);
      MESSAGE(mixer << ": L^" << k << " = " << loss.depth[k - 1].item() << ", direct " << direct[k].item());
      CHECK(std::abs(loss.depth[k - 1].item() - direct[k].item()) < 1e-12);
    }
    const Tensor total = direct[0] + (direct[1] + direct[2]) * (lambda / 2.0);
    CHECK(std::abs(loss.total.item() - total.item()) < 1e-12);
    CHECK(std::abs(mtp_objective(lambda)(*m, batch.input, batch.target).item() - total.item()) < 1e-12);
    total.backward();
    for (const auto& [key, g] : grads_of(*m)) {
      const std::string& name = key;  // a plain reference, which CAPTURE's lambda can capture (clang 14)
      CAPTURE(name);
      REQUIRE(g.defined());
      REQUIRE(grads.at(name).defined());
      CHECK(max_abs_diff(grads.at(name), g) < 1e-10);
    }
  }
}

TEST_CASE("mtp_loss: lambda 0 is the plain next-token loss and gradients, and the modules get none") {
  auto m = make_mtp(small_config("softmax", 9, 1), 2, 9);
  randomize(*m, 32);
  m->to(DType::Float64);
  const Batch batch = random_batch(3, 6, 9, 60, {{0, 0}, {2, 5}});
  const MTPLoss loss = mtp_loss(*m, batch.input, batch.target, 0.0);
  CHECK(loss.depth.empty());
  loss.total.backward();
  const auto grads = grads_of(*m);
  m->zero_grad();
  const Tensor plain = cross_entropy(m->lm->forward(batch.input), batch.target);
  plain.backward();
  MESSAGE("lambda = 0: " << loss.total.item() << " against cross_entropy " << plain.item() << ", difference "
                         << loss.total.item() - plain.item());
  CHECK(std::abs(loss.total.item() - plain.item()) <= 1e-12 * std::abs(plain.item()));
  for (const auto& [key, g] : grads_of(*m)) {
    const std::string& name = key;  // a plain reference, which CAPTURE's lambda can capture (clang 14)
    CAPTURE(name);
    if (name.starts_with("mtp.")) {
      CHECK_FALSE(grads.at(name).defined());
    } else {
      REQUIRE(grads.at(name).defined());
      CHECK(max_abs_diff(grads.at(name), g) <= 1e-12);
    }
  }
}

TEST_CASE("MTP gradcheck in Float64: a module's h^k, the MTP loss through the modules, a Gloeckle head's loss") {
  for (const std::string mixer : {"softmax", "retnet"}) {
    CAPTURE(mixer);
    auto m = make_mtp(tiny_config(mixer), 2, 4);
    randomize(*m, 41);
    m->to(DType::Float64);
    const MTPModule& mod = *m->module(1);
    std::vector<Tensor> inputs = {leaf_of(normal({1, 3, 4}, 1)), leaf_of(normal({1, 3, 4}, 2))};
    for (const Tensor& p : params_under(*m, "mtp.0.")) inputs.push_back(p);
    GradcheckResult r = gradcheck([&](const auto& in) { return mod.hidden(in[0], in[1]); }, inputs, 1e-6, 1e-7, 1e-5);
    CHECK_MESSAGE(r.ok, r.message);

    const Batch batch = random_batch(1, 5, 5, 70, {{0, 3}});
    r = gradcheck([&](const auto&) { return mtp_loss(*m, batch.input, batch.target, 0.5).total; },
                  params_under(*m, "mtp."), 1e-6, 1e-7, 1e-5);
    CHECK_MESSAGE(r.ok, r.message);

    auto heads = std::make_shared<MultiTokenHeads>(std::make_shared<nn::LanguageModel>(tiny_config(mixer)), 2, 6);
    randomize(*heads, 42);
    heads->to(DType::Float64);
    std::vector<Tensor> head_inputs = params_under(*heads, "heads.");
    for (const Tensor& p : params_under(*heads, "lm.norm")) head_inputs.push_back(p);
    r = gradcheck([&](const auto&) { return multi_token_loss(*heads, batch.input, batch.target); }, head_inputs, 1e-6,
                  1e-7, 1e-5);
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("mtp_loss: module k's logits at i are scored against t_{i+k+1} (hand-set weights that predict it)") {
  // V = D = 8: E = 3·I, the shared head maps RMSNorm(E[t]) to a logit of 10·sqrt(8) for token t + 1 (mod 8); each
  // module's block is the identity (all its weights zero) and M_k = [0 | I] keeps the embedding half. So module k at
  // i reads t_{i+k} and predicts t_{i+k} + 1, which is t_{i+k+1} exactly on counting sequences.
  nn::LanguageModelConfig c = small_config("softmax", 8, 1);
  c.d_model = 8;
  auto m = make_mtp(c, 2);
  {
    NoGradGuard no_grad;
    m->lm->tok_emb->weight.copy_(eye(8) * 3.0);
    std::vector<double> w(64, 0.0);
    for (i64 v = 0; v < 8; ++v) w[v * 8 + (v + 7) % 8] = 10.0;
    m->lm->head->weight.copy_(from_vector(w, {8, 8}));
    for (i64 k = 1; k <= 2; ++k) {
      const MTPModule& mod = *m->module(k);
      for (const Tensor& p : mod.block->parameters()) Tensor(p).zero_();
      mod.eh_proj->weight.copy_(cat({zeros({8, 8}), eye(8)}, 1));
    }
  }
  const std::vector<Ids> seq = {progression(0, 1, 10, 8), progression(5, 1, 10, 8)};
  Ids flat;
  for (const Ids& s : seq) flat.insert(flat.end(), s.begin(), s.end() - 1);
  const Tensor ids = from_vector(flat, {2, 9});
  Ids tgt;
  for (const Ids& s : seq) tgt.insert(tgt.end(), s.begin() + 1, s.end());
  const MTPLoss loss = mtp_loss(*m, ids, from_vector(tgt, {2, 9}), 1.0);
  const std::vector<Tensor> logits = m->depth_logits(ids);
  for (i64 k = 1; k <= 2; ++k) {
    CAPTURE(k);
    CHECK(logits[k].shape() == Shape{2, 9 - k, 8});
    const auto right = [&](i64 b, i64 i) { return seq[b][i + k + 1]; };
    const auto early = [&](i64 b, i64 i) { return seq[b][i + k]; };
    const auto late = [&](i64 b, i64 i) { return i + k + 2 <= 9 ? seq[b][i + k + 2] : i64{-100}; };
    const double l_right = mean_ce(logits[k], right).item(), l_early = mean_ce(logits[k], early).item(),
                 l_late = mean_ce(logits[k], late).item();
    MESSAGE("L^" << k << ": " << loss.depth[k - 1].item() << "; CE against t_{i+k+1} " << l_right << ", t_{i+k} "
                 << l_early << ", t_{i+k+2} " << l_late);
    CHECK(loss.depth[k - 1].item() < 1e-6);
    CHECK(std::abs(loss.depth[k - 1].item() - l_right) < 1e-6);
    CHECK(l_early > 20.0);
    CHECK(l_late > 20.0);
  }
}

TEST_CASE("multi_token_loss: head i at t is scored against x_{t+i}, and n = 1 is the next-token loss") {
  auto heads =
      std::make_shared<MultiTokenHeads>(std::make_shared<nn::LanguageModel>(small_config("softmax", 9, 1)), 3, 8);
  randomize(*heads, 51);
  heads->to(DType::Float64);
  const std::set<std::pair<i64, i64>> ignored = {{0, 1}, {1, 4}};
  const Batch batch = random_batch(2, 6, 9, 80, ignored);
  const nn::LanguageModel& lm = *heads->lm;
  const Tensor z = heads->lm->trunk(batch.input);
  Tensor direct = zeros({}, DType::Float64);
  for (i64 i = 1; i <= 3; ++i) {
    const Tensor y = i == 1 ? z : (*heads->heads)[static_cast<std::size_t>(i - 2)]->forward(z);
    direct = direct + mean_ce(lm.logits(lm.final_norm(y)), [&](i64 b, i64 t) {
               return t + i <= 6 && !ignored.count({b, t + i - 1}) ? batch.seq[b][t + i] : i64{-100};
             });
  }
  const double loss = multi_token_loss(*heads, batch.input, batch.target).item();
  MESSAGE("multi_token_loss " << loss << ", direct " << direct.item());
  CHECK(std::abs(loss - direct.item()) < 1e-12);

  auto one = std::make_shared<MultiTokenHeads>(heads->lm, 1);
  CHECK(std::abs(multi_token_loss(*one, batch.input, batch.target).item() -
                 cross_entropy(heads->lm->forward(batch.input), batch.target).item()) < 1e-12);
}

TEST_CASE("MTPModel and MultiTokenHeads: the state dict holds the model and the drafters, sharing E and the head") {
  const nn::LanguageModelConfig c = small_config("softmax");
  auto m = make_mtp(c, 2);
  std::set<std::string> names;
  for (const auto& [name, t] : m->state_dict()) names.insert(name);
  for (const std::string n : {"lm.tok_emb.weight", "lm.head.weight", "mtp.0.hnorm.weight", "mtp.0.enorm.weight",
                              "mtp.0.eh_proj.weight", "mtp.1.block.mixer.q_proj.weight", "mtp.1.norm.weight"})
    CHECK_MESSAGE(names.count(n), n);
  for (const std::string& n : names) CHECK_MESSAGE((n.starts_with("lm.") || n.starts_with("mtp.")), n);
  const nn::Block block(c, c.n_layers - 1, nullptr);
  CHECK(m->num_parameters() ==
        m->lm->num_parameters() + 2 * (block.num_parameters() + 2 * c.d_model * c.d_model + 3 * c.d_model));
  CHECK(param_of(*m, "mtp.0.eh_proj.weight").shape() == Shape{c.d_model, 2 * c.d_model});
  auto heads = std::make_shared<MultiTokenHeads>(std::make_shared<nn::LanguageModel>(c), 3);
  CHECK(heads->num_heads() == 3);
  CHECK(heads->num_parameters() == heads->lm->num_parameters() + 2 * block.num_parameters());
}

TEST_CASE("MTPGeneration: tokens per forward and the acceptance rate of each depth against loops") {
  MTPGeneration g;
  g.drafted = {3, 3, 2, 3, 1, 3, 0};
  g.accepted = {0, 3, 2, 1, 1, 2, 0};
  double made = 0;
  for (i64 a : g.accepted) made += static_cast<double>(a) + 1.0;
  CHECK(g.forward_passes() == 7);
  CHECK(std::abs(g.tokens_per_forward() - made / 7.0) < 1e-12);
  const std::vector<double> rate = g.acceptance_rate();
  REQUIRE(rate.size() == 3);
  for (i64 j = 1; j <= 3; ++j) {
    double tried = 0, kept = 0;
    for (std::size_t s = 0; s < g.drafted.size(); ++s)
      if (g.drafted[s] >= j && g.accepted[s] >= j - 1) {
        tried += 1;
        kept += g.accepted[s] >= j ? 1 : 0;
      }
    CAPTURE(j);
    CHECK(std::abs(rate[j - 1] - kept / tried) < 1e-12);
  }
  CHECK(std::abs(rate[0] - 5.0 / 6.0) < 1e-12);  // by hand: 5 of the 6 passes that drafted accepted their first
  CHECK(MTPGeneration().acceptance_rate().empty());
  CHECK(MTPGeneration().tokens_per_forward() == 0.0);
}

TEST_CASE("mtp_generate: after brief training on the copy task, depth 1 acceptance is well above chance") {
  data::CopyConfig cc;
  cc.length = 6;
  cc.num_symbols = 6;
  cc.num_examples = 1024;
  const data::TaskData train = data::copy_task(cc, 1), held = data::copy_task(cc, 2);
  nn::LanguageModelConfig c = small_config("softmax", train.vocab_size(), 2);
  c.d_model = 32;
  c.max_len = 16;
  auto m = make_mtp(c, 1);
  optim::Adam adam({{m->parameters(), 3e-3}});
  Generator gen(3);
  for (int step = 0; step < 150; ++step) {
    const Tensor rows = randint(0, train.size(), {32}, DType::Int64, Device::cpu(), &gen);
    adam.zero_grad();
    mtp_loss(*m, index_select(train.inputs, 0, rows), index_select(train.targets, 0, rows), 1.0).total.backward();
    adam.step();
  }
  double drafted = 0, accepted = 0, correct = 0;
  for (i64 r = 0; r < 20; ++r) {
    const Ids row = select(held.inputs, 0, r).contiguous().to_vector<i64>();
    const Ids prompt(row.begin(), row.begin() + cc.length + 1);
    MTPGenerateOptions o;
    o.max_new_tokens = cc.length;
    const MTPGeneration g = mtp_generate(*m, prompt, o);
    CHECK(g.tokens == greedy(*m->lm, prompt, cc.length));
    for (std::size_t s = 0; s < g.drafted.size(); ++s) {
      drafted += static_cast<double>(g.drafted[s]);
      accepted += static_cast<double>(g.accepted[s]);
    }
    correct += std::equal(prompt.begin(), prompt.begin() + cc.length, g.tokens.begin() + cc.length + 1);
  }
  const double rate = accepted / drafted;
  MESSAGE("copy task: depth-1 acceptance " << rate << " (chance 1/" << cc.num_symbols << "), copies right " << correct
                                           << "/20");
  CHECK(rate > 0.5);
}

TEST_CASE("MTP: bad input throws ember::Error naming the op and the shapes") {
  auto m = make_mtp(small_config("softmax"), 2);
  const Tensor ids = from_vector(Ids{1, 2, 3, 4}, {1, 4});
  CHECK_THROWS_EMBER(mtp_loss(*m, ids, from_vector(Ids{1, 2, 3}, {1, 3}), 0.3), "mtp_loss");
  CHECK_THROWS_EMBER(mtp_loss(*m, ids, from_vector(Ids{1, 2, 3}, {1, 3}), 0.3), "[1, 3]");
  CHECK_THROWS_EMBER(mtp_loss(*m, ids, ids, -0.1), "lambda");
  CHECK_THROWS_EMBER(mtp_loss(*m, from_vector(Ids{1, 2}, {1, 2}), from_vector(Ids{2, 3}, {1, 2})), "too short");
  CHECK_THROWS_EMBER(mtp_loss(*m, ids, from_vector(Ids{1, 2, 99, 4}, {1, 4})), "target 99");
  CHECK_THROWS_EMBER(MTPModel(m->lm, MTPConfig{0, 0}), "depth >= 1");
  CHECK_THROWS_EMBER(MultiTokenHeads(m->lm, 0), "n >= 1");
  CHECK_THROWS_EMBER(mtp_objective()(*m->lm, ids, ids), "not an MTPModel");
  CHECK_THROWS_EMBER(multi_token_objective()(*m, ids, ids), "not MultiTokenHeads");
  MTPGenerateOptions o;
  CHECK_THROWS_EMBER(mtp_generate(*m, {}, o), "prompt is empty");
  CHECK_THROWS_EMBER(mtp_generate(*m, {1, 12}, o), "token 12 out of range");
  o.max_drafts = 3;
  CHECK_THROWS_EMBER(mtp_generate(*m, {1}, o), "max_drafts");
  o.max_drafts = -1;
  o.max_new_tokens = 64;
  CHECK_THROWS_EMBER(mtp_generate(*m, {1}, o), "exceeds max_len 64");
  CHECK_THROWS_EMBER(m->module(3), "no module 3");
  CHECK_THROWS_EMBER(m->module_logits(ids, zeros({1, 3, 16})), "[1, 3, 16]");
}
