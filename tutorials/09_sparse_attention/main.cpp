// Tutorial 09: sparse attention patterns (Sparse Transformer, Child et al. 2019). A causal pattern says which keys j
// each query i sees; the local, strided and fixed patterns see O(√T) keys per row instead of i + 1, and any j ≤ i is
// still reachable in two layers. The program draws the masks and the block layouts the kernel computes, counts keys
// and blocks against the paper's numbers, checks two-hop reach, checks block_sparse_attention against softmax
// attention with the same mask written out here, and times the kernel against dense attention (printed only).
// Run: tutorial_09_sparse_attention [--short] [--out DIR]. The page README.md next to this file explains each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ember.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// Which key j query i sees: a pattern as a plain rule, so that sub-patterns can be written beside the library's.
using Rule = std::function<bool(std::int64_t, std::int64_t)>;

// The library's rule of a pattern.
Rule rule_of(const SparsePattern& p) {
  return [p](std::int64_t i, std::int64_t j) { return p.allowed(i, j); };
}

// The mask of an n × n rule drawn with half blocks: one character holds rows 2r (top) and 2r + 1 (bottom).
void draw_mask(const std::string& title, const Rule& allowed, std::int64_t n) {
  std::printf("%s (row i = query, column j = key; each character is two rows):\n", title.c_str());
  for (std::int64_t r = 0; r < n; r += 2) {
    std::string line = "  ";
    for (std::int64_t j = 0; j < n; ++j) {
      const bool top = allowed(r, j), bottom = r + 1 < n && allowed(r + 1, j);
      line += top && bottom ? "█" : top ? "▀" : bottom ? "▄" : "·";
    }
    std::printf("%s\n", line.c_str());
  }
}

// The block layout drawn one character per b × b block: '#' computed, '.' skipped (on or below the diagonal).
void draw_layout(const BlockSparseLayout& layout) {
  const std::int64_t nb = layout.block_rows();
  std::vector<std::string> rows(nb, std::string(nb, ' '));
  for (std::int64_t I = 0; I < nb; ++I) {
    for (std::int64_t J = 0; J <= I; ++J) rows[I][J] = '.';
    for (std::int64_t c = layout.row_begin(I); c < layout.row_begin(I + 1); ++c) rows[I][layout.columns()[c]] = '#';
  }
  std::printf("block layout of %s, b = %lld: %lld of %lld blocks on or below the diagonal\n",
              layout.pattern().str().c_str(), static_cast<long long>(layout.block()),
              static_cast<long long>(layout.active_blocks()), static_cast<long long>(nb * (nb + 1) / 2));
  for (const std::string& row : rows) std::printf("  %s\n", row.c_str());
}

// An n × n mask as an SVG picture: one square per allowed pair.
void save_mask_svg(const std::string& path, const Rule& allowed, std::int64_t n) {
  const int cell = 6;
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw Error("tutorial_09: cannot write " + path);
  std::fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%lld\" height=\"%lld\">\n",
               static_cast<long long>(n * cell), static_cast<long long>(n * cell));
  std::fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n");
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j)
      if (allowed(i, j))
        std::fprintf(f, "<rect x=\"%lld\" y=\"%lld\" width=\"%d\" height=\"%d\" fill=\"#1f77b4\"/>\n",
                     static_cast<long long>(j * cell), static_cast<long long>(i * cell), cell - 1, cell - 1);
  std::fprintf(f, "</svg>\n");
  std::fclose(f);
}

// The most keys any query of 0..n−1 sees.
std::int64_t max_keys(const Rule& allowed, std::int64_t n) {
  std::int64_t most = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t keys = 0;
    for (std::int64_t j = 0; j <= i; ++j) keys += allowed(i, j) ? 1 : 0;
    most = std::max(most, keys);
  }
  return most;
}

// The pairs (i, j), j ≤ i, that two layers reach when the first attends by `first` and the second by `second`:
// second or first alone (the residual stream carries each layer's input on), or second(i, k) and first(k, j) for
// some k, the boolean product M(second)·M(first).
std::int64_t two_hop_reach(const Rule& first, const Rule& second, std::int64_t n) {
  std::int64_t reached = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j <= i; ++j) {
      bool reach = first(i, j) || second(i, j);
      for (std::int64_t k = j; k <= i && !reach; ++k) reach = second(i, k) && first(k, j);
      reached += reach ? 1 : 0;
    }
  return reached;
}

// The blocks a strided layout computes when b divides l, counted row by row: block-row I touches the local band's
// key blocks I − l/b .. I (clipped at 0) and the diagonals j = i − m·l for m ≥ 2, which land exactly on key block
// I − m·l/b.
std::int64_t strided_blocks_closed_form(std::int64_t T, std::int64_t l, std::int64_t b) {
  const std::int64_t r = l / b;
  std::int64_t total = 0;
  for (std::int64_t I = 0; I < T / b; ++I) total += std::min(I, r) + 1 + std::max<std::int64_t>(0, I / r - 1);
  return total;
}

// Causal softmax attention with the pattern's mask written out: key j is hidden from query i unless allowed(i, j).
// q, k, v: [B, H, T, d] -> [B, H, T, d].
Tensor masked_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SparsePattern& pattern) {
  const std::int64_t T = q.shape()[2], d = q.shape()[3];
  std::vector<double> hide(T * T);
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t j = 0; j < T; ++j) hide[i * T + j] = pattern.allowed(i, j) ? 0.0 : 1.0;
  const Tensor mask = from_vector(hide, {T, T}).to(DType::Bool);
  const Tensor scores = matmul(q, transpose(k, -1, -2)) / std::sqrt(static_cast<double>(d));
  return matmul(softmax(masked_fill(scores, mask, -std::numeric_limits<double>::infinity()), -1), v);
}

// Section 1: the three patterns at n = 64, l = 8, c = 2 as pictures, and their keys per row.
void masks(tutorial::Claims& claims, const std::string& out) {
  tutorial::section("1. Three patterns, drawn");
  const std::int64_t n = 64, l = 8, c = 2;
  const SparsePattern local{SparseKind::Local, l, c}, strided{SparseKind::Strided, l, c},
      fixed{SparseKind::Fixed, l, c};
  for (const SparsePattern& p : {local, strided, fixed}) {
    draw_mask(p.str(), rule_of(p), n);
    if (!out.empty()) save_mask_svg(out + "/mask_" + sparse_kind_name(p.kind) + ".svg", rule_of(p), n);
  }
  const std::int64_t k_local = max_keys(rule_of(local), n), k_strided = max_keys(rule_of(strided), n),
                     k_fixed = max_keys(rule_of(fixed), n);
  std::printf("most keys in a row: local %lld, strided %lld, fixed %lld (dense: %lld)\n",
              static_cast<long long>(k_local), static_cast<long long>(k_strided), static_cast<long long>(k_fixed),
              static_cast<long long>(n));
  claims.check(k_local == l, "local sees exactly l = 8 keys at most");
  claims.check(k_strided == l + (n / l - 1),
               "strided sees at most l + (n/l − 1) = 15: its band and one key per earlier stride (the paper's 15)");
  claims.check(k_fixed == l + c * (n / l - 1),
               "fixed sees at most l + c(n/l − 1) = 22: its block and c summary cells per earlier block (the "
               "paper's 22)");
}

// Section 2: two layers of the two halves of a pattern reach every j ≤ i.
void two_hops(tutorial::Claims& claims) {
  tutorial::section("2. Two hops cover the causal triangle");
  const std::int64_t n = 64, l = 8, c = 2, triangle = n * (n + 1) / 2;
  // The halves: A¹ the library's local or same-block rule, A² the stride or summary rule alone.
  const Rule strided_1 = rule_of({SparseKind::Local, l, c});
  const Rule strided_2 = [l](std::int64_t i, std::int64_t j) { return j <= i && (i - j) % l == 0; };
  const Rule fixed_1 = [l](std::int64_t i, std::int64_t j) { return j <= i && j / l == i / l; };
  const Rule fixed_2 = [l, c](std::int64_t i, std::int64_t j) { return j <= i && j % l >= l - c; };
  draw_mask("strided A² alone, {(i − j) mod l = 0}", strided_2, 32);
  const std::int64_t one_local = two_hop_reach(
      strided_1, [](std::int64_t, std::int64_t) { return false; }, n);
  const std::int64_t s12 = two_hop_reach(strided_1, strided_2, n), f12 = two_hop_reach(fixed_1, fixed_2, n),
                     f21 = two_hop_reach(fixed_2, fixed_1, n);
  const std::int64_t merged = two_hop_reach(rule_of({SparseKind::Fixed, l, c}), rule_of({SparseKind::Fixed, l, c}), n);
  std::printf("pairs j ≤ i reached, of %lld (n = %lld):\n", static_cast<long long>(triangle),
              static_cast<long long>(n));
  std::printf("  one layer of local                         %5lld\n", static_cast<long long>(one_local));
  std::printf("  strided: A¹ (local) then A² (stride)       %5lld\n", static_cast<long long>(s12));
  std::printf("  fixed:   A¹ (block) then A² (summary)      %5lld\n", static_cast<long long>(f12));
  std::printf("  fixed:   A² (summary) then A¹ (block)      %5lld\n", static_cast<long long>(f21));
  std::printf("  fixed, both merged, two layers             %5lld\n", static_cast<long long>(merged));
  claims.check(s12 == triangle, "strided: reach = M(A²)·M(A¹) covers every j ≤ i");
  claims.check(f12 == triangle, "fixed with A¹ first and A² second covers every j ≤ i");
  claims.check(f21 < triangle,
               "fixed in the other order does not: the ordinary cells of earlier blocks never reach later ones");
  claims.check(merged == triangle, "merging both halves in every layer (as nn::SparseAttention does) covers it");
}

// Section 3: the blocks the kernel computes, drawn at n = 64, and counted against T.
void layouts(tutorial::Claims& claims, bool quick) {
  tutorial::section("3. Block layouts: what the kernel computes");
  // b = 4 < l = 8 for the pictures: with b = l every block on or below the diagonal holds an allowed pair.
  for (const SparsePattern& p : {SparsePattern{SparseKind::Strided, 8, 2}, SparsePattern{SparseKind::Fixed, 8, 2}}) {
    const std::int64_t b = 4;
    const BlockSparseLayout layout(p, 64, b);
    draw_layout(layout);
    // A block is needed exactly when it holds an allowed pair: scan the elements here and compare.
    bool same = true;
    for (std::int64_t I = 0; I < layout.block_rows(); ++I)
      for (std::int64_t J = 0; J <= I; ++J) {
        bool any = false;
        for (std::int64_t i = I * b; i < I * b + b; ++i)
          for (std::int64_t j = J * b; j < J * b + b; ++j) any = any || p.allowed(i, j);
        const auto first = layout.columns().begin() + layout.row_begin(I),
                   last = layout.columns().begin() + layout.row_begin(I + 1);
        same = same && (any == (std::find(first, last, J) != last));
      }
    claims.check(same, "the layout of " + p.str() + " lists exactly the blocks that hold an allowed pair");
  }

  const std::int64_t b = 8;
  std::printf("\nactive b × b blocks (b = %lld) as T grows, strided with l = √T:\n", static_cast<long long>(b));
  std::printf("%6s %4s %10s %12s %10s %16s\n", "T", "l", "strided", "/ T·√T", "dense", "strided / dense");
  const std::vector<std::int64_t> lengths =
      quick ? std::vector<std::int64_t>{64, 256, 1024} : std::vector<std::int64_t>{64, 256, 1024, 4096};
  bool closed_form = true, dense_form = true;
  std::vector<double> per_t_sqrt_t;
  for (std::int64_t T : lengths) {
    const auto l = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(T))));
    const std::int64_t sparse = BlockSparseLayout({SparseKind::Strided, l, 1}, T, b).active_blocks();
    const std::int64_t dense = BlockSparseLayout({SparseKind::Dense, l, 1}, T, b).active_blocks();
    const std::int64_t nb = T / b;
    closed_form = closed_form && sparse == strided_blocks_closed_form(T, l, b);
    dense_form = dense_form && dense == nb * (nb + 1) / 2;
    const double t = static_cast<double>(T);
    per_t_sqrt_t.push_back(static_cast<double>(sparse) / (t * std::sqrt(t)));
    std::printf("%6lld %4lld %10lld %12.4f %10lld %16.3f\n", static_cast<long long>(T), static_cast<long long>(l),
                static_cast<long long>(sparse), per_t_sqrt_t.back(), static_cast<long long>(dense),
                static_cast<double>(sparse) / static_cast<double>(dense));
  }
  claims.check(dense_form, "dense computes all (T/b)(T/b + 1)/2 blocks on or below the diagonal: T²/2 elements");
  claims.check(closed_form,
               "strided computes, per block-row I, min(I, l/b) + 1 band blocks plus one block per stride diagonal "
               "beyond the band (the closed form, summed here)");
  claims.check(per_t_sqrt_t.back() / per_t_sqrt_t[1] > 0.8 && per_t_sqrt_t.back() / per_t_sqrt_t[1] < 1.25,
               "so its block count grows like T·√T: the ratio to T·√T settles (within 25% from T = 256 on)");
}

// Section 4: block_sparse_attention against softmax attention with the same mask written out, values and gradients.
void kernel_check(tutorial::Claims& claims) {
  tutorial::section("4. The kernel equals masked softmax attention");
  const std::int64_t B = 2, H = 2, T = 64, d = 16;
  manual_seed(9);
  const Tensor q0 = randn({B, H, T, d}), k0 = randn({B, H, T, d}), v0 = randn({B, H, T, d});
  const Tensor G = randn({B, H, T, d});
  for (const SparsePattern& p : {SparsePattern{SparseKind::Strided, 8, 2}, SparsePattern{SparseKind::Fixed, 8, 2}}) {
    const BlockSparseLayout layout(p, T, 8);
    Tensor q1 = q0.clone().requires_grad_(), k1 = k0.clone().requires_grad_(), v1 = v0.clone().requires_grad_();
    Tensor q2 = q0.clone().requires_grad_(), k2 = k0.clone().requires_grad_(), v2 = v0.clone().requires_grad_();
    const Tensor sparse = nn::block_sparse_attention(q1, k1, v1, layout);
    const Tensor masked = masked_attention(q2, k2, v2, p);
    sum(sparse * G).backward();
    sum(masked * G).backward();
    const double out_diff = max(abs(sparse - masked)).item();
    const double grad_diff = std::max({max(abs(q1.grad() - q2.grad())).item(), max(abs(k1.grad() - k2.grad())).item(),
                                       max(abs(v1.grad() - v2.grad())).item()});
    const double from_dense = max(abs(sparse - nn::naive_attention(q0, k0, v0, true))).item();
    std::printf("%-18s max |kernel − masked softmax| = %.1e, gradients %.1e; max |kernel − dense causal| = %.2f\n",
                p.str().c_str(), out_diff, grad_diff, from_dense);
    claims.check(out_diff < 1e-5 && grad_diff < 1e-5,
                 p.str() + ": block_sparse_attention and its gradients equal masked softmax attention (Float32, 1e-5)");
    claims.check(from_dense > 1e-2, p.str() + ": and differ from dense causal attention: the mask matters");
  }
}

// Section 5: forward time of the kernel on a strided layout against dense causal attention (printed, not checked).
void timing(bool quick) {
  tutorial::section("5. Time against dense (printed, not checked)");
  const std::int64_t B = 1, H = 4, d = 32, b = 8;
  const std::vector<std::int64_t> lengths =
      quick ? std::vector<std::int64_t>{256, 1024} : std::vector<std::int64_t>{256, 1024, 4096};
  std::printf("forward, B = %lld, H = %lld, d = %lld, one thread, best of 3:\n", static_cast<long long>(B),
              static_cast<long long>(H), static_cast<long long>(d));
  std::printf("%6s %4s %14s %14s %14s %8s\n", "T", "l", "strided ms", "dense ms", "dense blocks", "ratio");
  NoGradGuard no_grad;
  for (std::int64_t T : lengths) {
    const auto l = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(T))));
    const Tensor q = randn({B, H, T, d}), k = randn({B, H, T, d}), v = randn({B, H, T, d});
    const BlockSparseLayout strided({SparseKind::Strided, l, 1}, T, b), dense({SparseKind::Dense, l, 1}, T, b);
    const double t_sparse = tutorial::best_seconds([&] { nn::block_sparse_attention(q, k, v, strided); });
    const double t_dense = tutorial::best_seconds([&] { nn::flash_attention(q, k, v, true); });
    const double t_blocks = tutorial::best_seconds([&] { nn::block_sparse_attention(q, k, v, dense); });
    std::printf("%6lld %4lld %14.2f %14.2f %14.2f %8.2f\n", static_cast<long long>(T), static_cast<long long>(l),
                1e3 * t_sparse, 1e3 * t_dense, 1e3 * t_blocks, t_dense / t_sparse);
  }
  std::printf("(dense = nn::flash_attention; dense blocks = the same block-sparse kernel on the dense layout)\n");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  set_num_threads(1);  // the same numbers on every machine
  tutorial::Claims claims;

  masks(claims, tutorial::out_dir(argc, argv));
  two_hops(claims);
  layouts(claims, quick);
  kernel_check(claims);
  timing(quick);
  return claims.exit_code();
}
