/// \file
/// \brief The graph frees itself: after each backward no node is left alive, and a long training-like
/// loop does not grow the process's resident memory.
#include <cstdio>
#include <unistd.h>

#include "helpers.h"

using namespace ember;

namespace {
/// Resident set size in bytes, from /proc/self/statm (second field, in pages); 0 where unavailable.
std::int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long size = 0, resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return n == 2 ? static_cast<std::int64_t>(resident) * sysconf(_SC_PAGESIZE) : 0;
}
}  // namespace

TEST_CASE("graph memory: nodes are freed once the last tensor referring to them is gone") {
  const std::int64_t before = Node::live_count();
  Tensor w = randn({4, 4}, DType::Float64);
  w.requires_grad_();
  {
    Tensor y = tanh(matmul(ones({2, 4}, DType::Float64), w));
    Tensor loss = sum(y * y);
    CHECK(Node::live_count() > before);
    loss.backward();
  }
  CHECK(Node::live_count() == before);
  {
    // A graph that is never backpropagated is freed as well.
    Tensor loss = sum(exp(w) * 2.0);
    CHECK(Node::live_count() > before);
  }
  CHECK(Node::live_count() == before);
  {
    // retain_graph keeps the nodes while the output lives; dropping it frees them.
    Tensor loss = sum(sigmoid(w));
    loss.backward(Tensor(), true);
    CHECK(Node::live_count() > before);
  }
  CHECK(Node::live_count() == before);
  {
    // A retained non-leaf gradient does not keep the graph alive (the node holds a weak reference).
    Tensor y = w * 3.0;
    y.retain_grad();
    sum(y).backward();
    CHECK(y.grad().defined());
  }
  CHECK(Node::live_count() == before);
}

TEST_CASE("graph memory: 10,000 steps of sum(tanh(x @ w)) leave no nodes and no growth") {
  manual_seed(11);
  const Tensor x = randn({4, 8});
  Tensor w = randn({8, 8});
  w.requires_grad_();
  const std::int64_t start = Node::live_count();
  int leaked_steps = 0;
  std::int64_t rss_at_1000 = 0;
  for (int step = 1; step <= 10000; ++step) {
    {
      Tensor loss = sum(tanh(matmul(x, w)));
      loss.backward();
    }
    w.set_grad(Tensor());
    if (Node::live_count() != start) ++leaked_steps;
    if (step == 1000) rss_at_1000 = rss_bytes();
  }
  CHECK(leaked_steps == 0);
  CHECK(Node::live_count() == start);
  const std::int64_t growth = rss_bytes() - rss_at_1000;
  INFO("RSS growth between step 1,000 and 10,000: " << growth / 1024 << " KiB");
  CHECK(growth < 4 * 1024 * 1024);

  // The gradient is still right after all that: d/dw sum(tanh(x w)) = x^T (1 - tanh(x w)^2).
  sum(tanh(matmul(x, w))).backward();
  const Tensor t = tanh(matmul(x, w.detach()));
  const auto xv = x.to_vector<double>(), tv = t.to_vector<double>(), gv = w.grad().to_vector<double>();
  double worst = 0;
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j) {
      double want = 0;
      for (int b = 0; b < 4; ++b) want += xv[b * 8 + i] * (1 - tv[b * 8 + j] * tv[b * 8 + j]);
      worst = std::max(worst, std::abs(want - gv[i * 8 + j]));
    }
  CHECK(worst < 1e-5);
}
