// Tutorial 07: online softmax and FlashAttention. The online-softmax recurrence (running max m, running sum ℓ,
// rescaled accumulator) worked by hand on one query row; then the tiled kernel nn::flash_attention checked
// against nn::naive_attention, values and gradients; then the memory each needs for forward and backward,
// measured with memory_stats: naive's grows with T², flash's with T.
// Run: tutorial_07_flash_attention [--short]. The page README.md next to this file explains each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "ember.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// The largest |a − b| over all elements.
double max_diff(const Tensor& a, const Tensor& b) { return max(abs(a.detach() - b.detach())).item(); }

// One query row by hand. Keys and values of d = 2; the scores s_j = q·k_j/√d are processed in blocks of two.
struct Row {
  std::vector<double> q = {2.0, 1.0};
  std::vector<std::vector<double>> k = {{0.5, 0.0}, {1.0, -1.0}, {3.0, 1.0}, {-1.0, 2.0}, {2.0, 2.0}, {0.0, -2.0}};
  std::vector<std::vector<double>> v = {{1.0, 0.0}, {0.0, 1.0}, {2.0, 2.0}, {-1.0, 1.0}, {0.5, -1.0}, {3.0, 0.0}};

  double score(std::size_t j) const { return (q[0] * k[j][0] + q[1] * k[j][1]) / std::sqrt(2.0); }
};

// The online softmax over the row in blocks of `block` keys, printing m, α, ℓ and Ô after each block.
// Returns {o_0, o_1, L}: the output O = Ô/ℓ and the logsumexp L = m + log ℓ.
std::vector<double> online_softmax(const Row& row, std::size_t block) {
  double m = -std::numeric_limits<double>::infinity(), l = 0.0;
  std::vector<double> acc = {0.0, 0.0};  // Ô, the unnormalised output
  for (std::size_t start = 0; start < row.k.size(); start += block) {
    const std::size_t end = std::min(start + block, row.k.size());
    double m_new = m;
    for (std::size_t j = start; j < end; ++j) m_new = std::max(m_new, row.score(j));
    const double alpha = std::exp(m - m_new);  // how much the old terms shrink under the new max
    l *= alpha;
    for (double& a : acc) a *= alpha;
    std::printf("  block keys %zu..%zu: scores", start, end - 1);
    for (std::size_t j = start; j < end; ++j) {
      const double p = std::exp(row.score(j) - m_new);  // P̃ = exp(s − m_new) <= 1: never overflows
      std::printf(" %6.3f", row.score(j));
      l += p;
      acc[0] += p * row.v[j][0];
      acc[1] += p * row.v[j][1];
    }
    m = m_new;
    std::printf("  ->  m = %.4f, alpha = %.6f, l = %.6f, O^ = (%.6f, %.6f)\n", m, alpha, l, acc[0], acc[1]);
  }
  return {acc[0] / l, acc[1] / l, m + std::log(l)};
}

// The same row the direct way: p_j = exp(s_j − max s) / Σ exp(s_i − max s), O = Σ p_j v_j, L = log Σ exp(s_j).
std::vector<double> direct_softmax(const Row& row) {
  double top = -std::numeric_limits<double>::infinity(), total = 0.0;
  for (std::size_t j = 0; j < row.k.size(); ++j) top = std::max(top, row.score(j));
  for (std::size_t j = 0; j < row.k.size(); ++j) total += std::exp(row.score(j) - top);
  std::vector<double> o = {0.0, 0.0, top + std::log(total)};
  for (std::size_t j = 0; j < row.k.size(); ++j)
    for (int c = 0; c < 2; ++c) o[c] += std::exp(row.score(j) - top) / total * row.v[j][c];
  return o;
}

// Bytes of tensor storage that one forward and backward of `attend` adds at its peak, over what q, k, v and the
// upstream gradient already hold. Also returns the seconds it took.
template <class Attend>
std::pair<double, double> peak_extra_bytes(Attend attend, std::int64_t B, std::int64_t H, std::int64_t T,
                                           std::int64_t d) {
  Tensor q = randn({B, H, T, d}).requires_grad_(), k = randn({B, H, T, d}).requires_grad_(),
         v = randn({B, H, T, d}).requires_grad_();
  const Tensor grad_out = randn({B, H, T, d});
  reset_peak_memory();
  const std::int64_t before = memory_stats().current_bytes;
  const auto start = std::chrono::steady_clock::now();
  attend(q, k, v, true).backward(grad_out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return {static_cast<double>(memory_stats().peak_bytes - before), seconds};
}

// Section 1: the online softmax of one row, block by block, against the direct softmax and the library kernel.
void online_softmax_by_hand(tutorial::Claims& claims) {
  tutorial::section("1. The online softmax, by hand");
  const Row row;
  std::printf("one query q = (2, 1) against 6 keys (d = 2), in blocks of 2:\n");
  const std::vector<double> online = online_softmax(row, 2);
  const std::vector<double> direct = direct_softmax(row);
  std::printf("online:  O = (%.9f, %.9f), L = m + log l = %.9f\n", online[0], online[1], online[2]);
  std::printf("direct:  O = (%.9f, %.9f), L = log sum exp  = %.9f\n", direct[0], direct[1], direct[2]);
  double worst = 0.0;
  for (int c = 0; c < 3; ++c) worst = std::max(worst, std::abs(online[c] - direct[c]));
  std::printf("max difference %.1e\n", worst);
  claims.check(worst < 1e-12, "the block-by-block recurrence gives the softmax-weighted sum and its logsumexp");
  std::printf("in blocks of 3:\n");
  const std::vector<double> in3 = online_softmax(row, 3);
  std::printf("in blocks of 1 (one key at a time):\n");
  const std::vector<double> in1 = online_softmax(row, 1);
  double spread = 0.0;
  for (int c = 0; c < 3; ++c) spread = std::max({spread, std::abs(in3[c] - direct[c]), std::abs(in1[c] - direct[c])});
  std::printf("blocks of 3 and of 1: max difference from the direct row %.1e\n", spread);
  claims.check(spread < 1e-12, "and so do blocks of 3 and of 1: the block size does not change the result");
  {
    // The library's tiled kernel on the same row (Float64, non-causal: the one query sees all six keys).
    std::vector<double> kf, vf;
    for (std::size_t j = 0; j < row.k.size(); ++j) kf.insert(kf.end(), row.k[j].begin(), row.k[j].end());
    for (std::size_t j = 0; j < row.v.size(); ++j) vf.insert(vf.end(), row.v[j].begin(), row.v[j].end());
    const Tensor o = nn::flash_attention(from_vector(row.q, {1, 1, 1, 2}, DType::Float64),
                                         from_vector(kf, {1, 1, 6, 2}, DType::Float64),
                                         from_vector(vf, {1, 1, 6, 2}, DType::Float64), false);
    const std::vector<double> of = o.to_vector<double>();
    std::printf("nn::flash_attention on this row: O = (%.9f, %.9f)\n", of[0], of[1]);
    claims.check(std::abs(of[0] - direct[0]) < 1e-12 && std::abs(of[1] - direct[1]) < 1e-12,
                 "nn::flash_attention computes the same row");
  }
}

// Section 2: nn::flash_attention against nn::naive_attention, values and gradients, and the saved logsumexp.
void flash_equals_naive(tutorial::Claims& claims) {
  tutorial::section("2. The tiled kernel equals naive attention, values and gradients");
  // T = 200 is not a multiple of the CPU kernel's 64-row tiles, so the last tiles are partial.
  const std::int64_t B = 2, H = 3, T = 200, d = 32;
  manual_seed(7);
  const Tensor q0 = randn({B, H, T, d}), k0 = randn({B, H, T, d}), v0 = randn({B, H, T, d});
  const Tensor grad_out = randn({B, H, T, d});
  Tensor qn = q0.clone().requires_grad_(), kn = k0.clone().requires_grad_(), vn = v0.clone().requires_grad_();
  Tensor qf = q0.clone().requires_grad_(), kf = k0.clone().requires_grad_(), vf = v0.clone().requires_grad_();
  const Tensor naive = nn::naive_attention(qn, kn, vn, true);
  const Tensor flash = nn::flash_attention(qf, kf, vf, true);
  naive.backward(grad_out);
  flash.backward(grad_out);
  const double d_out = max_diff(naive, flash), d_q = max_diff(qn.grad(), qf.grad()),
               d_k = max_diff(kn.grad(), kf.grad()), d_v = max_diff(vn.grad(), vf.grad());
  std::printf("causal, B = %lld, H = %lld, T = %lld, d = %lld, Float32; max |naive − flash|:\n",
              static_cast<long long>(B), static_cast<long long>(H), static_cast<long long>(T),
              static_cast<long long>(d));
  std::printf("  O %.2e   dQ %.2e   dK %.2e   dV %.2e\n", d_out, d_q, d_k, d_v);
  claims.check(d_out < 1e-5, "flash's output equals naive's to float32 rounding (< 1e-5)");
  claims.check(std::max({d_q, d_k, d_v}) < 1e-4, "and so do dQ, dK and dV (< 1e-4)");

  // What flash keeps for backward: O and the row logsumexp L. L must be the logsumexp of each masked score row.
  const Tensor Q = slice(slice(q0, 0, 0, 1), 1, 0, 1).contiguous();
  const Tensor K = slice(slice(k0, 0, 0, 1), 1, 0, 1).contiguous();
  const Tensor V = slice(slice(v0, 0, 0, 1), 1, 0, 1).contiguous();
  Tensor out = empty({1, 1, T, d}), lse = empty({1, 1, T});
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  backend_for(Device::cpu()).flash_attention_forward(Q, K, V, scale, true, out, lse);
  const Tensor hidden = triu(ones({T, T}), 1).to(DType::Bool);  // key j after query i
  const Tensor scores =
      masked_fill(matmul(Q, transpose(K, -1, -2)) * scale, hidden, -std::numeric_limits<double>::infinity());
  const double d_lse = max_diff(lse, logsumexp(scores, {-1}));
  std::printf("the saved L against logsumexp of the masked scores (one head): max difference %.2e\n", d_lse);
  claims.check(d_lse < 1e-5, "the kernel's saved L is the logsumexp of each masked score row");
}

// Section 3: the peak memory of forward and backward, naive against flash, as T grows.
void memory(tutorial::Claims& claims, bool quick) {
  tutorial::section("3. Memory: O(T²) against O(T)");
  const std::int64_t B = 1, H = 4, d = 64;
  const std::vector<std::int64_t> lengths =
      quick ? std::vector<std::int64_t>{256, 512, 1024, 2048} : std::vector<std::int64_t>{256, 512, 1024, 2048, 4096};
  std::printf("peak tensor bytes added by one forward + backward (B = %lld, H = %lld, d = %lld, causal, Float32)\n",
              static_cast<long long>(B), static_cast<long long>(H), static_cast<long long>(d));
  std::printf("%6s %12s %10s %10s %12s %10s %10s %9s\n", "T", "naive MiB", "/ BHT²·4", "time s", "flash KiB",
              "/ BHTd·4", "time s", "ratio");
  std::vector<double> naive_bytes, flash_bytes;
  for (std::int64_t T : lengths) {
    const auto [nb, nt] = peak_extra_bytes(nn::naive_attention, B, H, T, d);
    const auto [fb, ft] = peak_extra_bytes(nn::flash_attention, B, H, T, d);
    const double score_matrix = static_cast<double>(B * H * T * T * 4), io = static_cast<double>(B * H * T * d * 4);
    std::printf("%6lld %12.2f %10.3f %10.3f %12.1f %10.3f %10.3f %9.1f\n", static_cast<long long>(T), nb / (1 << 20),
                nb / score_matrix, nt, fb / 1024, fb / io, ft, nb / fb);
    naive_bytes.push_back(nb);
    flash_bytes.push_back(fb);
  }
  const std::size_t n = lengths.size();
  const double naive_growth = naive_bytes[n - 1] / naive_bytes[n - 2],
               flash_growth = flash_bytes[n - 1] / flash_bytes[n - 2];
  std::printf("doubling T from %lld to %lld: naive's peak x%.2f, flash's x%.2f\n",
              static_cast<long long>(lengths[n - 2]), static_cast<long long>(lengths[n - 1]), naive_growth,
              flash_growth);
  claims.check(naive_growth > 3.5 && naive_growth < 4.5, "naive's peak grows ~4x when T doubles (T² scores)");
  claims.check(flash_growth > 1.7 && flash_growth < 2.3,
               "flash's peak grows ~2x when T doubles (O, L and the gradients: T·d numbers)");
  const double matrices = naive_bytes[n - 1] / static_cast<double>(B * H * lengths[n - 1] * lengths[n - 1] * 4);
  claims.check(matrices > 2.9 && matrices < 3.2,
               "at the largest T naive's extra memory is ~3 score matrices of B·H·T²·4 bytes (P, dP and dS live at "
               "once in the backward)");
  claims.check(flash_bytes[n - 1] < naive_bytes[n - 1] / 8,
               "flash's peak extra memory is below 1/8 of naive's at T = " + std::to_string(lengths[n - 1]));
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  // One thread: the printed times then compare the two algorithms rather than how each uses two cores.
  set_num_threads(1);
  tutorial::Claims claims;

  online_softmax_by_hand(claims);
  flash_equals_naive(claims);
  memory(claims, quick);
  return claims.exit_code();
}
