/// \file
/// \brief Medusa heads and generation (technique notes §10) against independent computations: greedy Medusa output
/// against LanguageModel::generate (oracle 2) for random and trained heads, many seeds, prompts and lengths, with
/// softmax and flash-attention trees and retnet and mamba chains; the verify pass at every tree node against
/// stepping its root-to-node path (oracle 3); the KV cache after accept against stepping the accepted tokens
/// (oracle 4); typical acceptance against its rule computed here from full forward passes, and with ε = 0; the
/// heads' logits against the formula written as loops; the Medusa-1 and Medusa-2 losses against loops over heads
/// and positions; Medusa-1 sending no gradient to the base; gradcheck of the heads and of the Medusa-2 loss; and
/// the mean accepted length of heads trained on the copy task through the Trainer.
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "layer_helpers.h"
#include "reference_layers.h"
#include "layers/attention/multi_head_attention.h"
#include "layers/decoding/medusa.h"
#include "train/data/tasks.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/trainer.h"

using namespace ember;
using namespace ember::test;
using namespace ember::decoding;
using i64 = std::int64_t;
using Ids = std::vector<i64>;
using Vec = std::vector<double>;

namespace {

/// A tiny model: vocabulary V, d_model 16, 2 layers of `mixer`, 2 heads.
nn::LanguageModelConfig tiny_config(const std::string& mixer, i64 V, i64 max_len, std::uint64_t seed) {
  nn::LanguageModelConfig c;
  c.vocab_size = V;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.max_len = max_len;
  c.mixers = {mixer};
  c.seed = seed;
  return c;
}

/// A model with O(1) random weights (decisive argmaxes) and K heads; random heads unless `fresh_heads`.
std::shared_ptr<MedusaModel> random_medusa(const std::string& mixer, std::uint64_t seed, i64 K, i64 max_len = 48,
                                           bool fresh_heads = false) {
  auto lm = std::make_shared<nn::LanguageModel>(tiny_config(mixer, 12, max_len, seed));
  randomize(*lm, seed);
  auto model = std::make_shared<MedusaModel>(lm, K);
  if (!fresh_heads) randomize(*model->heads, seed + 1000);
  return model;
}

/// The Medusa-2 loss with its default weights.
MedusaLoss joint_loss() {
  MedusaLoss loss;
  loss.joint = true;
  return loss;
}

/// n tokens below V drawn from a generator seeded with `seed`.
Ids random_tokens(i64 n, i64 V, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  Ids ids;
  for (i64 i = 0; i < n; ++i) ids.push_back(static_cast<i64>(gen() % static_cast<std::uint64_t>(V)));
  return ids;
}

/// Plain greedy decoding.
Ids greedy(const nn::LanguageModel& lm, const Ids& prompt, i64 max_new, i64 stop = -1) {
  nn::GenerateOptions o;
  o.max_new_tokens = max_new;
  o.temperature = 0.0;
  o.stop_token = stop;
  return lm.generate(prompt, o);
}

/// Greedy Medusa decoding.
MedusaOutput medusa(const MedusaModel& model, const Ids& prompt, i64 max_new, i64 stop = -1) {
  MedusaGenerateOptions o;
  o.max_new_tokens = max_new;
  o.stop_token = stop;
  return medusa_generate(model, prompt, o);
}

/// The statistics agree with the output: one prefill step per prompt token, one accept length per verify pass,
/// and the first token plus accept_length + 1 per pass covering the generated tokens, the last pass cut.
void check_stats(const MedusaOutput& out, i64 prompt_len) {
  const MedusaStats& s = out.stats;
  const i64 generated = static_cast<i64>(out.tokens.size()) - prompt_len;
  CHECK(s.prefill_passes == prompt_len);
  CHECK(s.verify_passes == static_cast<i64>(s.accept_lengths.size()));
  i64 covered = 1, before_last = 1;
  for (i64 a : s.accept_lengths) {
    before_last = covered;
    covered += a + 1;
  }
  CHECK(generated <= covered);
  if (s.verify_passes > 0) CHECK(generated > before_last);
}

/// The node ids from the root to `node` in `tree`.
Ids root_path(const MedusaTree& tree, i64 node) {
  Ids up;
  for (i64 j = node; j >= 0; j = tree.parent[j]) up.push_back(j);
  return {up.rbegin(), up.rend()};
}

/// A fresh state that has stepped `tokens`; returns the last step_trunk output [1, D].
Tensor step_tokens(const nn::LanguageModel& lm, const Ids& tokens, nn::LanguageModelState& state) {
  Tensor z;
  for (i64 id : tokens) z = lm.step_trunk(from_vector(Ids{id}, {1}), state);
  return z;
}

/// The default tree cut to K heads and a vocabulary of 12 (as medusa_generate picks it).
MedusaTree default_tree_cut(i64 K) {
  std::vector<Ids> kept;
  for (const Ids& p : default_medusa_tree().paths)
    if (static_cast<i64>(p.size()) <= K) kept.push_back(p);
  return MedusaTree(kept, 10);
}

/// logits for h [D] of a head written out as loops: W2 (h + SiLU(W1 h + b1)).
Vec head_by_loops(const Vec& h, const Vec& W1, const Vec& b1, const Vec& W2, i64 D, i64 V) {
  Vec r(D), out(V, 0.0);
  for (i64 i = 0; i < D; ++i) {
    double a = b1[i];
    for (i64 j = 0; j < D; ++j) a += W1[i * D + j] * h[j];
    r[i] = h[i] + a / (1.0 + std::exp(-a));
  }
  for (i64 v = 0; v < V; ++v)
    for (i64 i = 0; i < D; ++i) out[v] += W2[v * D + i] * r[i];
  return out;
}

/// −log softmax(z)[y] in double.
double nll(const double* z, i64 V, i64 y) {
  double m = -INFINITY, s = 0.0;
  for (i64 v = 0; v < V; ++v) m = std::max(m, z[v]);
  for (i64 v = 0; v < V; ++v) s += std::exp(z[v] - m);
  return m + std::log(s) - z[y];
}

/// The copy task of the trained fixture: 6 symbols to copy from 8 ('|' separates), T = 12, V = 9.
data::TaskData copy_data(i64 n, std::uint64_t seed) {
  data::CopyConfig c;
  c.length = 6;
  c.num_symbols = 8;
  c.num_examples = n;
  return data::copy_task(c, seed);
}

/// A base model and 3 heads trained jointly (Medusa-2, through the Trainer with MedusaLoss as its objective) on
/// the copy task; one per mixer, trained once. "flash_attention" loads the softmax model's weights (same names).
std::shared_ptr<MedusaModel> trained_copy_model(const std::string& mixer) {
  static std::map<std::string, std::shared_ptr<MedusaModel>> trained;
  if (trained.count(mixer)) return trained[mixer];
  nn::LanguageModelConfig c = tiny_config(mixer, 9, 32, 7);
  c.d_model = 32;
  auto model = std::make_shared<MedusaModel>(std::make_shared<nn::LanguageModel>(c), 3);
  if (mixer == "flash_attention") {
    model->load_state_dict(trained_copy_model("softmax")->state_dict());
  } else {
    const data::TaskData task = copy_data(1000, 1);
    auto opt = std::make_shared<optim::AdamW>(optim::decay_groups(model->named_parameters(), 1e-2, 0.0));
    train::TrainerConfig tc;
    tc.steps = 200;
    tc.progress = false;
    train::Trainer trainer(model, opt, std::make_shared<optim::ConstantSchedule>(1e-2),
                           data::DataLoader(task.dataset(), 32, true, 3), nullptr, tc);
    trainer.set_objective(joint_loss());
    trainer.fit();
    std::printf("medusa fixture %s: Medusa-2 loss %.3f -> %.3f in %zu steps\n", mixer.c_str(), trainer.losses().front(),
                trainer.losses().back(), trainer.losses().size());
  }
  model->eval();
  return trained[mixer] = model;
}

/// The first `n` tokens of row r of inputs [N, T].
Ids row_prefix(const Tensor& inputs, i64 r, i64 n) {
  const Ids all = inputs.to_vector<i64>();
  const i64 T = inputs.shape()[1];
  return {all.begin() + r * T, all.begin() + r * T + n};
}

}  // namespace

TEST_CASE("MedusaHeads: start as the base head (identity block), then give W2 (h + SiLU(W1 h + b1)) as loops") {
  for (bool tied : {false, true}) {
    CAPTURE(tied);
    nn::LanguageModelConfig c = tiny_config("softmax", 12, 16, 3);
    c.tie_weights = tied;
    auto lm = std::make_shared<nn::LanguageModel>(c);
    lm->to(DType::Float64);
    randomize(*lm, 4);
    MedusaModel model(lm, 3);
    const Tensor h = lm->hidden(from_vector(Ids{1, 5, 7, 0, 11, 2}, {2, 3}));  // [2, 3, 16]
    const Tensor y = model.heads->forward(h);
    REQUIRE(y.shape() == Shape{3, 2, 3, 12});
    const Tensor base = lm->logits(h);
    for (i64 k = 0; k < 3; ++k) CHECK(max_abs_diff(select(y, 0, k), base) < 1e-12);
    randomize(*model.heads, 9);
    const Tensor y2 = model.heads->forward(h);
    const Vec hv = h.to_vector<double>(), yv = y2.to_vector<double>();
    double worst = 0.0;
    for (i64 k = 0; k < 3; ++k) {
      const auto& head = *model.heads->heads[k];
      const Vec W1 = head.block->weight.to_vector<double>(), b1 = head.block->bias.to_vector<double>(),
                W2 = head.out->weight.to_vector<double>();
      for (i64 row = 0; row < 6; ++row) {
        const Vec want = head_by_loops({hv.begin() + row * 16, hv.begin() + (row + 1) * 16}, W1, b1, W2, 16, 12);
        for (i64 v = 0; v < 12; ++v) worst = std::max(worst, std::abs(yv[(k * 6 + row) * 12 + v] - want[v]));
      }
    }
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("MedusaModel: state_dict holds the base and the heads, forward is the base's logits") {
  auto lm = std::make_shared<nn::LanguageModel>(tiny_config("softmax", 12, 16, 3));
  MedusaModel model(lm, 2);
  std::map<std::string, Shape> shapes;
  for (const auto& [name, t] : model.state_dict()) shapes[name] = t.shape();
  CHECK(shapes.at("lm.tok_emb.weight") == Shape{12, 16});
  CHECK(shapes.at("heads.0.block.weight") == Shape{16, 16});
  CHECK(shapes.at("heads.0.block.bias") == Shape{16});
  CHECK(shapes.at("heads.1.out.weight") == Shape{12, 16});
  CHECK(model.num_parameters() == lm->num_parameters() + 2 * (16 * 16 + 16 + 12 * 16));
  CHECK(max_abs_diff(model.heads->heads[1]->out->weight, lm->head->weight) == 0.0);
  const Tensor ids = from_vector(Ids{3, 1, 4, 1, 5}, {1, 5});
  CHECK(max_abs_diff(model.forward(ids), lm->forward(ids)) == 0.0);
}

TEST_CASE("medusa_generate: greedy output equals LanguageModel::generate with random heads, trees and chains") {
  i64 cases = 0, accepted = 0;
  for (const char* mixer : {"softmax", "flash_attention", "retnet", "mamba"}) {
    const bool tree_mixer = std::string(mixer) == "softmax" || std::string(mixer) == "flash_attention";
    for (std::uint64_t seed = 0; seed < 6; ++seed) {
      const i64 K = 1 + static_cast<i64>(seed) % 4 + (tree_mixer ? 0 : 1);
      const auto model = random_medusa(mixer, 10 + seed, K, 48, seed == 3);
      CHECK(model->lm->supports_tree() == tree_mixer);
      // (prompt length, new tokens): short and long, one new token, and up to max_len (the tree is cut to fit).
      for (auto [P, n] : std::vector<std::pair<i64, i64>>{{1, 20}, {4, 1}, {5, 12}, {3, 45}}) {
        CAPTURE(mixer);
        CAPTURE(seed);
        CAPTURE(P);
        CAPTURE(n);
        const Ids prompt = random_tokens(P, 12, 100 * seed + P);
        const MedusaOutput out = medusa(*model, prompt, n);
        CHECK(out.tokens == greedy(*model->lm, prompt, n));
        check_stats(out, P);
        for (i64 a : out.stats.accept_lengths) accepted += a;
        ++cases;
      }
    }
  }
  CHECK(cases == 96);
  MESSAGE("random heads: " << accepted << " candidates accepted in all");
}

TEST_CASE("medusa_generate: greedy equals generate with given trees, a chain on a tree model, and stop_token") {
  const auto model = random_medusa("softmax", 21, 3);
  const Ids prompt{4, 8, 1};
  const Ids want = greedy(*model->lm, prompt, 30);
  MedusaGenerateOptions o;
  o.max_new_tokens = 30;
  for (const MedusaTree& tree : {MedusaTree(std::vector<Ids>{{1, 0}, {0}, {0, 1}, {1}, {0, 0}}), chain_tree(3),
                                 chain_tree(1), MedusaTree(std::vector<Ids>{{0}, {1}, {2}, {3}}, 12)}) {
    o.tree = tree;
    CAPTURE(tree.num_nodes());
    CHECK(medusa_generate(*model, prompt, o).tokens == want);
  }
  // Stopping at the first occurrence of a token greedy decoding emits.
  const i64 stop = want[prompt.size() + 5];
  const Ids stopped = greedy(*model->lm, prompt, 30, stop);
  CHECK(stopped.size() < want.size());
  CHECK(medusa(*model, prompt, 30, stop).tokens == stopped);
  CHECK(medusa(*model, prompt, 0).tokens == prompt);
}

TEST_CASE("LanguageModel::verify at every node of the default tree equals stepping its root-to-node path") {
  for (const char* mixer : {"softmax", "flash_attention"}) {
    CAPTURE(mixer);
    const auto model = random_medusa(mixer, 5, 4, 96);
    const nn::LanguageModel& lm = *model->lm;
    const MedusaTree tree = default_tree_cut(4);
    REQUIRE(tree.num_nodes() == 64);
    const Ids prompt = random_tokens(7, 12, 3), nodes = random_tokens(64, 12, 4);
    nn::LanguageModelState state = lm.init_state(1);
    step_tokens(lm, prompt, state);
    const Tensor z = lm.verify(nodes, tree.attention_mask, tree.depth, state);
    REQUIRE(z.shape() == Shape{64, 16});
    double worst = 0.0;
    for (i64 i = 0; i < 64; ++i) {
      Ids seq = prompt;
      for (i64 j : root_path(tree, i)) seq.push_back(nodes[j]);
      nn::LanguageModelState fresh = lm.init_state(1);
      worst = std::max(worst, max_abs_diff(select(z, 0, i), select(step_tokens(lm, seq, fresh), 0, 0)));
    }
    CHECK(worst < 1e-5);
  }
  // A chain through a recurrent model.
  const auto model = random_medusa("retnet", 6, 4);
  const nn::LanguageModel& lm = *model->lm;
  const MedusaTree chain = chain_tree(4);
  const Ids prompt = random_tokens(5, 12, 7), nodes = random_tokens(5, 12, 8);
  nn::LanguageModelState state = lm.init_state(1);
  step_tokens(lm, prompt, state);
  const Tensor z = lm.verify(nodes, chain.attention_mask, chain.depth, state);
  for (i64 i = 0; i < 5; ++i) {
    Ids seq = prompt;
    seq.insert(seq.end(), nodes.begin(), nodes.begin() + i + 1);
    nn::LanguageModelState fresh = lm.init_state(1);
    CHECK(max_abs_diff(select(z, 0, i), select(step_tokens(lm, seq, fresh), 0, 0)) < 1e-5);
  }
}

TEST_CASE("LanguageModel::accept: the KV cache equals the cache of stepping the accepted tokens") {
  for (const char* mixer : {"softmax", "flash_attention"}) {
    const auto model = random_medusa(mixer, 8, 3, 96);
    const nn::LanguageModel& lm = *model->lm;
    const MedusaTree tree = default_tree_cut(3);
    const Ids prompt = random_tokens(6, 12, 9), nodes = random_tokens(tree.num_nodes(), 12, 10);
    // Every prefix length of a few retrieve rows, the root alone included.
    for (i64 r : {i64{0}, i64{7}, tree.num_leaves() - 1}) {
      for (i64 m = 1; m <= tree.row_depth(r) + 1; ++m) {
        CAPTURE(mixer);
        CAPTURE(r);
        CAPTURE(m);
        const Ids row = tree.retrieve_indices.to_vector<i64>();
        const Ids path(row.begin() + r * (tree.max_depth() + 1), row.begin() + r * (tree.max_depth() + 1) + m);
        nn::LanguageModelState spec = lm.init_state(1), plain = lm.init_state(1);
        step_tokens(lm, prompt, spec);
        lm.verify(nodes, tree.attention_mask, tree.depth, spec);
        lm.accept(spec, path);
        Ids seq = prompt;
        for (i64 j : path) seq.push_back(nodes[j]);
        step_tokens(lm, seq, plain);
        REQUIRE(spec.position == plain.position);
        for (std::size_t l = 0; l < spec.layers.size(); ++l) {
          const auto& a = dynamic_cast<const nn::KVCache&>(*spec.layers[l]);
          const auto& b = dynamic_cast<const nn::KVCache&>(*plain.layers[l]);
          CHECK(a.position == b.position);
          CHECK(max_abs_diff(narrow(a.k, 2, 0, b.position), narrow(b.k, 2, 0, b.position)) < 1e-5);
          CHECK(max_abs_diff(narrow(a.v, 2, 0, b.position), narrow(b.v, 2, 0, b.position)) < 1e-5);
        }
        // Decoding goes on alike.
        const Tensor next = from_vector(Ids{3}, {1});
        CHECK(max_abs_diff(lm.step(next, spec), lm.step(next, plain)) < 1e-5);
      }
    }
  }
  // A recurrent model rolls back to the accepted prefix of a chain.
  const auto model = random_medusa("mamba", 9, 3);
  const nn::LanguageModel& lm = *model->lm;
  const MedusaTree chain = chain_tree(3);
  const Ids prompt = random_tokens(4, 12, 11), nodes = random_tokens(4, 12, 12);
  for (i64 m = 1; m <= 4; ++m) {
    nn::LanguageModelState spec = lm.init_state(1), plain = lm.init_state(1);
    step_tokens(lm, prompt, spec);
    lm.verify(nodes, chain.attention_mask, chain.depth, spec);
    Ids path;
    for (i64 j = 0; j < m; ++j) path.push_back(j);
    lm.accept(spec, path);
    Ids seq = prompt;
    seq.insert(seq.end(), nodes.begin(), nodes.begin() + m);
    step_tokens(lm, seq, plain);
    CHECK(spec.position == plain.position);
    const Tensor next = from_vector(Ids{5}, {1});
    CHECK(max_abs_diff(lm.step(next, spec), lm.step(next, plain)) < 1e-5);
  }
}

TEST_CASE("MedusaLoss: Medusa-1 and Medusa-2 equal loops over heads and positions with shifted labels") {
  auto lm = std::make_shared<nn::LanguageModel>(tiny_config("softmax", 12, 16, 2));
  MedusaModel model(lm, 3);
  model.to(DType::Float64);
  randomize(model, 3);
  const i64 B = 2, T = 7, V = 12, K = 3;
  const Tensor input = from_vector(random_tokens(B * T, V, 1), {B, T});
  Ids y = random_tokens(B * T, V, 2);
  y[0] = y[4] = y[9] = -100;  // ignored targets, also seen by the heads through the shift
  const Tensor target = from_vector(y, {B, T});
  const Vec base = lm->forward(input).to_vector<double>();
  const Vec heads = model.heads->forward(lm->hidden(input)).to_vector<double>();  // [K, B, T, V]
  // Head k (1-based) at t is scored against y[t + k]; the base at t against y[t]. Means over scored positions.
  const auto head_ce = [&](i64 k) {
    double total = 0.0;
    i64 n = 0;
    for (i64 b = 0; b < B; ++b)
      for (i64 t = 0; t + k < T; ++t)
        if (const i64 label = y[b * T + t + k]; label != -100) {
          total += nll(&heads[(((k - 1) * B + b) * T + t) * V], V, label);
          ++n;
        }
    return n ? total / static_cast<double>(n) : 0.0;
  };
  double base_ce = 0.0;
  i64 scored = 0;
  for (i64 i = 0; i < B * T; ++i) {
    if (y[i] == -100) continue;
    base_ce += nll(&base[i * V], V, y[i]);
    ++scored;
  }
  base_ce /= static_cast<double>(scored);
  const double medusa1 = 0.8 * head_ce(1) + 0.64 * head_ce(2) + 0.512 * head_ce(3);
  CHECK(std::abs(MedusaLoss{}(model, input, target).item() - medusa1) < 1e-12);
  CHECK(std::abs(joint_loss()(model, input, target).item() - (base_ce + medusa1)) < 1e-12);
  MedusaLoss custom = joint_loss();
  custom.weights = {1.0, 0.0, 2.0};
  custom.base_weight = 0.5;
  CHECK(std::abs(custom(model, input, target).item() - (0.5 * base_ce + head_ce(1) + 2.0 * head_ce(3))) < 1e-12);
  // A head that looks past the end of every sequence contributes 0.
  MedusaModel deep(lm, T);
  deep.to(DType::Float64);
  MedusaLoss last_only;
  last_only.weights.assign(T, 0.0);
  last_only.weights[T - 1] = 1.0;
  CHECK(last_only(deep, input, target).item() == 0.0);
  CHECK(K == model.heads->num_heads());
}

TEST_CASE("MedusaLoss: Medusa-1 sends no gradient to the base, Medusa-2 does, the heads' gradients agree") {
  auto lm = std::make_shared<nn::LanguageModel>(tiny_config("softmax", 12, 16, 2));
  MedusaModel model(lm, 2);
  randomize(model, 5);
  const Tensor input = from_vector(random_tokens(12, 12, 3), {2, 6});
  const Tensor target = from_vector(random_tokens(12, 12, 4), {2, 6});
  MedusaLoss{}(model, input, target).backward();
  for (const auto& [name, p] : lm->named_parameters()) {
    CAPTURE(name);
    CHECK(!p.grad().defined());
  }
  std::vector<Tensor> head_grads;
  for (const Tensor& p : model.heads->parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(max_abs_diff(p.grad(), zeros(p.shape())) > 0.0);
    head_grads.push_back(p.grad().clone());
  }
  model.zero_grad();
  joint_loss()(model, input, target).backward();
  for (const auto& [name, p] : lm->named_parameters()) {
    CAPTURE(name);
    REQUIRE(p.grad().defined());
  }
  CHECK(max_abs_diff(lm->head->weight.grad(), zeros({12, 16})) > 0.0);
  const std::vector<Tensor> params = model.heads->parameters();
  for (std::size_t i = 0; i < params.size(); ++i) CHECK(max_abs_diff(params[i].grad(), head_grads[i]) < 1e-6);
}

TEST_CASE("gradcheck: MedusaHeads and the Medusa-2 loss in Float64") {
  auto lm = std::make_shared<nn::LanguageModel>(tiny_config("softmax", 5, 8, 2));
  MedusaModel model(lm, 2);
  model.to(DType::Float64);
  randomize(model, 6);
  std::vector<Tensor> inputs{leaf_of(normal({2, 3, 16}, 1))};
  for (const Tensor& p : model.heads->parameters()) inputs.push_back(p);
  const GradcheckResult heads = gradcheck([&](const auto& v) { return model.heads->forward(v[0]); }, inputs);
  CHECK_MESSAGE(heads.ok, heads.message);
  // The joint loss w.r.t. base parameters (head, final norm, an attention projection) and a head's block.
  const Tensor input = from_vector(Ids{1, 4, 0, 2, 3, 3}, {2, 3});
  const Tensor target = from_vector(Ids{4, 0, -100, 3, 1, 2}, {2, 3});
  const std::vector<Tensor> checked{lm->head->weight, param_of(*lm, "norm.weight"),
                                    param_of(*lm, "layers.1.mixer.q_proj.weight"),
                                    model.heads->heads[0]->block->weight};
  const GradcheckResult loss = gradcheck([&](const auto&) { return joint_loss()(model, input, target); }, checked);
  CHECK_MESSAGE(loss.ok, loss.message);
}

TEST_CASE("medusa_generate: trained heads on the copy task accept more than one token per forward, greedy-exact") {
  const data::TaskData held_out = copy_data(24, 99);
  for (const char* mixer : {"softmax", "flash_attention", "retnet"}) {
    CAPTURE(mixer);
    const auto model = trained_copy_model(mixer);
    const nn::LanguageModel& lm = *model->lm;
    i64 verify = 0, generated = 0, copied = 0;
    double accept_sum = 0.0;
    for (i64 r = 0; r < held_out.size(); ++r) {
      const Ids prompt = row_prefix(held_out.inputs, r, 7);  // the symbols and '|'
      const Ids want = greedy(lm, prompt, 6);
      const MedusaOutput out = medusa(*model, prompt, 6);
      CHECK(out.tokens == want);
      verify += out.stats.verify_passes;
      generated += 5;  // the first token comes from the prefill
      for (i64 a : out.stats.accept_lengths) accept_sum += static_cast<double>(a + 1);
      copied += Ids(want.begin() + 7, want.end()) == Ids(prompt.begin(), prompt.begin() + 6);
      // On past the copy up to max_len, where the tree is cut to fit the KV cache.
      const i64 longer = 25 - r % 7;
      const MedusaOutput more = medusa(*model, prompt, longer);
      CHECK(more.tokens == greedy(lm, prompt, longer));
      check_stats(more, 7);
    }
    const double per_forward = accept_sum / static_cast<double>(verify);
    std::printf("medusa on copy (%s): %.2f tokens per verify pass, %lld of %lld copies right\n", mixer, per_forward,
                static_cast<long long>(copied), static_cast<long long>(held_out.size()));
    CHECK(per_forward > 1.0);
    CHECK(static_cast<double>(generated) / static_cast<double>(verify) > 1.0);
  }
}

TEST_CASE("medusa_generate: typical acceptance emits only tokens whose base probability passes its threshold") {
  const auto model = trained_copy_model("softmax");
  const data::TaskData held_out = copy_data(6, 98);
  for (double T : {0.5, 1.0, 2.0}) {
    MedusaGenerateOptions o;
    o.acceptance = AcceptanceRule::typical;
    o.temperature = T;
    o.max_new_tokens = 12;
    for (i64 r = 0; r < held_out.size(); ++r) {
      const Ids prompt = row_prefix(held_out.inputs, r, 7);
      const MedusaOutput out = medusa_generate(*model, prompt, o);
      REQUIRE(out.tokens.size() == 19);
      check_stats(out, 7);
      // Each token's probability under a full forward pass over its prefix passes min(ε, δ e^{−H}).
      for (std::size_t j = 7; j < out.tokens.size(); ++j) {
        CAPTURE(T);
        CAPTURE(j);
        const Ids prefix(out.tokens.begin(), out.tokens.begin() + static_cast<std::ptrdiff_t>(j));
        const Tensor z = model->lm->forward(from_vector(prefix, {1, static_cast<i64>(j)}));
        const Vec p = ref::softmax_of(select(select(z, 0, 0), 0, static_cast<i64>(j) - 1).to_vector<double>(), T);
        double H = 0.0;
        for (double q : p) H -= q > 0.0 ? q * std::log(q) : 0.0;
        CHECK(p[out.tokens[j]] > std::min(0.09, 0.3 * std::exp(-H)));
      }
    }
  }
}

TEST_CASE("medusa_generate: typical acceptance with epsilon 0 accepts every candidate of the deepest row") {
  for (const char* mixer : {"softmax", "retnet"}) {
    CAPTURE(mixer);
    const auto model = random_medusa(mixer, 31, 3, 64);
    MedusaGenerateOptions o;
    o.acceptance = AcceptanceRule::typical;
    o.posterior_threshold = 0.0;  // the threshold min(0, δ e^{−H}) = 0: every p(x) > 0 passes
    o.max_new_tokens = 21;
    const MedusaOutput out = medusa_generate(*model, {2, 9, 4}, o);
    CHECK(out.tokens.size() == 24);
    // 1 token from the prefill, then 4 per pass (3 candidates and the next root): 5 passes.
    CHECK(out.stats.accept_lengths == Ids(5, 3));
  }
}

TEST_CASE("Medusa: bad input throws ember::Error naming the layer") {
  auto lm = std::make_shared<nn::LanguageModel>(tiny_config("softmax", 12, 16, 2));
  CHECK_THROWS_EMBER(MedusaModel(lm, 0), "MedusaHeads: num_heads must be >= 1");
  CHECK_THROWS_EMBER(MedusaModel(nullptr, 2), "MedusaModel");
  CHECK_THROWS_EMBER(MedusaHead(16, 12, zeros({12, 8})), "MedusaHead: expected a head weight [12, 16], got [12, 8]");
  MedusaModel model(lm, 2);
  CHECK_THROWS_EMBER(model.heads->forward(zeros({3, 8})), "MedusaHeads: expected h [..., 16], got [3, 8]");
  const Tensor ids = from_vector(Ids{1, 2, 3, 4}, {2, 2});
  CHECK_THROWS_EMBER(MedusaLoss{}(*lm, ids, ids), "medusa_loss: expected a MedusaModel, got a LanguageModel");
  CHECK_THROWS_EMBER(MedusaLoss{}(model, ids, from_vector(Ids{1, 2}, {2})), "medusa_loss: expected Int64 input");
  MedusaLoss one_weight;
  one_weight.weights = {1.0};
  CHECK_THROWS_EMBER(one_weight(model, ids, ids), "medusa_loss: 1 head weights for 2 heads");
  CHECK_THROWS_EMBER(medusa(model, {}, 4), "medusa_generate: the prompt is empty");
  CHECK_THROWS_EMBER(medusa(model, {3, 12}, 4), "medusa_generate: token 12 out of range");
  CHECK_THROWS_EMBER(medusa(model, {3, 4}, 15), "medusa_generate: prompt (2) + max_new_tokens (15)");
  MedusaGenerateOptions o;
  o.max_new_tokens = 4;
  o.tree = chain_tree(3);
  CHECK_THROWS_EMBER(medusa_generate(model, {1}, o), "medusa_generate: a tree of depth 3");
  o.tree = MedusaTree(std::vector<Ids>{{0}, {1}}, 13);
  CHECK_THROWS_EMBER(medusa_generate(model, {1}, o), "top_k 13 does not fit 2 heads over 12 tokens");
  o.tree.reset();
  o.acceptance = AcceptanceRule::typical;
  o.temperature = 0.0;
  CHECK_THROWS_EMBER(medusa_generate(model, {1}, o), "medusa_generate: typical acceptance needs temperature > 0");
  const auto recurrent = random_medusa("retnet", 1, 2);
  MedusaGenerateOptions tree_options;
  tree_options.tree = MedusaTree(std::vector<Ids>{{0}, {1}});
  CHECK_THROWS_EMBER(medusa_generate(*recurrent, {1}, tree_options), "verify only chains, got a tree of 2 leaves");
}
