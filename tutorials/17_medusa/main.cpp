// Tutorial 17: Medusa (Cai et al. 2024). A language model emits one token per forward pass; Medusa adds K small
// heads on its last hidden state that guess the tokens after the next, arranges their top guesses into a tree of
// candidate continuations, and verifies the whole tree with one forward pass of the base model (tree attention).
// The program builds the heads, prints and draws the candidate tree and its buffers, checks tree attention against
// running each path on its own, trains heads on the copy task with a frozen base (Medusa-1) and jointly with it
// (Medusa-2), measures how many tokens each forward pass yields, and looks at typical acceptance.
// Run: tutorial_17_medusa [--short] [--out DIR]. The page README.md next to this file explains each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "ember.h"
#include "tutorials/training.h"
#include "tutorials/tutorial.h"

using namespace ember;
using namespace ember::decoding;

namespace {

using i64 = std::int64_t;
using Ids = std::vector<i64>;
using Vec = std::vector<double>;

// The largest |a − b| over all elements.
double max_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); }

// The copy task ("abcdefghij|abcdefghij", scored on the copy) and the model's size; --short is smaller.
struct Setup {
  data::TaskSplit task;
  nn::LanguageModelConfig model;
  i64 K = 3;  // Medusa heads
  i64 base_steps = 0, head_steps = 0, prompts = 0;
};

Setup make_setup(bool quick) {
  data::CopyConfig cc;
  cc.length = quick ? 6 : 10;
  cc.num_symbols = 20;  // a vocabulary of 21: more than the 10 tokens per head that the default tree tries
  cc.num_examples = quick ? 2048 : 8192;
  Setup s;
  s.task.train = data::copy_task(cc, 1);
  cc.num_examples = 256;
  s.task.held_out = data::copy_task(cc, 2);
  s.model.vocab_size = s.task.train.vocab_size();
  s.model.d_model = quick ? 32 : 64;
  s.model.n_heads = 4;
  s.model.n_layers = 2;
  // The KV cache holds the prompt (length + 1), the copy (length) and the 64 nodes of one tree after them.
  s.model.max_len = 2 * cc.length + 65;
  s.model.seed = 3;
  s.base_steps = quick ? 300 : 600;
  s.head_steps = quick ? 250 : 400;
  s.prompts = quick ? 8 : 64;
  return s;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. The heads

// −log softmax(z)[y] for logits z [V] in double.
double nll(const Vec& z, i64 y) {
  const double m = *std::max_element(z.begin(), z.end());
  double s = 0;
  for (double v : z) s += std::exp(v - m);
  return m + std::log(s) - z[y];
}

// The Medusa-1 loss Σ_k 0.8^k CE(head k at t, x_{t+k+1}) written out as loops: head k's label at t is the base
// target at t + k (target[t] = x_{t+1}), and each head's term is a mean over the positions it can score.
double medusa1_loss_by_hand(const Tensor& head_logits, const Tensor& target, i64 K) {
  const i64 B = target.shape()[0], T = target.shape()[1], V = head_logits.shape()[3];
  const Vec z = head_logits.to(DType::Float64).to_vector<double>();
  const Ids y = target.to_vector<i64>();
  double loss = 0;
  for (i64 k = 1; k <= K; ++k) {
    double sum = 0;
    i64 n = 0;
    for (i64 b = 0; b < B; ++b)
      for (i64 t = 0; t + k < T; ++t) {
        const i64 label = y[b * T + t + k];
        if (label == data::kIgnoreIndex) continue;
        const auto row = z.begin() + (((k - 1) * B + b) * T + t) * V;
        sum += nll(Vec(row, row + V), label);
        ++n;
      }
    if (n > 0) loss += std::pow(0.8, static_cast<double>(k)) * sum / static_cast<double>(n);
  }
  return loss;
}

// Section 1: fresh heads equal the base head; what each head is trained to predict, on one sequence.
void heads(tutorial::Claims& claims, const Setup& s) {
  tutorial::section("1. The heads: a residual block and a linear head per future token");
  auto lm = std::make_shared<nn::LanguageModel>(s.model);
  MedusaModel model(lm, s.K);
  std::printf("%s\n", model.heads->str().c_str());
  const Tensor ids = narrow(s.task.held_out.inputs, 0, 0, 8), target = narrow(s.task.held_out.targets, 0, 0, 8);
  const Tensor h = lm->hidden(ids);          // [8, T, D], the final-normed hidden states
  const Tensor y = model.heads->forward(h);  // [K, 8, T, V]
  double worst = 0;
  for (i64 k = 0; k < s.K; ++k) worst = std::max(worst, max_diff(select(y, 0, k), lm->logits(h)));
  std::printf("fresh heads (W1 = 0, W2 = the base head): max |head k logits - base logits| = %g\n", worst);
  claims.check(worst == 0.0, "a fresh head is exactly the base model's next-token head (SiLU(0) = 0)");

  // The labels of one training sequence: the base predicts x_{t+1}, head k predicts x_{t+k+1}.
  const data::TaskData& train = s.task.train;
  const Ids x = select(train.inputs, 0, 0).to_vector<i64>(), tgt = select(train.targets, 0, 0).to_vector<i64>();
  const auto label = [&](i64 t, i64 k) {  // head k's label at t (k = 0: the base), '.' where not scored
    const i64 T = static_cast<i64>(tgt.size());
    return t + k < T && tgt[t + k] != data::kIgnoreIndex ? train.tokenizer.decode(Ids{tgt[t + k]}) : ".";
  };
  std::printf("\nsequence %s (scored on the copy):\n%-10s", train.format(0).c_str(), "t");
  for (std::size_t t = 0; t < x.size(); ++t) std::printf("%3zu", t);
  std::printf("\n%-10s", "input x_t");
  for (i64 id : x) std::printf("%3s", train.tokenizer.decode(Ids{id}).c_str());
  for (i64 k = 0; k <= s.K; ++k) {
    std::printf("\n%-10s", k == 0 ? "base" : ("head " + std::to_string(k)).c_str());
    for (std::size_t t = 0; t < x.size(); ++t) std::printf("%3s", label(static_cast<i64>(t), k).c_str());
  }
  std::printf("\n");
  const double lib = MedusaLoss{}(model, ids, target).item(), hand = medusa1_loss_by_hand(y, target, s.K);
  std::printf("Medusa-1 loss of the fresh heads on 8 held-out rows: MedusaLoss %.6f, loops %.6f\n", lib, hand);
  claims.check(std::abs(lib - hand) < 1e-5 * hand,
               "MedusaLoss = sum_k 0.8^k CE(head k at t, x_{t+k+1}), computed with the labels shifted by hand");
}

// ---------------------------------------------------------------------------------------------------------------
// 2. The candidate tree

// A path as the program prints it: "(0,1)".
std::string path_name(const Ids& path) {
  std::string s = "(";
  for (std::size_t d = 0; d < path.size(); ++d) {
    if (d > 0) s += ',';
    s += std::to_string(path[d]);
  }
  return s + ")";
}

// Node i's path (the root's is empty).
Ids node_path(const MedusaTree& tree, i64 node) { return node == 0 ? Ids{} : tree.paths[node - 1]; }

// children[i]: node i's children, in increasing node id (so in lexicographic order of their paths).
std::vector<Ids> children_of(const MedusaTree& tree) {
  std::vector<Ids> children(tree.num_nodes());
  for (i64 i = 1; i < tree.num_nodes(); ++i) children[tree.parent[i]].push_back(i);
  return children;
}

// The tree as indented text, one level per two spaces; consecutive leaves share a line.
void print_tree(const MedusaTree& tree) {
  const std::vector<Ids> children = children_of(tree);
  const std::function<void(i64, int)> print = [&](i64 node, int indent) {
    std::printf("%*s%s\n", indent, "", node == 0 ? "root" : path_name(node_path(tree, node)).c_str());
    std::string leaves;
    for (i64 c : children[node]) {
      if (children[c].empty()) {
        if (!leaves.empty()) leaves += ' ';
        leaves += path_name(node_path(tree, c));
        continue;
      }
      if (!leaves.empty()) std::printf("%*s%s\n", indent + 2, "", leaves.c_str()), leaves.clear();
      print(c, indent + 2);
    }
    if (!leaves.empty()) std::printf("%*s%s\n", indent + 2, "", leaves.c_str());
  };
  print(0, 2);
}

// The tree as an SVG picture: depth left to right, leaves top to bottom in depth-first order, each parent centred
// on its children; a node shows its last index j (head δ's j-th most likely token) and, above, its path.
void save_tree_svg(const MedusaTree& tree, const std::string& file) {
  const std::vector<Ids> children = children_of(tree);
  std::vector<double> y(tree.num_nodes());
  double next_leaf = 0;
  const std::function<void(i64)> place = [&](i64 node) {
    if (children[node].empty()) {
      y[node] = next_leaf++;
      return;
    }
    for (i64 c : children[node]) place(c);
    y[node] = (y[children[node].front()] + y[children[node].back()]) / 2;
  };
  place(0);
  const auto X = [&](i64 node) { return 40.0 + 170.0 * static_cast<double>(node_path(tree, node).size()); };
  const auto Y = [&](i64 node) { return 60.0 + 34.0 * y[node]; };
  const char* fill[] = {"#eeeeee", "#a8dadc", "#90be6d", "#f9c74f", "#f8961e", "#e76f51"};  // by depth
  std::ofstream svg(file);
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << 80 + 170 * tree.max_depth() << "' height='"
      << 80 + 34 * next_leaf << "' font-family='sans-serif' font-size='11'>\n<rect width='100%' height='100%' "
      << "fill='white'/>\n<text x='20' y='24' font-size='13'>" << tree.num_nodes() << " nodes: column = depth "
      << "(Medusa head), number = rank of that head's token, above = the node's path</text>\n";
  for (i64 i = 1; i < tree.num_nodes(); ++i)
    svg << "<line x1='" << X(tree.parent[i]) << "' y1='" << Y(tree.parent[i]) << "' x2='" << X(i) << "' y2='" << Y(i)
        << "' stroke='#888'/>\n";
  for (i64 i = 0; i < tree.num_nodes(); ++i) {
    const Ids p = node_path(tree, i);
    svg << "<circle cx='" << X(i) << "' cy='" << Y(i) << "' r='11' stroke='#333' fill='" << fill[p.size() % 6]
        << "'/>\n<text x='" << X(i) << "' y='" << Y(i) + 4 << "' text-anchor='middle'>"
        << (i == 0 ? "r" : std::to_string(p.back())) << "</text>\n";
    if (i > 0)
      svg << "<text x='" << X(i) << "' y='" << Y(i) - 14 << "' text-anchor='middle' font-size='9' fill='#555'>"
          << path_name(p) << "</text>\n";
  }
  svg << "</svg>\n";
}

std::string mask_row(const MedusaTree& tree, i64 i) {
  const std::vector<bool> m = tree.attention_mask.to_vector<bool>();
  std::string row;
  for (i64 j = 0; j < tree.num_nodes(); ++j) row += m[i * tree.num_nodes() + j] ? '1' : '0';
  return row;
}

// True when path a is a prefix of path b (a = b included): b's node sees a's.
bool is_prefix(const Ids& a, const Ids& b) { return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin()); }

// Section 2: the buffers of a small tree against the reference's values, and the default tree's shape.
void candidate_tree(tutorial::Claims& claims, const std::string& dir) {
  tutorial::section("2. The candidate tree and its buffers");
  const MedusaTree small({{0}, {1}, {0, 0}, {0, 1}, {1, 0}});  // top_k = 10 tokens per head
  print_tree(small);
  std::printf("%-5s %-7s %-8s %-9s %s\n", "node", "path", "mask", "position", "tree index = 1 + 10(depth-1) + j");
  std::vector<std::string> rows;
  for (i64 i = 0; i < small.num_nodes(); ++i) {
    rows.push_back(mask_row(small, i));
    std::printf("%-5lld %-7s %-8s %-9s %lld\n", static_cast<long long>(i), path_name(node_path(small, i)).c_str(),
                rows.back().c_str(), ("p+" + std::to_string(small.depth.to_vector<i64>()[i])).c_str(),
                static_cast<long long>(small.tree_indices.to_vector<i64>()[i]));
  }
  const Ids retrieve = small.retrieve_indices.to_vector<i64>();
  std::printf("retrieve indices (one row per leaf):");
  for (std::size_t r = 0; r < retrieve.size(); r += 3)
    std::printf(" [%lld %lld %lld]", static_cast<long long>(retrieve[r]), static_cast<long long>(retrieve[r + 1]),
                static_cast<long long>(retrieve[r + 2]));
  std::printf("\n");
  claims.check(rows == std::vector<std::string>{"100000", "110000", "101000", "110100", "110010", "101001"} &&
                   small.depth.to_vector<i64>() == Ids{0, 1, 1, 2, 2, 2} &&
                   small.tree_indices.to_vector<i64>() == Ids{0, 1, 2, 11, 12, 11} &&
                   retrieve == Ids{0, 1, 3, 0, 1, 4, 0, 2, 5},
               "mask rows, position ids, tree indices and retrieve indices equal the reference's (notes 10, oracle 1)");

  const MedusaTree tree = default_medusa_tree();
  Ids per_depth(tree.max_depth() + 1, 0);
  i64 leaves = 0;
  bool mask_is_prefix = true;
  for (i64 i = 0; i < tree.num_nodes(); ++i) {
    ++per_depth[node_path(tree, i).size()];
    bool leaf = true;
    for (i64 j = 0; j < tree.num_nodes(); ++j) {
      leaf = leaf && !(j != i && is_prefix(node_path(tree, i), node_path(tree, j)));
      mask_is_prefix =
          mask_is_prefix && (mask_row(tree, i)[j] == '1') == is_prefix(node_path(tree, j), node_path(tree, i));
    }
    leaves += leaf;
  }
  std::printf("\ndefault tree (mc_sim_7b_63): %lld nodes, %lld leaves, nodes per depth 0..%lld:",
              static_cast<long long>(tree.num_nodes()), static_cast<long long>(tree.num_leaves()),
              static_cast<long long>(tree.max_depth()));
  for (i64 n : per_depth) std::printf(" %lld", static_cast<long long>(n));
  std::printf("\n");
  print_tree(tree);
  claims.check(tree.num_nodes() == 64 && leaves == tree.num_leaves(),
               "the default tree has 64 nodes, and its leaves (paths no other path extends) are its retrieve rows");
  claims.check(mask_is_prefix, "in the 64 x 64 mask node i sees node j exactly when j's path is a prefix of i's");
  if (!dir.empty()) {
    save_tree_svg(tree, dir + "/medusa_tree.svg");
    std::printf("wrote %s/medusa_tree.svg\n", dir.c_str());
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Tree attention

// n tokens below V from a seeded generator.
Ids random_tokens(i64 n, i64 V, std::uint64_t seed) {
  std::mt19937_64 gen(seed);
  Ids ids(n);
  for (i64& id : ids) id = static_cast<i64>(gen() % static_cast<std::uint64_t>(V));
  return ids;
}

// A state that has stepped `tokens` one by one.
nn::LanguageModelState stepped(const nn::LanguageModel& lm, const Ids& tokens) {
  nn::LanguageModelState state = lm.init_state(1);
  for (i64 id : tokens) lm.step_trunk(from_vector(Ids{id}, {1}), state);
  return state;
}

// Section 3: one pass over the 64 nodes of the default tree against a separate forward pass per root-to-leaf path,
// then the KV cache after accepting one path against stepping its tokens.
void tree_attention(tutorial::Claims& claims, const Setup& s) {
  tutorial::section("3. Tree attention: every path verified in one pass");
  nn::LanguageModelConfig c = s.model;
  c.vocab_size = 16;  // the default tree's top_k = 10 needs V >= 10; verify() itself takes any tokens
  c.max_len = 96;     // the KV cache holds the prompt and all 64 nodes during verification
  nn::LanguageModel lm(c);
  lm.to(DType::Float64);
  {  // O(1) random weights, so that attention is far from uniform and a wrong mask would show
    NoGradGuard no_grad;
    Generator gen(5);
    for (Tensor& p : lm.parameters()) p.copy_(randn(p.shape(), DType::Float64, Device::cpu(), 0, 0.5, &gen));
  }
  const MedusaTree tree = default_medusa_tree();
  const Ids prompt = random_tokens(7, c.vocab_size, 1), nodes = random_tokens(tree.num_nodes(), c.vocab_size, 2);
  nn::LanguageModelState state = stepped(lm, prompt);
  const Tensor z = lm.verify(nodes, tree.attention_mask, tree.depth, state);  // [64, D]: one pass
  const Tensor tree_logits = lm.logits(lm.final_norm(z));

  // Each root-to-leaf path on its own: a causal forward pass over prompt + path, compared at the path's nodes.
  const Ids retrieve = tree.retrieve_indices.to_vector<i64>();
  const i64 C = tree.max_depth() + 1;
  double worst = 0;
  i64 path_tokens = 0;
  for (i64 r = 0; r < tree.num_leaves(); ++r) {
    Ids seq = prompt, path;
    for (i64 d = 0; d <= tree.row_depth(r); ++d) path.push_back(retrieve[r * C + d]), seq.push_back(nodes[path.back()]);
    const Tensor logits = select(lm.forward(from_vector(seq, {1, static_cast<i64>(seq.size())})), 0, 0);
    for (std::size_t d = 0; d < path.size(); ++d)
      worst = std::max(
          worst, max_diff(select(logits, 0, static_cast<i64>(prompt.size() + d)), select(tree_logits, 0, path[d])));
    path_tokens += static_cast<i64>(path.size());
  }
  std::printf(
      "Float64 model, prompt of %zu tokens, %lld tree nodes in one verify pass; %lld leaves = %lld path "
      "tokens one path at a time\nmax |tree-pass logits - separate forward pass logits| = %.2e\n",
      prompt.size(), static_cast<long long>(tree.num_nodes()), static_cast<long long>(tree.num_leaves()),
      static_cast<long long>(path_tokens), worst);
  claims.check(worst < 1e-12, "the tree pass equals a separate forward pass over each root-to-leaf path (1e-12)");

  // Accept the deepest row's first three nodes (root and two candidates): the cache must be as if they were stepped.
  const i64 row = tree.num_leaves() - 1;
  const Ids accepted_nodes(retrieve.begin() + row * C, retrieve.begin() + row * C + 3);
  lm.accept(state, accepted_nodes);
  Ids accepted = prompt;
  for (i64 node : accepted_nodes) accepted.push_back(nodes[node]);
  nn::LanguageModelState plain = stepped(lm, accepted);
  const i64 used = static_cast<i64>(accepted.size());
  double cache = 0;
  for (std::size_t l = 0; l < state.layers.size(); ++l) {
    const auto& a = dynamic_cast<const nn::KVCache&>(*state.layers[l]);
    const auto& b = dynamic_cast<const nn::KVCache&>(*plain.layers[l]);
    cache = std::max({cache, max_diff(narrow(a.k, 2, 0, used), narrow(b.k, 2, 0, used)),
                      max_diff(narrow(a.v, 2, 0, used), narrow(b.v, 2, 0, used))});
  }
  const Tensor next = from_vector(Ids{3}, {1});
  const double after = max_diff(lm.step(next, state), lm.step(next, plain));
  std::printf(
      "accepted nodes %lld %lld %lld: KV cache vs stepping the tokens: max diff %.2e; next step's logits: "
      "%.2e\n",
      static_cast<long long>(accepted_nodes[0]), static_cast<long long>(accepted_nodes[1]),
      static_cast<long long>(accepted_nodes[2]), cache, after);
  claims.check(cache < 1e-12 && after < 1e-12,
               "after accept() the KV cache (and the next step) equals stepping the accepted tokens (1e-12)");
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Training the heads and decoding with them

// Trains `model` with `loss` (a MedusaLoss) for `steps` AdamW steps on the parameter groups `params`, batches of 64
// taken in order; prints the loss now and then.
void train_heads(const char* label, MedusaModel& model, const MedusaLoss& loss, std::vector<optim::ParamGroup> params,
                 const data::TaskData& task, i64 steps) {
  std::printf("%s:\n", label);
  optim::AdamW opt(std::move(params), 0.9, 0.95);
  const i64 batch = 64;
  for (i64 step = 0; step < steps; ++step) {
    const i64 start = (step * batch) % (task.size() - batch);
    const Tensor l = loss(model, narrow(task.inputs, 0, start, batch), narrow(task.targets, 0, start, batch));
    opt.zero_grad();
    l.backward();
    opt.step();
    if (step % (steps / 4) == 0 || step == steps - 1)
      std::printf("  step %4lld  loss %.4f\n", static_cast<long long>(step + 1), l.item());
  }
  model.eval();
}

// Top-1 accuracy on `task` of the base head (k = 0) and each Medusa head k: argmax of head k at t against x_{t+k+1},
// over the scored positions.
Vec head_accuracy(MedusaModel& model, const data::TaskData& task) {
  NoGradGuard no_grad;
  const Tensor h = model.lm->hidden(task.inputs);
  const Ids base = argmax(model.lm->logits(h), -1).to_vector<i64>();
  const Ids heads = argmax(model.heads->forward(h), -1).to_vector<i64>();  // [K, N, T]
  const Ids y = task.targets.to_vector<i64>();
  const i64 N = task.size(), T = task.seq_len, K = model.heads->num_heads();
  Vec acc;
  for (i64 k = 0; k <= K; ++k) {
    i64 right = 0, scored = 0;
    for (i64 b = 0; b < N; ++b)
      for (i64 t = 0; t + k < T; ++t) {
        const i64 label = y[b * T + t + k];
        if (label == data::kIgnoreIndex) continue;
        right += (k == 0 ? base[b * T + t] : heads[((k - 1) * N + b) * T + t]) == label;
        ++scored;
      }
    acc.push_back(static_cast<double>(right) / static_cast<double>(scored));
  }
  return acc;
}

// The held-out prompts: each row's symbols and '|'.
std::vector<Ids> copy_prompts(const Setup& s) {
  const data::TaskData& held = s.task.held_out;
  const i64 L = held.seq_len / 2;
  std::vector<Ids> prompts;
  for (i64 r = 0; r < s.prompts; ++r) {
    const Ids row = select(held.inputs, 0, r).to_vector<i64>();
    prompts.emplace_back(row.begin(), row.begin() + L + 1);
  }
  return prompts;
}

// What decoding every prompt with one method gave.
struct Decoding {
  std::vector<Ids> outputs;
  Ids accept_lengths;  // over all verify passes
  double tokens_per_forward = 1;
  i64 copies_right = 0;
  double seconds = 0;  // the fastest of three runs, when timed
};

// Copies right: the L generated tokens equal the prompt's L symbols.
i64 count_copies(const std::vector<Ids>& outputs) {
  i64 right = 0;
  for (const Ids& out : outputs) {
    const auto L = static_cast<std::ptrdiff_t>(out.size() / 2);
    right += std::equal(out.begin(), out.begin() + L, out.begin() + L + 1);
  }
  return right;
}

// Decodes the copy (L tokens) after every prompt with `decode` (prompt, L -> MedusaOutput), timed or once.
template <class F>
Decoding decode_all(const std::vector<Ids>& prompts, bool timed, F decode) {
  Decoding d;
  const auto run = [&] {
    d.outputs.clear(), d.accept_lengths.clear();
    for (const Ids& p : prompts) {
      const MedusaOutput out = decode(p, static_cast<i64>(p.size()) - 1);
      d.outputs.push_back(out.tokens);
      d.accept_lengths.insert(d.accept_lengths.end(), out.stats.accept_lengths.begin(), out.stats.accept_lengths.end());
    }
  };
  if (timed)
    d.seconds = tutorial::best_seconds(run);
  else
    run();
  if (!d.accept_lengths.empty()) {
    double sum = 0;
    for (i64 a : d.accept_lengths) sum += static_cast<double>(a + 1);
    d.tokens_per_forward = sum / static_cast<double>(d.accept_lengths.size());
  }
  d.copies_right = count_copies(d.outputs);
  return d;
}

// Plain greedy decoding: one forward pass (step) per token.
Decoding plain_greedy(const nn::LanguageModel& lm, const std::vector<Ids>& prompts, bool timed) {
  return decode_all(prompts, timed, [&](const Ids& p, i64 n) {
    nn::GenerateOptions o;
    o.temperature = 0;
    o.max_new_tokens = n;
    return MedusaOutput{lm.generate(p, o), {}};
  });
}

// Medusa decoding with options o.
Decoding medusa_decode(const MedusaModel& model, const std::vector<Ids>& prompts, MedusaGenerateOptions o, bool timed) {
  return decode_all(prompts, timed, [&](const Ids& p, i64 n) {
    o.max_new_tokens = n;
    return medusa_generate(model, p, o);
  });
}

struct Trained {
  std::shared_ptr<MedusaModel> medusa1, medusa2;
};

// Section 4: a base model trained on the copy task, heads trained on it frozen (Medusa-1) and jointly (Medusa-2),
// their accuracies, and greedy decoding with them.
Trained train_and_decode(tutorial::Claims& claims, const Setup& s) {
  tutorial::section("4. Training heads: Medusa-1 (frozen base) and Medusa-2 (joint)");
  auto base = std::make_shared<nn::LanguageModel>(s.model);
  const tutorial::TrainRun run = tutorial::train_briefly("base model, next-token loss", *base, s.task, s.base_steps);
  base->eval();
  std::printf("base model: held-out copies exactly right (teacher forced): %.1f%%\n", 100 * run.match);

  Trained t;
  t.medusa1 = std::make_shared<MedusaModel>(base, s.K);  // shares the base, which Medusa-1 never changes
  const Vec fresh = head_accuracy(*t.medusa1, s.task.held_out);
  const double lr = 3e-3;
  train_heads("Medusa-1: the heads alone, base frozen", *t.medusa1, MedusaLoss{},
              optim::decay_groups(t.medusa1->heads->named_parameters(), lr, 0.0), s.task.train, s.head_steps);
  auto copy = std::make_shared<nn::LanguageModel>(s.model);
  copy->load_state_dict(base->state_dict());
  t.medusa2 = std::make_shared<MedusaModel>(copy, s.K);
  MedusaLoss joint;
  joint.joint = true;
  // As in the paper, the backbone learns more slowly than the new heads.
  std::vector<optim::ParamGroup> groups = optim::decay_groups(t.medusa2->heads->named_parameters(), lr, 0.0);
  for (optim::ParamGroup& g : optim::decay_groups(copy->named_parameters(), lr / 3, 0.0)) groups.push_back(g);
  train_heads("Medusa-2: heads and base jointly (base at a third of the heads' learning rate)", *t.medusa2, joint,
              groups, s.task.train, s.head_steps);

  const Vec acc1 = head_accuracy(*t.medusa1, s.task.held_out), acc2 = head_accuracy(*t.medusa2, s.task.held_out);
  std::printf("\nheld-out top-1 accuracy   base (t+1)");
  for (i64 k = 1; k <= s.K; ++k)
    std::printf("  head %lld (t+%lld)", static_cast<long long>(k), static_cast<long long>(k + 1));
  const auto row = [&](const char* name, const Vec& acc) {
    std::printf("\n%-24s", name);
    for (double a : acc) std::printf("%13.3f", a);
  };
  row("fresh heads", fresh);
  row("Medusa-1", acc1);
  row("Medusa-2", acc2);
  std::printf("\n");
  bool better = true;
  for (i64 k = 1; k <= s.K; ++k) better = better && acc2[k] > acc1[k] + 0.1;
  claims.check(better, "every Medusa-2 head is more than 10 points more accurate than the Medusa-1 head");

  tutorial::section("4b. Greedy decoding with the heads");
  const std::vector<Ids> prompts = copy_prompts(s);
  const Decoding plain = plain_greedy(*base, prompts, true), plain2 = plain_greedy(*t.medusa2->lm, prompts, true);
  MedusaGenerateOptions chain;
  chain.tree = chain_tree(s.K);
  struct Row {
    const char* name;
    Decoding d;
    const Decoding& reference;
  };
  const std::vector<Row> rows = {{"plain greedy (Medusa-1 base)", plain, plain},
                                 {"Medusa-1, default tree", medusa_decode(*t.medusa1, prompts, {}, true), plain},
                                 {"Medusa-1, chain of 3", medusa_decode(*t.medusa1, prompts, chain, true), plain},
                                 {"plain greedy (Medusa-2 base)", plain2, plain2},
                                 {"Medusa-2, default tree", medusa_decode(*t.medusa2, prompts, {}, true), plain2},
                                 {"Medusa-2, chain of 3", medusa_decode(*t.medusa2, prompts, chain, true), plain2}};
  std::printf("%zu held-out prompts, %zu tokens each\n%-30s %17s %14s %12s %14s\n", prompts.size(),
              prompts[0].size() - 1, "", "tokens / forward", "copies right", "= greedy", "wall clock ms");
  bool identical = true;
  for (const Row& r : rows) {
    const bool same = r.d.outputs == r.reference.outputs;
    identical = identical && same;
    std::printf("%-30s %17.2f %10lld/%-3zu %12s %14.2f\n", r.name, r.d.tokens_per_forward,
                static_cast<long long>(r.d.copies_right), prompts.size(), same ? "yes" : "NO", 1e3 * r.d.seconds);
  }
  claims.check(identical, "greedy Medusa decoding gives exactly the base model's greedy output, tree and chain");
  claims.check(rows[4].d.tokens_per_forward >= 1.8,
               "Medusa-2 with the default tree yields at least 1.8 tokens per base-model forward (the issue's target)");
  claims.check(rows[4].d.tokens_per_forward > rows[1].d.tokens_per_forward,
               "Medusa-2's heads yield more tokens per forward than Medusa-1's");
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// 5. Typical acceptance

// The entropy −Σ p log p.
double entropy(const Vec& p) {
  double H = 0;
  for (double q : p) H -= q > 0 ? q * std::log(q) : 0;
  return H;
}

// typical_accept's verdict on one candidate x below a root whose base distribution is p: the chain tree of depth 1.
bool library_accepts(const Vec& p, i64 x, double eps, double delta) {
  const i64 V = static_cast<i64>(p.size());
  Vec logits(2 * static_cast<std::size_t>(V), 0.0);
  for (i64 v = 0; v < V; ++v) logits[v] = std::log(p[v]);  // the root's logits (the parent of x)
  const Tensor cand = from_vector(Ids{0, x}, {1, 2});
  return typical_accept(chain_tree(1), cand, from_vector(logits, {1, 2, V}, DType::Float64), 1.0, eps, delta)
             .accept_length == 1;
}

// True when every generated token x (after the first `prompt_len` of each output) passes the typical-acceptance rule
// p(x) > min(eps, delta e^-H) for p = softmax(logits / T) of one causal forward pass over the whole output.
bool tokens_pass_threshold(nn::LanguageModel& lm, const std::vector<Ids>& outputs, std::size_t prompt_len, double T,
                           double eps, double delta) {
  NoGradGuard no_grad;
  bool ok = true;
  for (const Ids& out : outputs) {
    const i64 n = static_cast<i64>(out.size());
    const Tensor logits = select(lm.forward(from_vector(out, {1, n})), 0, 0);  // [n, V]: position j predicts j + 1
    for (i64 j = static_cast<i64>(prompt_len); j < n; ++j) {
      const Vec z = select(logits, 0, j - 1).to(DType::Float64).to_vector<double>();
      Vec p(z.size());
      double sum = 0;
      const double m = *std::max_element(z.begin(), z.end());
      for (std::size_t v = 0; v < z.size(); ++v) sum += p[v] = std::exp((z[v] - m) / T);
      for (double& q : p) q /= sum;
      ok = ok && p[out[j]] > std::min(eps, delta * std::exp(-entropy(p)));
    }
  }
  return ok;
}

// Section 5: the threshold on two hand-set distributions; then decoding with typical acceptance as ε varies.
void typical_acceptance(tutorial::Claims& claims, const Setup& s, const Trained& t) {
  tutorial::section("5. Typical acceptance");
  const double eps = 0.09, delta = 0.3;
  const std::vector<std::pair<const char*, Vec>> dists = {
      {"peaked", {0.85, 0.06, 0.05, 0.03, 0.01}}, {"flat", {0.2, 0.15, 0.15, 0.1, 0.1, 0.1, 0.1, 0.05, 0.03, 0.02}}};
  bool agree = true;
  Vec thresholds;
  for (const auto& [name, p] : dists) {
    const double H = entropy(p), tau = std::min(eps, delta * std::exp(-H));
    thresholds.push_back(tau);
    std::printf("%-7s H = %.3f  delta e^-H = %.4f  threshold min(eps, delta e^-H) = %.4f\n  p(x):     ", name, H,
                delta * std::exp(-H), tau);
    for (double q : p) std::printf("%6.2f", q);
    std::printf("\n  accepted: ");
    for (std::size_t x = 0; x < p.size(); ++x) {
      const bool lib = library_accepts(p, static_cast<i64>(x), eps, delta), hand = p[x] > tau;
      agree = agree && lib == hand;
      std::printf("%6s", lib ? "yes" : "no");
    }
    std::printf("\n");
  }
  claims.check(agree, "typical_accept agrees with p(x) > min(eps, delta e^-H) computed here, on all 15 candidates");
  claims.check(thresholds[0] == eps && !library_accepts(dists[0].second, 1, eps, delta) && thresholds[1] < 0.05 &&
                   library_accepts(dists[1].second, 7, eps, delta),
               "peaked: eps decides (0.06 is rejected); flat: the entropy term decides (0.05 is accepted)");

  const std::vector<Ids> prompts = copy_prompts(s);
  std::printf(
      "\ndefault tree, typical acceptance, delta = sqrt(eps) (as the reference's 0.09 and 0.3):\n%-9s %5s %6s "
      "%6s %17s %14s %16s\n",
      "heads", "T", "eps", "delta", "tokens / forward", "copies right", "outputs = greedy");
  bool full_depth = true, passes = true;
  std::map<std::pair<double, double>, i64> medusa1_copies;  // (T, eps) -> copies right
  for (const auto& [name, model, temperatures] :
       {std::tuple{"Medusa-1", t.medusa1, Vec{1.0, 4.0}}, std::tuple{"Medusa-2", t.medusa2, Vec{1.0}}}) {
    const Decoding greedy = plain_greedy(*model->lm, prompts, false);
    for (double T : temperatures)
      for (double e : {0.0, 0.01, 0.09, 0.3}) {
        MedusaGenerateOptions o;
        o.acceptance = AcceptanceRule::typical;
        o.temperature = T;
        o.posterior_threshold = e;
        o.posterior_alpha = std::sqrt(e);
        const Decoding d = medusa_decode(*model, prompts, o, false);
        i64 same = 0;
        for (std::size_t i = 0; i < prompts.size(); ++i) same += d.outputs[i] == greedy.outputs[i];
        std::printf("%-9s %5.1f %6.2f %6.2f %17.2f %10lld/%-3zu %12lld/%-3zu\n", name, T, e, std::sqrt(e),
                    d.tokens_per_forward, static_cast<long long>(d.copies_right), prompts.size(),
                    static_cast<long long>(same), prompts.size());
        if (model == t.medusa1) medusa1_copies[{T, e}] = d.copies_right;
        if (e == 0.0)
          for (i64 a : d.accept_lengths) full_depth = full_depth && a == s.K;
        if (e == 0.09) passes = passes && tokens_pass_threshold(*model->lm, d.outputs, prompts[0].size(), T, e, 0.3);
      }
  }
  claims.check(full_depth, "eps = 0 (threshold 0) accepts every candidate: each pass keeps a full-depth path");
  claims.check(passes,
               "with eps = 0.09, delta = 0.3 every emitted token has p(x) > min(eps, delta e^-H) under a "
               "separate forward pass over its prefix");
  const i64 n = static_cast<i64>(prompts.size());
  claims.check(2 * medusa1_copies[{4.0, 0.01}] < n && medusa1_copies[{4.0, 0.09}] == n,
               "Medusa-1 drafts at T = 4: eps = 0.01 lets wrong tokens in (most copies broken), eps = 0.09 keeps all");
}

}  // namespace

int main(int argc, char** argv) {
  const auto start = std::chrono::steady_clock::now();
  const bool quick = tutorial::short_mode(argc, argv);
  const std::string dir = tutorial::out_dir(argc, argv);
  tutorial::Claims claims;
  const Setup setup = make_setup(quick);
  heads(claims, setup);
  candidate_tree(claims, dir);
  tree_attention(claims, setup);
  const Trained trained = train_and_decode(claims, setup);
  typical_acceptance(claims, setup, trained);
  std::printf("\n(%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return claims.exit_code();
}
