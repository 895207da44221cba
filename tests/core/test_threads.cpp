/// \file
/// \brief The thread setting: set/get, and results that do not depend on the thread count (each
/// element or output row is computed by one thread in a fixed order), checked on inputs large enough
/// for the parallel paths, and against naive loops.
#include <cmath>

#include "reference.h"

using namespace ember;

namespace {

struct ThreadCountGuard {
  int saved = get_num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

/// Every result we compare across thread counts, as vectors of doubles.
std::vector<std::vector<double>> compute_all() {
  const Tensor a = test::random_normal({300, 400}, 1100, DType::Float32);
  const Tensor b = test::random_normal({400, 1}, 1101, DType::Float32);
  const Tensor x64 = test::random_normal({257, 301}, 1102);
  std::vector<std::vector<double>> out;
  out.push_back((a * transpose(b, 0, 1) + 1.0).to_vector<double>());  // binary, broadcast
  out.push_back(exp(a).to_vector<double>());                          // unary, contiguous
  out.push_back(tanh(transpose(a, 0, 1)).to_vector<double>());        // unary, strided
  out.push_back(gelu(x64).to_vector<double>());
  out.push_back(sum(x64, {0}).to_vector<double>());  // reduce, inner-dim path
  out.push_back(sum(x64, {1}).to_vector<double>());  // reduce, row path
  out.push_back(max(a, {0}).to_vector<double>());
  out.push_back(softmax(a, 1).to_vector<double>());
  out.push_back(softmax(a, 0).to_vector<double>());
  out.push_back(cumsum(x64, 0).to_vector<double>());
  out.push_back(argmax(a, 1).to_vector<double>());
  out.push_back(matmul(a, test::random_normal({400, 200}, 1103, DType::Float32)).to_vector<double>());
  out.push_back(
      matmul(test::random_normal({16, 32, 32}, 1104), test::random_normal({16, 32, 32}, 1105)).to_vector<double>());
  out.push_back(index_select(x64, 0, randint(0, 257, {300})).to_vector<double>());
  out.push_back(a.to(DType::Float16).to_vector<double>());
  return out;
}

}  // namespace

TEST_CASE("set_num_threads and get_num_threads") {
  ThreadCountGuard guard;
  set_num_threads(1);
  CHECK(get_num_threads() == 1);
  set_num_threads(2);
  CHECK(get_num_threads() == 2);
  set_num_threads(3);  // more threads than cores is allowed
  CHECK(get_num_threads() == 3);
}

TEST_CASE("results are bitwise identical with 1 and 2 threads") {
  ThreadCountGuard guard;
  set_num_threads(1);
  manual_seed(77);
  const auto one = compute_all();
  set_num_threads(2);
  manual_seed(77);
  const auto two = compute_all();
  REQUIRE(one.size() == two.size());
  for (std::size_t k = 0; k < one.size(); ++k) {
    CAPTURE(k);
    std::size_t diff = 0;
    for (std::size_t i = 0; i < one[k].size(); ++i)
      if (!(one[k][i] == two[k][i] || (std::isnan(one[k][i]) && std::isnan(two[k][i])))) ++diff;
    CHECK(diff == 0);
  }
}

TEST_CASE("a parallel elementwise op and reduction with 2 threads match naive loops") {
  ThreadCountGuard guard;
  set_num_threads(2);
  const Tensor x = test::random_normal({200, 300}, 1106);
  const auto v = x.to_vector<double>();
  std::vector<double> sq, rows(200, 0.0);
  for (int i = 0; i < 200; ++i)
    for (int j = 0; j < 300; ++j) {
      sq.push_back(v[i * 300 + j] * v[i * 300 + j] + 0.5);
      rows[i] += v[i * 300 + j];
    }
  test::check_values(x * x + 0.5, {200, 300}, sq);
  test::check_values(sum(x, {1}), {200}, rows, 1e-12, 1e-12);
}
